/**
 * A rollout's report from the audit log and the stored state. Pure: the records, the state and
 * the chain's verdict come in, a `RolloutReport` goes out, so every figure of the page is tested
 * without a store. The audit log is the source; the state adds what only it holds (the plan's
 * holds, the latest gate results) when it is the same rollout's.
 */
import { stepNumberOf, type StepNumber } from '../engine/plan.js';
import type { Phase, RolloutState } from '../engine/state.js';
import type { GateResult } from '../gates/types.js';
import type { Weights } from '../routers/router.js';
import type { AuditRecord, AuditVerification } from '../state/store.js';
import { describeRecord } from './decisions.js';
import type { ChainReport, GatePoint, GateSeries, RolloutReport, Safety, StepSpan, TrafficPoint } from './model.js';

/** What a report is made from. */
export interface ReportInput {
  service: string;
  /** The whole audit log, oldest first. */
  records: AuditRecord[];
  /** The stored state (the latest rollout of the service), if any. */
  state: RolloutState | undefined;
  verification: AuditVerification;
  /** The rollout to report; default the latest started in the log. */
  rolloutId?: string;
  now: number;
}

/** Actions that move traffic, and the phase a rollout is in after each. */
const TRAFFIC_ACTIONS: Record<string, Phase> = {
  'step.entered': 'holding',
  'rollout.rolled_back': 'rolled_back',
  'rollout.aborted': 'aborted',
  'rollout.promoted': 'promoted',
};
const TERMINAL = new Set(['rollout.rolled_back', 'rollout.aborted', 'rollout.promoted']);

/** Rollout ids in the order they were started, oldest first. */
export function rolloutIds(records: AuditRecord[]): string[] {
  const ids = records.filter((r) => r.action === 'rollout.started' && r.rolloutId).map((r) => r.rolloutId!);
  return [...new Set(ids)];
}

