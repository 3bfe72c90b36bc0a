/**
 * Fleet strategies: how a plan's ladder runs over several targets (regions, clusters). Pure: a
 * plan and the fleet's settings in, a plan out.
 *
 * - lockstep: the ladder as it is; every step is live in every target before its hold begins.
 * - waves: the whole ladder in the first target, a bake at 100% there, then the ladder in the
 *   next, and so on; each step names every target's share (`PlanStep.targets`), and its `weight`
 *   is the share every target has reached — what orgs not pinned follow, so an org moves in all
 *   regions at once, at the last step.
 *
 * Every held step also checks `reachable`: the fleet's look at each target's router, which holds
 * the step while a target does not answer and fails it once that lasts past the write timeout.
 */
import type { Plan, PlanStep } from '../src/engine/plan.js';

/** The gate every held step of a fleet checks: each target's router answers. */
export const REACHABLE_GATE = 'reachable';

/** The fleet section's settings, defaults filled in. */
export interface FleetPlanSpec {
  strategy: 'lockstep' | 'waves';
  /** Waves: the targets in order. */
  order: string[];
  /** Waves: the hold at 100% in each target but the last, before the next starts. */
  bakeMs: number;
  /** How long a write may keep failing before the driver rolls back (see Plan.writeTimeoutMs). */
  writeTimeoutMs: number;
}

/** The plan of a fleet: `plan`'s ladder run in lockstep or in waves over `spec.order`. */
export function planFleet(plan: Plan, spec: FleetPlanSpec): Plan {
  const steps = spec.strategy === 'waves' ? waves(plan.steps, spec.order, spec.bakeMs) : plan.steps;
  return { ...plan, steps: steps.map(watched), writeTimeoutMs: spec.writeTimeoutMs };
}

/** A held step also checks that every target answers. */
function watched(step: PlanStep): PlanStep {
  return step.holdMs > 0 && !step.gates.includes(REACHABLE_GATE) ? { ...step, gates: [...step.gates, REACHABLE_GATE] } : step;
}

/**
 * The ladder once per target: targets before the current one at 100%, those after at 0. The
 * current target's 100% step is held for the bake (with the ladder's gates) unless it is the last
 * target, whose 100% step ends the rollout as the ladder's does.
 */
function waves(ladder: PlanStep[], order: string[], bakeMs: number): PlanStep[] {
  const gates = [...new Set(ladder.flatMap((s) => s.gates))];
  const out: PlanStep[] = [];
  order.forEach((_target, i) => {
    const last = i === order.length - 1;
    for (const step of ladder) {
      const targets = Object.fromEntries(order.map((t, j) => [t, j < i ? 100 : j === i ? step.weight : 0]));
      const bake = step.weight === 100 && !last;
      out.push({
        ...step,
        index: out.length,
        weight: Math.min(...Object.values(targets)),
        targets,
        ...(bake ? { holdMs: Math.max(step.holdMs, bakeMs), gates: step.gates.length ? step.gates : gates } : {}),
      });
    }
  });
  return out;
}
