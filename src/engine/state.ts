/**
 * The stored rollout state: what a driver needs to carry on after a crash, a lost CI runner or a
 * hand-over to another engineer. Every router write is preceded by a recorded intent, so the live
 * routing is always either the recorded `weights` or the intent's weights, never unknown.
 */
import type { GateResult } from '../gates/types.js';
import type { VersionRoles, Weights } from '../routers/router.js';
import { numberedSteps, stepNumberOf, type Plan, type StepIndex } from './plan.js';

/** Phases of a rollout. */
export type Phase =
  | 'pending'
  | 'progressing'
  | 'holding'
  | 'paused'
  | 'promoted'
  | 'rolled_back'
  | 'aborted'
  | 'failed';

/** Every phase, for checking a stored state. */
const PHASES: readonly string[] = ['pending', 'progressing', 'holding', 'paused', 'promoted', 'rolled_back', 'aborted', 'failed'];

/** Phases after which nothing more happens to this rollout. */
export const TERMINAL_PHASES: readonly Phase[] = ['promoted', 'rolled_back', 'aborted'];

/** Why a rollout is paused. */
export type PauseReason = 'step' | 'operator' | 'inconclusive' | 'stuck';

/** A router write in flight: recorded before the write, cleared once it is verified. */
export interface Intent {
  /** Phase the rollout enters once the write is verified. */
  to: 'holding' | 'rolled_back' | 'aborted' | 'promoted';
  /** The step the rollout is at once the write is verified. */
  step: StepIndex;
  weights: Weights;
  reason?: string;
  /** Which backend serves each version in this write (default: stable and canary by role). */
  roles?: VersionRoles;
  /** The gate results behind a rollback, kept for the audit log. */
  evidence?: GateResult[];
  /** Who asked for it when not the driver that writes it (an operator's abort taken by a live driver). */
  by?: string;
  /** A fleet in waves: each target's weights where they differ from `weights`. */
  targets?: Record<string, Weights>;
  at: string;
}

/** The stored state of the latest rollout of a service. */
export interface RolloutState {
  schema: 1;
  rolloutId: string;
  service: string;
  stable: string;
  candidate: string;
  plan: Plan;
  phase: Phase;
  /** The current step; -1 before the first step is live. */
  step: StepIndex;
  /** The last weights verified live. */
  weights: Weights;
  /** A fleet in waves: the last weights verified live in each target, where they differ from `weights`. */
  targets?: Record<string, Weights>;
  intent?: Intent;
  /** Router generation of the last verified write, when the router numbers them. */
  generation?: number;
  /** When the current step's hold began and ends. */
  holdStartedAt?: string;
  holdUntil?: string;
  paused?: { reason: PauseReason; at: string; by: string; remainingMs: number };
  /** The latest result of each gate of the current step. */
  gates?: GateResult[];
  /** What gates carry from check to check across the whole rollout (the error-rate ladder's evidence), by gate. */
  gateMemory?: Record<string, unknown>;
  /** Why the rollout ended the way it did (rollback, abort, failure). */
  outcome?: { reason: string; at: string; by: string };
  /** Weight is due to move to the candidate but its targets are not ready yet (since when, what was seen). */
  waitingForTargets?: { since: string; detail: string; step?: StepIndex };
  /**
   * The workload is being readied for step `step` (recorded before it is first asked to scale):
   * from here until the step's intent, its parts may be on the recorded step or on this one.
   */
  readying?: { step: StepIndex; since: string };
  /**
   * The rollout is over but its workload has not been tidied yet (the canary scaled down, and
   * after a rollback everything else put back on stable): recorded with the outcome and cleared
   * once done, so a crash in between is finished by `deploy resume`.
   */
  retiring?: { restoreStable: boolean };
  /**
   * A workload promotion has begun: the stable Deployment was given the candidate's pod template
   * (since when). Recorded before that write, so a rollback knows to put stable back.
   */
  promotion?: { since: string };
  /** The last error a driver hit, kept until the next successful write. */
  lastError?: { message: string; at: string };
  startedAt: string;
  startedBy: string;
  updatedAt: string;
}

/** The version serving users once this rollout is over (or before it started). */
export function servingVersion(state: RolloutState): string {
  return state.phase === 'promoted' ? state.candidate : state.stable;
}

/**
 * Which backend serves each version: the stable version on the stable backend, the candidate on
 * the canary one (routers with a backend per version ignore this).
 */
export function versionRoles(state: Pick<RolloutState, 'stable' | 'candidate'>): VersionRoles {
  return state.stable === state.candidate ? { [state.stable]: 'stable' } : { [state.stable]: 'stable', [state.candidate]: 'canary' };
}

/**
 * The stored state as people are shown it (`deploy status -o json`): the same record, but every
 * step counted from 1 — the current one, the intent's, the one being readied or waited for, and
 * the plan's steps numbered by `step` instead of their `index`.
 */
export function stateForPeople(state: RolloutState) {
  const { intent, readying, waitingForTargets: waiting } = state;
  return {
    ...state,
    plan: { ...state.plan, steps: numberedSteps(state.plan.steps) },
    step: stepNumberOf(state.step),
    ...(intent ? { intent: { ...intent, step: stepNumberOf(intent.step) } } : {}),
    ...(readying ? { readying: { ...readying, step: stepNumberOf(readying.step) } } : {}),
    ...(waiting?.step !== undefined ? { waitingForTargets: { ...waiting, step: stepNumberOf(waiting.step) } } : {}),
  };
}

/** True when no driver should act on this rollout any more. */
export function isTerminal(state: RolloutState): boolean {
  return TERMINAL_PHASES.includes(state.phase);
}

/**
 * Check that a parsed value looks like a state this version wrote. Deliberately shallow: it
 * guards against a truncated or hand-edited file, not against every possible inconsistency.
 */
export function validateState(value: unknown): RolloutState {
  const s = value as Partial<RolloutState> | null;
  const problems: string[] = [];
  if (!s || typeof s !== 'object') throw new Error('not a JSON object');
  if (s.schema !== 1) problems.push(`schema is ${JSON.stringify(s.schema)}, expected 1`);
  for (const k of ['rolloutId', 'service', 'stable', 'candidate', 'phase', 'startedAt', 'updatedAt'] as const) {
    if (typeof s[k] !== 'string') problems.push(`${k} is missing`);
  }
  if (typeof s.phase === 'string' && !PHASES.includes(s.phase)) problems.push(`phase ${JSON.stringify(String(s.phase).slice(0, 40))} is not one of ${PHASES.join(', ')}`);
  if (typeof s.step !== 'number') problems.push('step is missing');
  if (!s.weights || typeof s.weights !== 'object') problems.push('weights is missing');
  if (!s.plan || !Array.isArray(s.plan.steps)) problems.push('plan.steps is missing');
  else if (typeof s.step === 'number' && (s.step < -1 || s.step >= s.plan.steps.length)) problems.push(`step ${s.step} is outside the plan`);
  if (problems.length) throw new Error(problems.join('; '));
  return s as RolloutState;
}
