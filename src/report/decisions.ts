/**
 * The report's wording: audit records said in words for its table of decisions, and the chain's
 * verdict. The wording follows what the
 * engine means by each action (src/engine/machine.ts, src/orgs/move.ts); an action this module
 * does not know is still listed, by its name, so a report never hides a record.
 */
import { formatDuration } from '../config/units.js';
import type { LatencyBucket } from '../gates/types.js';
import type { AuditRecord } from '../state/store.js';
import { formatWeights } from '../ui/plain.js';
import type { ChainReport, Decision, DecisionKind } from './model.js';

/** What the report needs to know about the rollout to word its records. */
export interface Wording {
  stable: string;
  candidate: string;
  /** Number of steps in the plan. */
  steps: number;
}

const PAUSED_BECAUSE: Record<string, string> = {
  step: 'the plan asks for a manual go',
  operator: 'by an operator',
  inconclusive: 'the gates stayed inconclusive',
  stuck: 'the promotion did not roll out',
};

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const weightsOf = (v: unknown): Record<string, number> | undefined =>
  v && typeof v === 'object' && Object.values(v).every((x) => typeof x === 'number') ? (v as Record<string, number>) : undefined;

/** One record as a decision of the report. */
export function describeRecord(r: AuditRecord, w: Wording): Decision {
  const d = r.detail ?? {};
  // Records count steps as people do, from 1.
  const step = num(d.step);
  const stepText = (n: number | undefined) => (n === undefined || n < 1 ? 'before the first step' : `step ${n}/${w.steps}`);
  const make = (kind: DecisionKind, what: string, detail?: string, operator = false): Decision => ({
    seq: r.seq,
    at: r.at,
    kind,
    actor: r.actor,
    ...(step !== undefined && step >= 1 ? { step } : {}),
    what,
    ...(detail ? { detail } : {}),
    operator,
  });
  const weights = weightsOf(d.weights);
  switch (r.action) {
    case 'rollout.started': {
      const steps = Array.isArray(d.steps) ? d.steps.map((s) => `${s}%`).join(' → ') : undefined;
      return make('start', `started ${str(d.stable) ?? w.stable} → ${str(d.candidate) ?? w.candidate}`, steps ? `steps ${steps}` : undefined, true);
    }
    case 'step.entered': {
      const share = weights?.[w.candidate] ?? 0;
      const orgs = Array.isArray(d.orgs) ? `; ${d.orgs.length} orgs on ${w.candidate}` : '';
      return make('step', `${stepText(step)}: ${w.candidate} at ${+share.toFixed(3)}%`, weights ? `${formatWeights(weights)}${generation(d)}${orgs}` : undefined);
    }
    case 'gate.verdict':
      return make(d.verdict === 'failed' ? 'problem' : 'gate', `gate ${str(d.gate) ?? '?'} ${str(d.verdict) ?? '?'}`, str(d.reason));
    case 'rollout.paused': {
      const reason = str(d.reason) ?? '';
      const why = [PAUSED_BECAUSE[reason] ?? reason, str(d.why)].filter(Boolean).join(': ');
      return make('pause', `paused at ${stepText(step)}`, why, reason === 'operator');
    }
    case 'rollout.continued':
      return make('operator', d.how === 'promote' ? `promoted past ${stepText(step)}` : `resumed at ${stepText(step)}`, undefined, true);
    case 'rollout.promote_step':
      return make('operator', `skipped the rest of ${stepText(step)}'s hold`, undefined, true);
    case 'rollout.promote_full':
      return make('operator', `skipped every remaining step from ${stepText(step)}`, undefined, true);
    case 'rollout.rolled_back':
      return make('rollback', `rolled back: ${weights ? formatWeights(weights) : `100% on ${w.stable}`}, verified`, str(d.reason));
    case 'rollout.aborted':
      return make('rollback', `aborted: ${weights ? formatWeights(weights) : `100% on ${w.stable}`}, verified`, str(d.reason), true);
    case 'rollout.promoted':
      return make('promoted', `promoted: ${w.candidate} takes all traffic`, weights ? `${formatWeights(weights)}${generation(d)}` : undefined);
    case 'orgs.moved': {
      const orgs = Array.isArray(d.orgs) ? d.orgs.length : 0;
      return make('operator', `${orgs} org${orgs === 1 ? '' : 's'} moved to ${str(d.to) ?? 'the default'}`, str(d.reason), true);
    }
    case 'targets.waiting':
      return make('info', `waiting for ${str(d.version) ?? w.candidate}'s targets`, str(d.detail));
    case 'targets.ready':
      return make('info', `${str(d.version) ?? w.candidate}'s targets ready`, num(d.waitedMs) !== undefined ? `after ${formatDuration(num(d.waitedMs)!)}` : undefined);
    case 'promotion.started':
      return make('info', `promoting ${str(d.version) ?? w.candidate} into the stable workload`);
    case 'workload.retired':
      return make('info', 'canary scaled down', str(d.stableRestoredTo) ? `stable workload back on ${str(d.stableRestoredTo)}` : undefined);
    case 'workload.retire_failed':
      return make('problem', 'the canary could not be scaled down', str(d.error));
    case 'intent.superseded':
      return make('info', 'an unfinished router write was read back before the next', weightsOf(d.live) ? `live: ${formatWeights(weightsOf(d.live)!)}` : undefined);
    case 'router.drift':
      return make('problem', 'the routing had been changed outside Cutover', str(d.drift));
    case 'rollout.refused':
      return make('problem', 'the router refused the rollout', str(d.error));
    case 'rollout.failed':
      return make('problem', 'the driver gave up on a router write', str(d.error));
    default:
      return make(/fail|error/.test(r.action) ? 'problem' : 'info', r.action, r.detail ? compact(r.detail) : undefined);
  }
}

const generation = (d: Record<string, unknown>) => (num(d.generation) !== undefined ? ` (generation ${num(d.generation)})` : '');

/** A record's detail in one short line, for actions the report has no words for. */
function compact(detail: Record<string, unknown>): string {
  const text = JSON.stringify(detail);
  return text.length > 300 ? `${text.slice(0, 299)}…` : text;
}

/**
 * A measured number for the report's tables (plain text: each renderer escapes it). A P99 from a
 * histogram is said by its bucket, its estimate beside it: `≤ 5 (est. 4.95)`.
 */
export function measuredText(x: number | undefined, bucket?: LatencyBucket): string {
  if (x === undefined) return '';
  const n = (v: number) => String(+v.toPrecision(4));
  if (!bucket) return n(x);
  return `${bucket.upper !== undefined ? `≤ ${n(bucket.upper)}` : `> ${n(bucket.lower)}`} (est. ${n(x)})`;
}

/** The audit chain's verdict in one sentence (plain text: each renderer escapes it). */
export function chainVerdict(c: ChainReport): string {
  const signed = c.signed ? `; ${c.signed} of this rollout's ${c.rolloutRecords} records signed (key ${c.keys.join(', ')})` : '';
  return c.verification.ok
    ? `Audit chain verified: ${c.verification.records} records in the log, ${c.rolloutRecords} of them this rollout's${signed}.`
    : `Audit chain broken at record ${c.verification.brokenAt}: ${c.verification.reason}. Records from there on are not proven unchanged.`;
}
