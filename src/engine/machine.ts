/**
 * The rollout state machine. `tick` advances a stored rollout by at most one transition, as
 * Flagger's advanceCanary does; operator requests (pause, abort, promote) are applied between
 * ticks. Every router write is preceded by a saved intent and followed by a saved commit, so a
 * process killed at any moment leaves a state `deploy resume` can finish.
 */
import { randomUUID } from 'node:crypto';
import type { LiveRoutes, RouteSpec, Router, TargetReadiness, Weights } from '../routers/router.js';
import type { Actor, StateStore } from '../state/store.js';
import { OperationError, UsageError } from '../errors.js';
import { excessFailuresOf, type GateResult } from '../gates/types.js';
import type { Workload } from '../workloads/workload.js';
import { eventOf, type EventBody, type EventSink } from './events.js';
import { DEFAULT_READINESS_TIMEOUT_MS, stepNumberOf, stepWeights, targetWeights, type Plan, type StepIndex } from './plan.js';
import { isTerminal, versionRoles, type Intent, type PauseReason, type RolloutState } from './state.js';

/** Evaluates a rollout's gates (Prometheus behind it in production, a fake in unit tests). */
export interface GateRunner {
  /** Evaluate the named gates over the current step's hold so far, at `atMs`. */
  evaluate(state: RolloutState, names: string[], atMs: number): Promise<GateResult[]>;
}

/** What the machine needs from the outside. */
export interface EngineDeps {
  router: Router;
  store: StateStore<RolloutState>;
  clock: () => number;
  emit: EventSink;
  actor: Actor;
  /** Needed when the plan has gates. */
  gates?: GateRunner;
  /** The full route spec of a write (org pins, waves); default: the intent's weights alone. */
  routes?: (state: RolloutState, intent: Intent) => Promise<RouteSpec>;
  /** What runs the versions (Kubernetes Deployments); absent when the servers already exist. */
  workload?: Workload;
  /**
   * Called right before every router write: renews the driver's lease, or throws LockedError
   * when it was lost — so a write is only ever made by the lock's holder, with a whole lease
   * ahead of it, and a driver that lost its lock stops before it writes. Answers the lock's
   * fencing token, which the write carries so that routers able to hold it refuse older ones.
   */
  fence?: () => Promise<number | undefined>;
}