/** The report of one rollout; undefined when the log and the state know no such rollout. */
export function extractReport(input: ReportInput): RolloutReport | undefined {
  const id = input.rolloutId ?? rolloutIds(input.records).at(-1) ?? input.state?.rolloutId;
  if (id === undefined) return undefined;
  const records = input.records.filter((r) => r.rolloutId === id);
  const state = input.state?.rolloutId === id ? input.state : undefined;
  const started = records.find((r) => r.action === 'rollout.started');
  if (!started && !state) return undefined;
  const sd = started?.detail ?? {};
  const stable = state?.stable ?? String(sd.stable ?? '?');
  const candidate = state?.candidate ?? String(sd.candidate ?? '?');
  const plan = state
    ? state.plan.steps.map((s) => ({ weight: s.weight, holdMs: s.holdMs, pause: s.pause }))
    : Array.isArray(sd.steps)
      ? sd.steps.filter((x): x is number => typeof x === 'number').map((weight) => ({ weight }))
      : [];
  const startedAt = started?.at ?? state!.startedAt;
  const ending = [...records].reverse().find((r) => TERMINAL.has(r.action));
  const phase = state?.phase ?? phaseFromRecords(records);
  const endedAt = ending?.at ?? (state && ['promoted', 'rolled_back', 'aborted'].includes(state.phase) ? state.outcome?.at ?? state.updatedAt : undefined);
  const gates = gateSeries(records, state);
  const wording = { stable, candidate, steps: plan.length };
  const reason = state?.outcome?.reason ?? (ending ? str(ending.detail?.reason) : undefined) ?? (state?.paused ? `paused: ${state.paused.reason}` : undefined);
  const timeToSafety = [...records].reverse().map((r) => r.detail?.timeToSafetyMs).find((v): v is number => typeof v === 'number');
  const excess = excessFailures(gates, records);
  const safety = safetyOf(records, ending);
  return {
    service: state?.service ?? input.service,
    rolloutId: id,
    stable,
    candidate,
    phase,
    serving: phase === 'promoted' ? candidate : stable,
    startedAt,
    startedBy: started?.actor ?? state!.startedBy,
    ...(endedAt ? { endedAt } : {}),
    durationMs: Math.max(0, (endedAt ? Date.parse(endedAt) : input.now) - Date.parse(startedAt)),
    ...(reason ? { reason } : {}),
    plan,
    traffic: trafficOf(records, stable, candidate, startedAt),
    gates,
    decisions: records.map((r) => describeRecord(r, wording)),
    steps: stepSpans(records, plan, phase),
    ...(safety ? { safety } : {}),
    ...(timeToSafety !== undefined ? { timeToSafetyMs: timeToSafety } : {}),
    ...(excess !== undefined ? { excessFailures: excess } : {}),
    chain: chainOf(input.verification, records),
    generatedAt: new Date(input.now).toISOString(),
  };
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const isWeights = (v: unknown): v is Weights => !!v && typeof v === 'object' && Object.values(v).every((x) => typeof x === 'number');

/** The phase the records leave the rollout in, for a rollout the stored state has moved past. */
function phaseFromRecords(records: AuditRecord[]): Phase {
  let phase: Phase = 'pending';
  for (const r of records) {
    if (r.action in TRAFFIC_ACTIONS) phase = TRAFFIC_ACTIONS[r.action]!;
    else if (r.action === 'rollout.paused') phase = 'paused';
    else if (r.action === 'rollout.continued' && phase === 'paused') phase = 'holding';
    else if (r.action === 'rollout.failed') phase = 'failed';
  }
  return phase;
}

/** The traffic split at the start and after every verified write (and every write read back). */
function trafficOf(records: AuditRecord[], stable: string, candidate: string, startedAt: string): TrafficPoint[] {
  const point = (at: string, weights: Weights): TrafficPoint => ({ at, weights, candidate: weights[candidate] ?? 0, stable: stable === candidate ? 0 : weights[stable] ?? 0 });
  const points = [point(startedAt, { [stable]: 100 })];
  for (const r of records) {
    const w = r.action === 'intent.superseded' ? r.detail?.live : r.action in TRAFFIC_ACTIONS ? r.detail?.weights : undefined;
    if (isWeights(w) && Object.keys(w).length > 0) points.push(point(r.at, w));
  }
  return points;
}

/** Every recorded measurement of each gate: verdict changes, a rollback's evidence, the latest in state. */
function gateSeries(records: AuditRecord[], state: RolloutState | undefined): GateSeries[] {
  const byGate = new Map<string, GateSeries>();
  const add = (r: Partial<GateResult>, step: StepNumber, source: GatePoint['source'], fallbackAt: string) => {
    if (typeof r.gate !== 'string' || typeof r.verdict !== 'string') return;
    const series = byGate.get(r.gate) ?? { gate: r.gate, ...(r.type ? { type: r.type } : {}), points: [] };
    byGate.set(r.gate, series);
    const at = typeof r.at === 'string' ? r.at : fallbackAt;
    // A rollback's evidence repeats the verdict record of the same check: one point per check.
    if (series.points.some((p) => p.at === at)) return;
    series.points.push({
      at,
      step,
      verdict: r.verdict,
      ...(typeof r.value === 'number' ? { value: r.value } : {}),
      ...(typeof r.threshold === 'number' ? { threshold: r.threshold } : {}),
      ...(typeof r.baseline === 'number' ? { baseline: r.baseline } : {}),
      ...(r.bucket ? { bucket: r.bucket } : {}),
      ...(r.baselineBucket ? { baselineBucket: r.baselineBucket } : {}),
      ...(r.samples ? { samples: r.samples } : {}),
      reason: typeof r.reason === 'string' ? r.reason : '',
      source,
    });
  };
  // Records count steps as people do, from 1; the stored state from 0.
  for (const r of records) {
    const step = typeof r.detail?.step === 'number' ? r.detail.step : 0;
    if (r.action === 'gate.verdict') add(r.detail as Partial<GateResult>, step, 'verdict', r.at);
    else if ((r.action === 'rollout.rolled_back' || r.action === 'rollout.aborted') && Array.isArray(r.detail?.gates)) {
      for (const g of r.detail.gates as Partial<GateResult>[]) add(g, step, 'evidence', r.at);
    }
  }
  for (const g of state?.gates ?? []) add(g, stepNumberOf(state!.step), 'latest', state!.updatedAt);
  for (const s of byGate.values()) s.points.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  return [...byGate.values()];
}

/** The largest count of failed requests beyond stable's rate any gate measured (it only grows). */
function excessFailures(gates: GateSeries[], records: AuditRecord[]): number | undefined {
  const counts = [
    ...gates.flatMap((g) => g.points.map((p) => p.samples?.excessFailures)),
    ...records.map((r) => r.detail?.excessFailures),
  ].filter((x): x is number => typeof x === 'number');
  return counts.length ? Math.max(0, ...counts) : undefined;
}

/** From the failed measurement a rollback acted on to the verified write back to stable. */
function safetyOf(records: AuditRecord[], ending: AuditRecord | undefined): Safety | undefined {
  if (ending?.action !== 'rollout.rolled_back') return undefined;
  const evidence = Array.isArray(ending.detail?.gates) ? (ending.detail.gates as Partial<GateResult>[]) : [];
  const failed = evidence.find((g) => g.verdict === 'failed' && typeof g.at === 'string')
    ?? ([...records].reverse().find((r) => r.seq < ending.seq && r.action === 'gate.verdict' && r.detail?.verdict === 'failed')?.detail as Partial<GateResult> | undefined);
  if (!failed || typeof failed.at !== 'string') return undefined;
  return { from: failed.at, fromWhat: `gate ${failed.gate} failed`, at: ending.at, afterMs: Math.max(0, Date.parse(ending.at) - Date.parse(failed.at)) };
}

/** When the rollout entered and left each step of its plan, and how it left (records count steps from 1). */
function stepSpans(records: AuditRecord[], plan: RolloutReport['plan'], phase: Phase): StepSpan[] {
  const moves = records.filter((r) => r.action in TRAFFIC_ACTIONS);
  const reached = Math.max(0, ...moves.map((r) => (r.action === 'step.entered' && typeof r.detail?.step === 'number' ? r.detail.step : 0)));
  return plan.map((s, index) => {
    const step = stepNumberOf(index);
    const base = { step, weight: s.weight, ...(s.holdMs !== undefined ? { holdMs: s.holdMs } : {}) };
    const enteredAt = moves.findIndex((r) => r.action === 'step.entered' && r.detail?.step === step);
    if (enteredAt < 0) return { ...base, ended: step < reached ? 'skipped' : 'not reached' };
    const entered = moves[enteredAt]!;
    const left = moves.slice(enteredAt + 1).find((r) => !(r.action === 'step.entered' && r.detail?.step === step));
    if (!left) {
      return { ...base, enteredAt: entered.at, ended: ['promoted', 'rolled_back', 'aborted', 'failed'].includes(phase) ? phase.replace('_', ' ') : 'still here' };
    }
    const ended = left.action === 'step.entered' ? 'next step' : left.action.replace('rollout.', '').replace('_', ' ');
    return { ...base, enteredAt: entered.at, leftAt: left.at, durationMs: Date.parse(left.at) - Date.parse(entered.at), ended };
  });
}

/** The chain's verdict, and the signatures on this rollout's records. */
function chainOf(verification: AuditVerification, records: AuditRecord[]): ChainReport {
  const signed = records.filter((r) => r.sig);
  return { verification, rolloutRecords: records.length, signed: signed.length, keys: [...new Set(signed.map((r) => r.sig!.key))] };
}
