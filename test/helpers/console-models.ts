/**
 * Fixed console models for component and fold tests: a canary of patient-api from v1 to v2 at
 * its third step (25%), with gates in each verdict, built by folding the events the engine emits.
 */
import type { EngineEvent, GateEvent } from '../../src/engine/events.js';
import type { StepIndex } from '../../src/engine/plan.js';
import type { RolloutState } from '../../src/engine/state.js';
import type { GateResult } from '../../src/gates/types.js';
import { createModel, foldEvent, foldMembers, foldTargets, foldTick, type ConsoleModel } from '../../src/ui/console/model.js';
import { gatesByMember } from '../../src/ui/console/parts.js';
import { planCanary } from '../../strategies/canary.js';

/** 10:00:00 on the day of the fixtures. */
export const T0 = Date.parse('2026-11-22T10:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();
const base = (ms: number) => ({ at: iso(ms), service: 'patient-api', rolloutId: 'r1' });

/** The default plan: 1 → 5 → 25 → 50 → 100. */
export const PLAN = planCanary(undefined, ['errors', 'p99', 'saturation', 'orders']);

/** Gate results as the gates report them, one per verdict. */
export const GATES: Omit<GateResult, 'at' | 'queries'>[] = [
  { gate: 'errors', type: 'errorRate', verdict: 'passed', value: 0.21, threshold: 0.62, samples: { canary: 5234, needed: 4100 }, reason: 'ruled out' },
  { gate: 'p99', type: 'latencyP99', verdict: 'failed', value: 740, threshold: 500, samples: { canary: 900, needed: 100 }, reason: 'v2 P99 740ms > 500ms' },
  { gate: 'saturation', type: 'query', verdict: 'inconclusive', value: 0.4, threshold: 0.8, samples: { canary: 40, needed: 130000 }, reason: '40 of ~130000 requests needed' },
  { gate: 'orders', type: 'query', verdict: 'error', reason: 'Prometheus unreachable' },
];

/** A gate event at `ms`, checked at step `step` (from 1, as events count). */
export function gateEvent(g: Omit<GateResult, 'at' | 'queries'>, ms: number, step = 3): GateEvent {
  return { ...base(ms), ...g, queries: [], event: 'gate', step };
}

/** The events of a rollout that reached step 3 (25%) at T0 + 2 min, with a 10-minute hold. */
export function eventsToStep3(): EngineEvent[] {
  const steps = PLAN.steps.map((s) => ({ weight: s.weight, holdMs: s.holdMs, pause: s.pause }));
  // Events count steps from 1: step n is the plan's steps[n - 1].
  const step = (n: number, ms: number): EngineEvent => ({
    ...base(ms),
    event: 'step',
    step: n,
    steps: 5,
    weight: PLAN.steps[n - 1]!.weight,
    weights: { v1: 100 - PLAN.steps[n - 1]!.weight, v2: PLAN.steps[n - 1]!.weight },
    holdMs: 600_000,
    holdUntil: iso(ms + 600_000),
  });
  return [
    { ...base(T0), event: 'started', stable: 'v1', candidate: 'v2', steps },
    step(1, T0 + 1_000),
    step(2, T0 + 60_000),
    step(3, T0 + 120_000),
  ];
}

/** Holding at 25% four minutes into a 10-minute hold, every gate verdict on show. */
export function holdingModel(): ConsoleModel {
  let m = createModel('drive', 'patient-api', T0);
  for (const e of eventsToStep3()) m = foldEvent(m, e);
  // A few checks each, so the sparklines have something to draw.
  for (let i = 0; i < 6; i++) {
    for (const g of GATES) m = foldEvent(m, gateEvent(g.value === undefined ? g : { ...g, value: g.value * (1 + i / 10) }, T0 + 130_000 + i * 10_000));
  }
  return foldTick({ ...m, driver: { owner: 'nurse@ward', pid: 4242, here: true } }, T0 + 360_000);
}

/** Paused by an operator with 6 minutes of the hold left. */
export function pausedModel(): ConsoleModel {
  const m = holdingModel();
  return foldEvent(m, { ...base(T0 + 240_000), event: 'paused', step: 3, reason: 'operator' });
}

/** Rolled back by the p99 gate. */
export function rolledBackModel(): ConsoleModel {
  const m = holdingModel();
  const reason = 'gate p99 failed: v2 P99 740ms > 500ms';
  const rolled = foldEvent(m, { ...base(T0 + 361_000), event: 'rollback', cause: 'gate', reason, weights: { v1: 100 } });
  return foldEvent(rolled, { ...base(T0 + 361_000), event: 'done', phase: 'rolled_back', exitCode: 3, step: 3, weights: { v1: 100 } });
}

/**
 * Rolled back by the errors gate at 25%: inconclusive checks, then a failing one at 10:05:00 that
 * counted 37 failed requests beyond v1's rate, and all traffic on v1 400 ms later.
 */
export function safeModel(): ConsoleModel {
  let m = createModel('drive', 'patient-api', T0);
  for (const e of eventsToStep3()) m = foldEvent(m, e);
  const errors = GATES[0]!;
  for (let i = 0; i < 3; i++) m = foldEvent(m, gateEvent({ ...errors, verdict: 'inconclusive', reason: 'more requests needed' }, T0 + 200_000 + i * 10_000));
  const reason = 'v2 errors 2.1% vs v1 0.2%: 37 failed requests more than v1\'s rate gives';
  m = foldEvent(m, gateEvent({ ...errors, verdict: 'failed', value: 2.1, reason, samples: { canary: 1900, excessFailures: 37 } }, T0 + 300_000));
  m = foldEvent(m, { ...base(T0 + 300_400), event: 'rollback', cause: 'gate', reason: `gate errors failed: ${reason}`, weights: { v1: 100 }, excessFailures: 37 });
  m = foldEvent(m, { ...base(T0 + 300_400), event: 'done', phase: 'rolled_back', exitCode: 3, step: 3, weights: { v1: 100 }, excessFailures: 37 });
  return foldTick(m, T0 + 302_000);
}

/** A stored state at step index `step` (from 0, as the state counts; holding), as the engine saves it. */
export function storedState(step: StepIndex, over: Partial<RolloutState> = {}): RolloutState {
  const weight = PLAN.steps[step]!.weight;
  return {
    schema: 1,
    rolloutId: 'r1',
    service: 'patient-api',
    stable: 'v1',
    candidate: 'v2',
    plan: PLAN,
    phase: 'holding',
    step,
    weights: { v1: 100 - weight, v2: weight },
    holdStartedAt: iso(T0 + step * 60_000),
    holdUntil: iso(T0 + step * 60_000 + PLAN.steps[step]!.holdMs),
    startedAt: iso(T0),
    startedBy: 'nurse@ward',
    updatedAt: iso(T0 + step * 60_000),
    ...over,
  };
}

/** What a release group's workload describes: the API, a consumer whose candidate is not ready yet, a CronJob. */
export const MEMBERS = [
  { name: 'patient-api', role: 'traffic', versions: [{ version: 'v1', ready: 3, desired: 3 }, { version: 'v2', ready: 1, desired: 1 }] },
  { name: 'lis-testresult', role: 'consumer', versions: [{ version: 'v1', ready: 1, desired: 1 }, { version: 'v2', ready: 0, desired: 1 }] },
  { name: 'nightly-export', role: 'cron', versions: [{ version: 'v1', ready: 0, desired: 0 }], detail: 'template v1' },
];

/** Holding at 25% with a release group's members read, the consumer's gate `lis-errors` inconclusive. */
export function groupModel(): ConsoleModel {
  let m = holdingModel();
  m = foldEvent(m, gateEvent({ gate: 'lis-errors', type: 'errorRate', verdict: 'inconclusive', reason: 'more messages needed' }, T0 + 300_000));
  return foldMembers(m, MEMBERS, gatesByMember([{ name: 'errors' }, { name: 'lis-errors', member: 'lis-testresult' }, { name: 'export-errors', member: 'nightly-export' }]));
}

/** Holding at 25% in a fleet of eu and us: eu answers, us does not; gates judged per target. */
export function fleetModel(): ConsoleModel {
  let m = createModel('drive', 'patient-api', T0);
  for (const e of eventsToStep3()) m = foldEvent(m, e);
  const at = T0 + 300_000;
  m = foldEvent(m, gateEvent({ gate: 'errors@eu', type: 'errorRate', verdict: 'passed', value: 0.1, threshold: 0.6, reason: 'ruled out' }, at));
  m = foldEvent(m, gateEvent({ gate: 'reachable@eu', type: 'query', verdict: 'passed', reason: 'answers' }, at));
  m = foldEvent(m, gateEvent({ gate: 'errors@us', type: 'errorRate', verdict: 'failed', value: 3, threshold: 0.6, reason: 'v2 errors 3% vs v1 0.1%' }, at));
  m = foldEvent(m, gateEvent({ gate: 'reachable@us', type: 'query', verdict: 'inconclusive', reason: 'no answer for 20s' }, at));
  m = foldTargets(m, [
    { target: 'eu', weights: { v1: 75, v2: 25 }, generation: 4 },
    { target: 'us', error: 'connect ECONNREFUSED 10.0.0.2:443', owes: 'step 3 (v1 75% · v2 25%) recorded at 2026-11-22T10:02:00.000Z' },
  ]);
  return foldTick(m, at + 1_000);
}
