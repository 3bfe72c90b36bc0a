/**
 * A plan: what a strategy turns a spec into, before any I/O. The engine executes it step by step.
 */

/**
 * A step's position in `plan.steps`, from 0 (-1 before the first step is live): how plans, the stored
 * state and the engine count steps. People never see one: see `StepNumber`.
 */
export type StepIndex = number;

/**
 * A step as people count it, from 1 (0 before the first step is live): the `step` of every event,
 * `deploy status`, the audit log's records, notifications, the report and the console.
 */
export type StepNumber = number;

/** The step number people see for a stored step index: the one place the two counts meet. */
export function stepNumberOf(index: StepIndex): StepNumber {
  return index + 1;
}

/** One step of a plan. */
export interface PlanStep {
  /** Position in the plan, from 0. */
  index: StepIndex;
  /** Candidate share of traffic in percent. */
  weight: number;
  /** How long to hold at this weight, in milliseconds. */
  holdMs: number;
  /** After the hold, wait for `deploy promote`. */
  pause: boolean;
  /** Names of the gates checked during the hold. */
  gates: string[];
  /** Org waves: every org on the candidate at this step (cumulative). */
  orgs?: string[];
  /** Error-rate pass margin of this step as written in deploy.yaml (fraction); default derived. */
  margin?: number;
  /**
   * A fleet moving target by target (waves): the candidate's share in each target at this step.
   * `weight` is then the share every target has reached, which is what unpinned orgs follow.
   */
  targets?: Record<string, number>;
}

/** A plan's step as people are shown it (`deploy plan`, `deploy status`): numbered by `step`, from 1. */
export type NumberedStep = Omit<PlanStep, 'index'> & { step: StepNumber };

/** The plan's steps numbered as people count them. */
export function numberedSteps(steps: readonly PlanStep[]): NumberedStep[] {
  return steps.map(({ index, ...rest }) => ({ step: stepNumberOf(index), ...rest }));
}

/** The service's traffic when the rollout began, from which the steps' margins are derived. */
export interface Traffic {
  /** Requests a second to stable over the window before the rollout. */
  requestsPerSecond: number;
  /** Stable's error rate over it (fraction). */
  errorRate: number;
  /** The window measured, seconds. */
  windowSeconds: number;
}

/** What happens when gates are still inconclusive after a step's hold. */
export interface InconclusivePolicy {
  /** How long past the hold gates may stay inconclusive, ms. */
  afterMs: number;
  action: 'pause' | 'rollback';
}

/** A whole plan. */
export interface Plan {
  strategy: 'canary' | 'org-waves' | 'blue-green';
  steps: PlanStep[];
  inconclusive: InconclusivePolicy;
  /**
   * How long the engine waits for the candidate's servers to be ready (an ALB target group's
   * targets healthy) before weight moves to it; past that the rollout is rolled back without
   * having moved any traffic. Default `DEFAULT_READINESS_TIMEOUT_MS`.
   */
  readinessTimeoutMs?: number;
  /** Measured when the rollout began (absent when Prometheus had no data): margins follow it. */
  traffic?: Traffic;
  /**
   * How long a router write may keep failing (counted from its recorded intent) before the driver
   * stops retrying it: a write that moves forward is then rolled back, and a rollback that still
   * fails is left recorded, owed, for the next command. Set for fleets, where one unreachable
   * target must not stop the others; without it the driver gives up after a few attempts.
   */
  writeTimeoutMs?: number;
}

/** Wait for the candidate's targets when the plan gives no deadline. */
export const DEFAULT_READINESS_TIMEOUT_MS = 5 * 60_000;

/** Each target's weights at `step` when the step moves targets apart (waves), else undefined. */
export function targetWeights(stable: string, candidate: string, step: Pick<PlanStep, 'targets'> | undefined): Record<string, Record<string, number>> | undefined {
  if (!step?.targets) return undefined;
  return Object.fromEntries(Object.entries(step.targets).map(([target, weight]) => [target, stepWeights(stable, candidate, weight)]));
}

/** Weights of a step: the candidate's share, the rest on stable. */
export function stepWeights(stable: string, candidate: string, weight: number): Record<string, number> {
  if (stable === candidate) return { [stable]: 100 };
  return { [stable]: +(100 - weight).toFixed(6), [candidate]: weight };
}
