/**
 * The canary strategy: turns `strategy.canary` into a plan of weighted steps. Pure: no I/O.
 * The default follows the healthcare seed: 1% held for 30 minutes, then 5%, 25%, 50% and 100%.
 */
import type { Plan, PlanStep } from '../src/engine/plan.js';

/** A canary step as written in deploy.yaml (durations already in milliseconds). */
export interface CanaryStepSpec {
  weight: number;
  hold?: number | undefined;
  pause?: boolean | undefined;
  margin?: number | undefined;
}

/** `strategy.canary` as validated. */
export interface CanarySpec {
  steps?: CanaryStepSpec[] | undefined;
  defaultHold?: number | undefined;
  inconclusive?: { after?: number | undefined; action?: 'pause' | 'rollback' | undefined } | undefined;
}

/** How long gates may stay inconclusive past a hold before the policy acts. */
export const DEFAULT_INCONCLUSIVE_MS = 30 * 60_000;

/** Names of the gates a config defines (every held step checks all of them). */
export function gateNames(config: { gates?: { name: string }[] | undefined }): string[] {
  return (config.gates ?? []).map((g) => g.name);
}

/** Hold of a step that gives none. */
export const DEFAULT_HOLD_MS = 10 * 60_000;

/** The default ladder: 1% (30m) → 5% → 25% → 50% → 100%. */
export const DEFAULT_STEPS: readonly CanaryStepSpec[] = [
  { weight: 1, hold: 30 * 60_000 },
  { weight: 5 },
  { weight: 25 },
  { weight: 50 },
  { weight: 100, hold: 0 },
];

/**
 * Build the plan. A ladder that stops short of 100% gets a final 100% step without a hold,
 * because a rollout ends with the candidate taking all traffic (it becomes stable).
 */
export function planCanary(spec: CanarySpec = {}, gates: string[] = []): Plan {
  const defaultHold = spec.defaultHold ?? DEFAULT_HOLD_MS;
  const written = spec.steps ?? DEFAULT_STEPS;
  const steps: PlanStep[] = written.map((s, index) => ({
    index,
    weight: s.weight,
    holdMs: s.hold ?? (s.weight === 100 ? 0 : defaultHold),
    pause: s.pause ?? false,
    gates: s.weight === 100 && (s.hold ?? 0) === 0 ? [] : gates,
    ...(s.margin !== undefined ? { margin: s.margin } : {}),
  }));
  if (steps.at(-1)?.weight !== 100) {
    steps.push({ index: steps.length, weight: 100, holdMs: 0, pause: false, gates: [] });
  }
  return {
    strategy: 'canary',
    steps,
    inconclusive: { afterMs: spec.inconclusive?.after ?? DEFAULT_INCONCLUSIVE_MS, action: spec.inconclusive?.action ?? 'pause' },
  };
}