/** What starts a rollout. */
export interface RolloutSpec {
  service: string;
  stable: string;
  candidate: string;
  plan: Plan;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Emit an event of `state`'s rollout, now: its common fields and its step filled in (`eventOf`). */
export function emit(deps: EngineDeps, state: RolloutState, body: EventBody): void {
  deps.emit(eventOf(state, iso(deps.clock()), body));
}

/** Save a new state, stamped with the time. */
async function save(deps: EngineDeps, state: RolloutState): Promise<RolloutState> {
  const next = { ...state, updatedAt: iso(deps.clock()) };
  await deps.store.save(next);
  return next;
}

/** Record a rollout in state and audit log, phase `pending`; nothing is written to the router yet. */
export async function startRollout(spec: RolloutSpec, deps: EngineDeps): Promise<RolloutState> {
  if (spec.stable === spec.candidate) {
    throw new UsageError(`${spec.candidate} is already the stable version of ${spec.service}`, 'name another version with --to');
  }
  const now = iso(deps.clock());
  const state: RolloutState = {
    schema: 1,
    rolloutId: randomUUID().slice(0, 8),
    service: spec.service,
    stable: spec.stable,
    candidate: spec.candidate,
    plan: spec.plan,
    phase: 'pending',
    step: -1,
    weights: { [spec.stable]: 100 },
    startedAt: now,
    startedBy: deps.actor.owner,
    updatedAt: now,
  };
  await deps.store.audit.append({
    actor: deps.actor.owner,
    action: 'rollout.started',
    rolloutId: state.rolloutId,
    detail: { stable: spec.stable, candidate: spec.candidate, steps: spec.plan.steps.map((s) => s.weight) },
  });
  await deps.store.save(state);
  emit(deps, state, {
    event: 'started',
    stable: state.stable,
    candidate: state.candidate,
    steps: state.plan.steps.map((s) => ({ weight: s.weight, holdMs: s.holdMs, pause: s.pause })),
  });
  return state;
}

/** Record an intent, then carry it out; weight moves to the candidate only once its targets are ready. */
async function transition(state: RolloutState, intent: Omit<Intent, 'at'>, deps: EngineDeps): Promise<RolloutState> {
  state = await settleIntent(state, deps);
  // A fleet in waves: a step's weights differ by target, and the intent carries each of them.
  const targets = intent.to === 'holding' ? targetWeights(state.stable, state.candidate, state.plan.steps[intent.step]) : undefined;
  if (targets) intent = { ...intent, targets };
  // A spec the router could never carry is refused (UsageError) before anything is recorded, so
  // there is no intent for a retry or `deploy resume` to repeat. A rollback is never refused here.
  if (intent.to === 'holding' && deps.router.check) deps.router.check(await specOf(state, { ...intent, at: iso(deps.clock()) }, deps));
  const checked = await checkTargets(state, intent, deps);
  if (!checked.go) return checked.state;
  const pending = await save(deps, { ...checked.state, phase: 'progressing', intent: { ...intent, at: iso(deps.clock()) } });
  return commitIntent(pending, deps);
}

/**
 * A new intent must not replace one whose write may have gone live (a killed driver, a failed
 * read-back): the record would no longer say where traffic is. So read the live routing first
 * and record it as the verified weights; then the old intent can go.
 */
async function settleIntent(state: RolloutState, deps: EngineDeps): Promise<RolloutState> {
  if (!state.intent) return state;
  const live: LiveRoutes & Pick<RouteSpec, 'targets'> = await deps.router.read();
  const { intent, targets: _recorded, ...rest } = state;
  const weights = Object.keys(live.weights).length > 0 ? live.weights : state.weights;
  // A fleet reads back each target it reached; one it could not keeps its recorded weights.
  const targets = live.targets ? { ...state.targets, ...live.targets } : state.targets;
  await deps.store.audit.append({
    actor: deps.actor.owner,
    action: 'intent.superseded',
    rolloutId: state.rolloutId,
    detail: { intent: { to: intent.to, step: stepNumberOf(intent.step), weights: intent.weights }, live: weights, ...(live.targets ? { liveTargets: live.targets } : {}) },
  });
  return save(deps, { ...rest, weights, ...(targets ? { targets } : {}) });
}

/**
 * Before a write that raises the candidate's weight, ask the router whether the candidate's
 * targets are ready (ALB: registered and healthy), because weight on targets that are still
 * starting is what gives users 503s. Not ready: the state records the wait and the driver asks
 * again at its check interval; past the plan's deadline the rollout is rolled back — no traffic
 * has moved to the candidate by then.
 */
async function checkTargets(state: RolloutState, intent: Omit<Intent, 'at'>, deps: EngineDeps): Promise<{ state: RolloutState; go: boolean }> {
  // A fleet in waves raises one target at a time: what counts is the largest share any target gets.
  const weight = peakShare(state.candidate, intent.weights, intent.targets);
  const raises = intent.to === 'holding' && weight > peakShare(state.candidate, state.weights, state.targets);
  if (!raises || (!deps.router.targetsReady && !deps.workload)) return { state, go: true };
  // A workload of several parts is scaled part by part: the step it is readied for is recorded
  // before the first of them moves, so a crash in between leaves each on this step or the last.
  if (deps.workload && state.readying?.step !== intent.step) state = await save(deps, { ...state, readying: { step: intent.step, since: iso(deps.clock()) } });
  const answer = await candidateReadiness(state.candidate, weight, deps);
  const audit = (action: string, detail: Record<string, unknown>) => deps.store.audit.append({ actor: deps.actor.owner, action, rolloutId: state.rolloutId, detail: { version: state.candidate, detail: answer.detail, ...detail } });
  // The step it waits to enter is kept, so a promote that skipped a hold is not forgotten.
  const wait = await awaitReadiness(state, answer, intent.step, (leftS) => `${state.candidate}'s targets are not ready (${answer.detail}); no weight moves to it, waiting up to ${leftS}s more`, deps);
  switch (wait.outcome) {
    case 'ready':
      if (wait.waitedMs !== undefined) await audit('targets.ready', { waitedMs: wait.waitedMs });
      return { state: wait.state, go: true };
    case 'expired': {
      const reason = answer.stuck ? `${state.candidate} cannot become ready: ${answer.stuck}` : `${state.candidate}'s targets were not ready within ${Math.round(wait.timeoutMs / 1000)}s: ${answer.detail}`;
      return { state: await rollback(wait.state, 'gate', reason, deps), go: false };
    }
    case 'waiting':
      if (wait.first) await audit('targets.waiting', {});
      return { state: wait.state, go: false };
  }
}

/** What one look at something the engine waits for (pods, targets, a promotion) came to. */
type Wait =
  | { outcome: 'ready'; state: RolloutState; waitedMs?: number }
  | { outcome: 'expired'; state: RolloutState; timeoutMs: number }
  | { outcome: 'waiting'; state: RolloutState; first: boolean };

/**
 * One look at a wait bounded by the plan's readiness deadline: the time is counted from the
 * first look (recorded in `waitingForTargets`), the driver looks again at its check interval,
 * and a `stuck` answer ends the wait at once. Each look that waits says so as a retrying error
 * event — every renderer (plain, JSON, console) shows it as such.
 */
async function awaitReadiness(state: RolloutState, answer: TargetReadiness, step: StepIndex | undefined, waitingText: (leftS: number) => string, deps: EngineDeps): Promise<Wait> {
  const { waitingForTargets: waiting, ...rest } = state;
  const now = deps.clock();
  const since = waiting ? Date.parse(waiting.since) : now;
  if (answer.ready) return { outcome: 'ready', state: rest, ...(waiting ? { waitedMs: now - since } : {}) };
  const timeoutMs = state.plan.readinessTimeoutMs ?? DEFAULT_READINESS_TIMEOUT_MS;
  if (answer.stuck || now - since >= timeoutMs) return { outcome: 'expired', state: rest, timeoutMs };
  emit(deps, state, { event: 'error', message: waitingText(Math.round((since + timeoutMs - now) / 1000)), retrying: true });
  const saved = await save(deps, { ...rest, waitingForTargets: { since: iso(since), detail: answer.detail, ...(step !== undefined ? { step } : {}) } });
  return { outcome: 'waiting', state: saved, first: !waiting };
}

/**
 * Whether the candidate can take `weight`: the workload scales its canary for it first (at least
 * one replica) and answers for its pods; the router answers for its targets when it can tell.
 */
async function candidateReadiness(candidate: string, weight: number, deps: EngineDeps): Promise<TargetReadiness> {
  const pods = deps.workload ? await deps.workload.scaleFor(candidate, weight) : undefined;
  if (pods && !pods.ready) return pods;
  const targets = deps.router.targetsReady ? await deps.router.targetsReady(candidate) : undefined;
  if (targets && !targets.ready) return targets;
  return { ready: true, detail: [pods?.detail, targets?.detail].filter(Boolean).join('; ') };
}

/** The candidate's largest share in `weights` or any target's weights. */
function peakShare(candidate: string, weights: Weights, targets: Record<string, Weights> | undefined): number {
  return Math.max(weights[candidate] ?? 0, ...Object.values(targets ?? {}).map((w) => w[candidate] ?? 0));
}

/** The whole routing of an intent: its weights, the pins and waves, and the backends' roles. */
async function specOf(state: RolloutState, intent: Intent, deps: EngineDeps): Promise<RouteSpec> {
  const routed = deps.routes ? await deps.routes(state, intent) : { weights: intent.weights };
  // Per-target weights (waves) and whether this write takes traffic back to safety matter to a fleet only.
  const spec: RouteSpec = { ...routed, ...(intent.targets ? { targets: intent.targets } : {}), ...(intent.to === 'rolled_back' || intent.to === 'aborted' ? { rollback: true } : {}) };
  // Backends are roles only when a workload runs the versions (the stable and canary Services).
  return deps.workload ? { ...spec, roles: intent.roles ?? versionRoles(state) } : spec;
}

/**
 * Write the intent's weights (one router write, read back by the router) and commit the phase.
 * On a router error the intent stays recorded and the error is rethrown for the driver to retry.
 */
export async function commitIntent(state: RolloutState, deps: EngineDeps): Promise<RolloutState> {
  const intent = state.intent!;
  let result;
  try {
    const spec = await specOf(state, intent, deps);
    const fence = await deps.fence?.();
    result = await deps.router.apply(fence === undefined ? spec : { ...spec, fence });
  } catch (e) {
    const message = (e as Error).message;
    await save(deps, { ...state, lastError: { message, at: iso(deps.clock()) } });
    throw e;
  }
  const now = deps.clock();
  const step = state.plan.steps[intent.step];
  const holding = intent.to === 'holding';
  if (result.drift) {
    await deps.store.audit.append({ actor: deps.actor.owner, action: 'router.drift', rolloutId: state.rolloutId, detail: { drift: result.drift } });
    emit(deps, state, { event: 'error', message: `${result.drift}; Cutover's routing was written over the fresh object`, retrying: false });
  }
  // An operator's request carried out by a live driver is recorded as theirs, with the driver beside it.
  await deps.store.audit.append({
    actor: intent.by ?? deps.actor.owner,
    action: holding ? 'step.entered' : intent.to === 'promoted' ? 'rollout.promoted' : intent.to === 'aborted' ? 'rollout.aborted' : 'rollout.rolled_back',
    rolloutId: state.rolloutId,
    detail: {
      step: stepNumberOf(intent.step),
      weights: intent.weights,
      generation: result.generation,
      changed: result.changed,
      reason: intent.reason,
      ...(holding && step?.orgs ? { orgs: step.orgs } : {}),
      ...(intent.evidence ? { gates: intent.evidence } : {}),
      ...(intent.by ? { driver: deps.actor.owner } : {}),
    },
  });
  const { intent: _done, lastError: _cleared, paused: _p, gates: _g, waitingForTargets: _w, readying: _r, promotion: _pr, ...rest } = state;
  let next: RolloutState = {
    ...rest,
    ...(holding ? {} : state.gates ? { gates: state.gates } : {}),
    // The workload is tidied after this save: recorded, so a crash before it is done is finished by `deploy resume`.
    ...(!holding && deps.workload ? { retiring: { restoreStable: intent.to !== 'promoted' } } : {}),
    phase: intent.to,
    step: intent.step,
    weights: intent.weights,
    // Each target's weights where they differ (waves); none once every target has the same.
    targets: intent.targets,
    ...(result.generation !== undefined ? { generation: result.generation } : {}),
    ...(holding
      ? { holdStartedAt: iso(now), holdUntil: iso(now + (step?.holdMs ?? 0)) }
      : { outcome: { reason: intent.reason ?? intent.to, at: iso(now), by: intent.by ?? deps.actor.owner } }),
  };
  if (intent.to === 'promoted') {
    const { holdUntil: _h, holdStartedAt: _s, ...ended } = next;
    next = ended;
  }
  next = await save(deps, next);
  if (!holding) next = await retireWorkload(next, deps);
  emit(deps, next, { event: 'weights', weights: intent.weights, changed: result.changed, ...(result.generation !== undefined ? { generation: result.generation } : {}) });
  if (holding && step) {
    emit(deps, next, {
      event: 'step',
      steps: next.plan.steps.length,
      weight: step.weight,
      weights: next.weights,
      ...(next.generation !== undefined ? { generation: next.generation } : {}),
      ...(step.orgs ? { orgs: step.orgs.length } : {}),
      ...(step.targets ? { targets: step.targets } : {}),
      holdMs: step.holdMs,
      holdUntil: next.holdUntil!,
    });
  } else if (intent.to !== 'promoted' && !holding) {
    const excessFailures = excessFailuresOf(state.gates);
    // A fleet's gate results say which target they judged: the rollback names the one that failed.
    const target = (intent.evidence?.find((r) => r.verdict === 'failed') as { target?: string } | undefined)?.target;
    emit(deps, next, {
      event: 'rollback',
      cause: intent.to === 'aborted' ? 'abort' : 'gate',
      reason: intent.reason ?? intent.to,
      weights: intent.weights,
      ...(target !== undefined ? { target } : {}),
      ...(intent.to === 'aborted' ? { by: intent.by ?? deps.actor.owner } : {}),
      ...(excessFailures !== undefined ? { excessFailures } : {}),
    });
  }
  return next;
}

/**
 * After traffic has left the canary (a rollback, or a promotion now served by stable), scale the
 * canary down — never before, so no request meets a pod being stopped. A rollback also puts back
 * on stable whatever else the rollout changed (a promotion begun, a CronJob switched at a step).
 * A failure here leaves traffic where it safely is: it is recorded and shown, the rollout's
 * outcome stands, and `retiring` stays recorded for `deploy resume` to try again.
 */
export async function retireWorkload(state: RolloutState, deps: EngineDeps): Promise<RolloutState> {
  if (!deps.workload || !state.retiring) return state;
  const restoreStable = state.retiring.restoreStable;
  try {
    if (restoreStable) await deps.workload.restoreStable(state.stable);
    await deps.workload.retire();
    await deps.store.audit.append({ actor: deps.actor.owner, action: 'workload.retired', rolloutId: state.rolloutId, detail: { canaryScaledTo: 0, ...(restoreStable ? { stableRestoredTo: state.stable } : {}) } });
  } catch (e) {
    const message = (e as Error).message;
    await deps.store.audit.append({ actor: deps.actor.owner, action: 'workload.retire_failed', rolloutId: state.rolloutId, detail: { error: message } });
    emit(deps, state, { event: 'error', message: `traffic is on ${servingOf(state)}, but the canary could not be scaled down: ${message}`, retrying: false });
    return state;
  }
  const { retiring: _done, ...rest } = state;
  return save(deps, rest);
}

const servingOf = (state: RolloutState) => (state.phase === 'promoted' ? state.candidate : state.stable);

/**
 * The end of a rollout on a workload: the candidate holds all traffic on the canary. The stable
 * Deployment is given the canary's pod template (recorded first, so a rollback can undo it), and
 * once it has rolled out one write moves the traffic to the stable backend; then the canary is
 * scaled down. A promotion that does not roll out in time pauses — traffic stays on the healthy
 * canary — for a person to fix it and resume, or abort.
 */
async function promoteWorkload(state: RolloutState, workload: Workload, deps: EngineDeps): Promise<RolloutState> {
  if (!state.promotion) {
    await deps.store.audit.append({ actor: deps.actor.owner, action: 'promotion.started', rolloutId: state.rolloutId, detail: { version: state.candidate } });
    state = await save(deps, { ...state, promotion: { since: iso(deps.clock()) } });
  }
  // A run of the candidate failing meanwhile (a CronJob's Job) is a failed gate, promotion or not.
  const failure = await workload.failure?.(state.candidate);
  if (failure) return rollback(state, 'gate', failure, deps);
  const answer = await workload.promote(state.candidate);
  const wait = await awaitReadiness(state, answer, undefined, (leftS) => `promoting ${state.candidate} into the stable Deployment: ${answer.detail}; waiting up to ${leftS}s more`, deps);
  switch (wait.outcome) {
    case 'ready':
      return transition(wait.state, { to: 'promoted', step: state.step, weights: { [state.candidate]: 100 }, roles: { [state.candidate]: 'stable' }, reason: `${state.candidate} took all traffic` }, deps);
    case 'expired': {
      const why = `the stable Deployment did not roll out ${state.candidate} within ${Math.round(wait.timeoutMs / 1000)}s: ${answer.stuck ?? answer.detail}; traffic stays on the canary (${state.candidate})`;
      return pause(wait.state, 'stuck', deps, deps.actor.owner, why);
    }
    case 'waiting':
      return wait.state;
  }
}

/** Weights of step `index` of this rollout. */
function weightsAt(state: RolloutState, index: StepIndex): Weights {
  return stepWeights(state.stable, state.candidate, state.plan.steps[index]!.weight);
}

/** Move to the next step, or finish when the last one is done. */
async function advance(state: RolloutState, deps: EngineDeps): Promise<RolloutState> {
  const nextIndex = state.step + 1;
  if (nextIndex < state.plan.steps.length) {
    return transition(state, { to: 'holding', step: nextIndex, weights: weightsAt(state, nextIndex) }, deps);
  }
  if (deps.workload && state.stable !== state.candidate) return promoteWorkload(state, deps.workload, deps);
  await deps.store.audit.append({
    actor: deps.actor.owner,
    action: 'rollout.promoted',
    rolloutId: state.rolloutId,
    detail: { version: state.candidate, weights: state.weights },
  });
  const { holdUntil: _h, holdStartedAt: _s, paused: _p, ...rest } = state;
  return save(deps, { ...rest, phase: 'promoted', outcome: { reason: `${state.candidate} took all traffic`, at: iso(deps.clock()), by: deps.actor.owner } });
}

/** Pause at the current step. */
async function pause(state: RolloutState, reason: PauseReason, deps: EngineDeps, by = deps.actor.owner, why?: string): Promise<RolloutState> {
  const remainingMs = reason === 'operator' && state.holdUntil ? Math.max(0, Date.parse(state.holdUntil) - deps.clock()) : 0;
  await deps.store.audit.append({ actor: by, action: 'rollout.paused', rolloutId: state.rolloutId, detail: { step: stepNumberOf(state.step), reason, ...(why ? { why } : {}) } });
  const next = await save(deps, { ...state, phase: 'paused', paused: { reason, at: iso(deps.clock()), by, remainingMs } });
  emit(deps, next, { event: 'paused', reason });
  return next;
}

/**
 * Advance the rollout by at most one transition. Returns the (saved) new state, or the same
 * state when nothing is due yet. Router errors propagate with the intent kept.
 */
export async function tick(state: RolloutState, deps: EngineDeps): Promise<RolloutState> {
  if (state.intent) return commitIntent(state, deps);
  switch (state.phase) {
    case 'pending':
      return transition(state, { to: 'holding', step: 0, weights: weightsAt(state, 0) }, deps);
    case 'holding': {
      // Waiting for the candidate's pods or targets before entering a later step: keep checking
      // the current step's gates (a failure still rolls back), then ask again.
      const waitingFor = state.waitingForTargets?.step;
      if (waitingFor === undefined || waitingFor <= state.step) return hold(state, deps);
      const checked = await checkGates(state, deps);
      if (checked.phase !== 'holding') return checked;
      return transition(checked, { to: 'holding', step: waitingFor, weights: weightsAt(checked, waitingFor) }, deps);
    }
    default:
      return state;
  }
}

/**
 * One check of a hold: evaluate the step's gates (a failure rolls back at once), and when the
 * hold is over move on only if every gate passed. Gates still inconclusive (or erroring) keep
 * the step where it is until the plan's limit, then pause or roll back — never promote.
 */
async function hold(state: RolloutState, deps: EngineDeps): Promise<RolloutState> {
  const step = state.plan.steps[state.step]!;
  const now = deps.clock();
  const holdUntil = Date.parse(state.holdUntil ?? '');
  state = await checkGates(state, deps);
  if (state.phase !== 'holding') return state;
  const results = step.gates.length > 0 ? (state.gates ?? []) : [];
  if (now < holdUntil) return state;
  const open = results.filter((r) => r.verdict !== 'passed');
  if (open.length === 0) return step.pause ? pause(state, 'step', deps) : advance(state, deps);
  if (now < holdUntil + state.plan.inconclusive.afterMs) return state;
  const why = `gates did not pass within ${Math.round((now - Date.parse(state.holdStartedAt ?? state.updatedAt)) / 1000)}s: ${open.map((r) => `${r.gate} ${r.verdict} (${r.reason})`).join('; ')}`;
  if (state.plan.inconclusive.action === 'rollback') return rollback(state, 'gate', why, deps, results);
  return pause(state, 'inconclusive', deps, deps.actor.owner, why);
}

/** Evaluate the current step's gates and record them; a failed gate rolls back at once. */
async function checkGates(state: RolloutState, deps: EngineDeps): Promise<RolloutState> {
  const failure = await deps.workload?.failure?.(state.candidate);
  if (failure) return rollback(state, 'gate', failure, deps);
  const step = state.plan.steps[state.step]!;
  if (step.gates.length === 0) return state;
  if (!deps.gates) throw new OperationError(`step ${step.index + 1} has gates (${step.gates.join(', ')}) but no metrics provider is configured`, 'add prometheus: to deploy.yaml');
  state = await recordGates(state, await deps.gates.evaluate(state, step.gates, deps.clock()), deps);
  const results = state.gates ?? [];
  const failed = results.find((r) => r.verdict === 'failed');
  return failed ? rollback(state, 'gate', `gate ${failed.gate} failed: ${failed.reason}`, deps, results) : state;
}

/** Keep the latest gate results in state, emit them, and audit every change of verdict. */
async function recordGates(state: RolloutState, withMemory: GateResult[], deps: EngineDeps): Promise<RolloutState> {
  const gateMemory = { ...state.gateMemory };
  const results = withMemory.map(({ memory, ...r }) => {
    if (memory !== undefined) gateMemory[r.gate] = memory;
    return r;
  });
  for (const r of results) {
    const before = state.gates?.find((g) => g.gate === r.gate);
    if (before?.verdict !== r.verdict) {
      await deps.store.audit.append({ actor: deps.actor.owner, action: 'gate.verdict', rolloutId: state.rolloutId, detail: { step: stepNumberOf(state.step), ...r } });
    }
    const { at: _at, ...rest } = r;
    emit(deps, state, { event: 'gate', ...rest });
  }
  return save(deps, { ...state, gates: results, ...(Object.keys(gateMemory).length ? { gateMemory } : {}) });
}

/** Send all traffic back to stable and end the rollout as aborted (by hand) or rolled back (a gate). */
export async function rollback(state: RolloutState, cause: 'abort' | 'gate', reason: string, deps: EngineDeps, evidence?: GateResult[], by?: string): Promise<RolloutState> {
  if (isTerminal(state)) return state;
  return transition(
    state,
    { to: cause === 'abort' ? 'aborted' : 'rolled_back', step: Math.max(state.step, 0), weights: { [state.stable]: 100 }, reason, ...(evidence ? { evidence } : {}), ...(by && by !== deps.actor.owner ? { by } : {}) },
    deps,
  );
}

/** Continue a paused rollout: `promote` skips to the next step, `resume` finishes an operator pause's hold. */
export async function unpause(state: RolloutState, how: 'promote' | 'resume', deps: EngineDeps, by = deps.actor.owner): Promise<RolloutState> {
  if (state.phase !== 'paused') return state;
  await deps.store.audit.append({ actor: by, action: 'rollout.continued', rolloutId: state.rolloutId, detail: { step: stepNumberOf(state.step), how } });
  const { paused, ...rest } = state;
  if (how === 'resume' && paused?.reason === 'operator' && state.step >= 0) {
    return save(deps, { ...rest, phase: 'holding', holdUntil: iso(deps.clock() + paused.remainingMs) });
  }
  if (how === 'resume' && paused?.reason === 'inconclusive') {
    // Gates get another full limit past a hold that is already over.
    return save(deps, { ...rest, phase: 'holding', holdUntil: iso(deps.clock()) });
  }
  return advance({ ...rest, phase: 'holding' }, deps);
}

/** Skip the rest of the current hold (`full`: every remaining step) and move on now. */
export async function promoteNow(state: RolloutState, full: boolean, deps: EngineDeps, by = deps.actor.owner): Promise<RolloutState> {
  if (state.phase === 'paused') {
    if (!full) return unpause(state, 'promote', deps, by);
    const { paused: _p, ...rest } = state;
    state = { ...rest, phase: 'holding' };
  }
  if (state.phase !== 'holding' && state.phase !== 'pending') return state;
  await deps.store.audit.append({ actor: by, action: full ? 'rollout.promote_full' : 'rollout.promote_step', rolloutId: state.rolloutId, detail: { step: stepNumberOf(state.step) } });
  if (full) {
    const last = state.plan.steps.length - 1;
    if (state.step === last) return advance(state, deps);
    return transition(state, { to: 'holding', step: last, weights: weightsAt(state, last) }, deps);
  }
  return state.phase === 'pending' ? tick(state, deps) : advance(state, deps);
}

/** Pause by an operator's hand. */
export async function pauseByOperator(state: RolloutState, deps: EngineDeps, by = deps.actor.owner): Promise<RolloutState> {
  if (state.phase !== 'holding') return state;
  return pause(state, 'operator', deps, by);
}
