/**
 * Plain-line rendering of engine events and state, for terminals without the console, CI logs
 * and `deploy status`. No logic beyond wording lives here.
 */
import type { ChalkInstance } from 'chalk';
import { formatDuration } from '../config/units.js';
import type { EngineEvent } from '../engine/events.js';
import { stepNumberOf } from '../engine/plan.js';
import type { RolloutState } from '../engine/state.js';
import type { GateResult } from '../gates/types.js';
import type { Weights } from '../routers/router.js';
import type { MemberStatus } from '../workloads/workload.js';
import { requestCount } from './numbers.js';

/** `v1 95% · v2 5%`. */
export function formatWeights(weights: Weights): string {
  return Object.entries(weights)
    .map(([v, w]) => `${v} ${+w.toFixed(3)}%`)
    .join(' · ');
}

/** A fleet in waves: the candidate's share in each target, `eu 100% · us 5%`. */
export function formatShares(targets: Record<string, number>): string {
  return Object.entries(targets).map(([t, w]) => `${t} ${w}%`).join(' · ');
}

/** The step ladder, current step in brackets: `1 → [5] → 25 → 50 → 100`. */
export function formatLadder(state: Pick<RolloutState, 'plan' | 'step'>): string {
  return state.plan.steps.map((s) => (s.index === state.step ? `[${s.weight}]` : String(s.weight))).join(' → ');
}

const clock = (iso: string) => iso.slice(11, 19);

const PAUSE_TEXT = {
  step: 'the plan asks for a manual go',
  operator: 'by an operator',
  inconclusive: 'the gates stayed inconclusive',
  stuck: 'the promotion did not roll out',
} as const;

/** A verdict in its colour. */
export function verdictColour(verdict: GateResult['verdict'], c: ChalkInstance): string {
  if (verdict === 'passed') return c.green(verdict);
  if (verdict === 'failed') return c.red(verdict);
  if (verdict === 'error') return c.magenta(verdict);
  return c.yellow(verdict);
}

/**
 * `n=5,234`, `n=437/1,600`, `n=52k/130k`: the canary's requests, and those still needed while the
 * gate is inconclusive — beside a decided verdict a "needed" reads as unfinished.
 */
export function formatSamples(r: Pick<GateResult, 'verdict' | 'samples'>): string {
  if (!r.samples) return '';
  const open = r.verdict === 'inconclusive' && r.samples.needed !== undefined;
  return `n=${requestCount(r.samples.canary)}${open ? `/${requestCount(r.samples.needed!)}` : ''}`;
}

/** One gate result as a line for status. */
export function formatGate(r: GateResult, c: ChalkInstance): string {
  const n = formatSamples(r);
  return `${r.gate.padEnd(12)} ${verdictColour(r.verdict, c).padEnd(12)} ${r.reason}${n ? c.dim(`  ${n}`) : ''}`;
}

/** One human line for an event, or undefined when the event is not worth a line. */
export function renderEventLine(e: EngineEvent, c: ChalkInstance): string | undefined {
  switch (e.event) {
    case 'started':
      return `${c.bold(e.service)}: rolling out ${c.cyan(e.candidate)} over ${e.stable} in ${e.steps.length} steps: ${e.steps.map((s) => `${s.weight}%`).join(' → ')}`;
    case 'step':
      return `${clock(e.at)} step ${e.step}/${e.steps} ${c.cyan(e.orgs !== undefined ? `${e.orgs} orgs` : e.targets ? formatShares(e.targets) : `${String(e.weight).padStart(3)}%`)}  ${formatWeights(e.weights)}${e.generation !== undefined ? c.dim(` (generation ${e.generation})`) : ''}${e.holdMs ? `, hold ${formatDuration(e.holdMs)} until ${clock(e.holdUntil)}` : ''}`;
    case 'weights':
      return undefined; // shown as part of the step or rollback line
    case 'hold':
      return c.dim(`${clock(e.at)} holding step ${e.step}: ${e.remainingMs > 0 ? `${formatDuration(e.remainingMs)} left` : 'hold over, waiting for the gates to pass'}`);
    case 'gate':
      return `${clock(e.at)} gate ${c.bold(e.gate)} ${verdictColour(e.verdict, c)}: ${e.reason}`;
    case 'paused':
      return c.yellow(`${clock(e.at)} paused at step ${e.step} (${PAUSE_TEXT[e.reason]}): run \`deploy ${e.reason === 'operator' || e.reason === 'stuck' ? 'resume' : 'promote'}\` to go on${e.reason === 'inconclusive' ? ', `deploy resume` to give the gates more time, or `deploy abort`' : e.reason === 'stuck' ? ' once it is fixed, or `deploy abort`' : ''}`);
    case 'rollback':
      return c.red(
        `${clock(e.at)} ${e.cause === 'abort' ? `aborted${e.by ? ` by ${e.by}` : ''}` : 'rolled back'}: ${formatWeights(e.weights)} — ${e.reason}` +
          (e.excessFailures !== undefined ? `; users got ${e.excessFailures} failed requests beyond stable's error rate` : '') +
          (e.timeToSafetyMs !== undefined ? `; safe ${(e.timeToSafetyMs / 1000).toFixed(1)} s after the fault began` : ''),
      );
    case 'error':
      return c.red(`${clock(e.at)} error: ${e.message}${e.retrying ? ' (retrying)' : ''}`);
    case 'retry':
      return c.yellow(`${clock(e.at)} ${e.provider} ${e.operation} failed (${e.error}); trying again in ${formatDuration(e.delayMs)}`);
    case 'done':
      return e.phase === 'promoted'
        ? c.green(`${clock(e.at)} done: promoted, ${formatWeights(e.weights)}`)
        : e.phase === 'detached'
          ? c.yellow(`${clock(e.at)} stopped driving at step ${e.step} (${formatWeights(e.weights)}); the state is kept: \`deploy resume\` carries on`)
          : `${clock(e.at)} done: ${e.phase.replace('_', ' ')}, ${formatWeights(e.weights)}`;
  }
}

/** One part of the workload as a line for status: `lis (consumer)  v1 1/1 · v2 1/1`. */
export function formatMember(m: MemberStatus): string {
  const versions = m.versions.map((v) => `${v.version} ${v.ready}/${v.desired}`).join(' · ');
  return `${`${m.name}${m.role ? ` (${m.role})` : ''}`.padEnd(26)} ${[versions, m.detail].filter(Boolean).join('; ')}`;
}

/**
 * A multi-line summary of the stored state, for `deploy status`; `members` is what the workload
 * runs now, part by part (or why it could not be read).
 */
export function renderStatus(s: RolloutState, now: number, c: ChalkInstance, members?: MemberStatus[] | Error): string {
  const step = s.plan.steps[s.step];
  const lines = [
    `${c.bold(s.service)}  ${s.stable} → ${c.cyan(s.candidate)}  rollout ${s.rolloutId}`,
    `phase     ${phaseColour(s.phase, c)}${s.paused ? ` (${s.paused.reason === 'operator' ? `by ${s.paused.by}` : `${PAUSE_TEXT[s.paused.reason]}: waiting for \`deploy promote\``})` : ''}`,
    `step      ${s.step < 0 ? 'not started' : `${stepNumberOf(s.step)}/${s.plan.steps.length} (${step?.weight}%)`}   ${formatLadder(s)}`,
    `weights   ${formatWeights(s.weights)}${s.generation !== undefined ? c.dim(` (generation ${s.generation})`) : ''}`,
  ];
  if (s.intent) lines.push(`in flight ${s.intent.to === 'holding' ? `step ${stepNumberOf(s.intent.step)}` : s.intent.to.replace('_', ' ')}: ${formatWeights(s.intent.weights)} (recorded ${clock(s.intent.at)}; \`deploy resume\` finishes it)`);
  if (s.phase === 'holding' && s.holdUntil) lines.push(`hold      ${formatDuration(Math.max(0, Date.parse(s.holdUntil) - now))} left (until ${clock(s.holdUntil)})`);
  if (s.readying && !s.intent) lines.push(`readying  step ${stepNumberOf(s.readying.step)} since ${clock(s.readying.since)}: the workload's parts are on step ${stepNumberOf(s.step)} or ${stepNumberOf(s.readying.step)}`);
  for (const g of s.gates ?? []) lines.push(`gate      ${formatGate(g, c)}`);
  if (members instanceof Error) lines.push(c.red(`member    could not be read: ${members.message}`));
  else for (const m of members ?? []) lines.push(`member    ${formatMember(m)}`);
  if (s.retiring) lines.push(c.yellow(`tidying   the workload was not tidied after the rollout (${s.retiring.restoreStable ? 'back on stable, ' : ''}canary down): \`deploy resume\` finishes it`));
  if (s.outcome) lines.push(`outcome   ${s.outcome.reason} (${s.outcome.by}, ${s.outcome.at})`);
  if (s.lastError) lines.push(c.red(`error     ${s.lastError.message} (${s.lastError.at})`));
  lines.push(c.dim(`started   ${s.startedAt} by ${s.startedBy}; updated ${s.updatedAt}`));
  return lines.join('\n');
}

function phaseColour(phase: RolloutState['phase'], c: ChalkInstance): string {
  const text = phase.replace('_', ' ');
  if (phase === 'promoted') return c.green(text);
  if (phase === 'rolled_back' || phase === 'aborted' || phase === 'failed') return c.red(text);
  if (phase === 'paused') return c.yellow(text);
  return c.cyan(text);
}
