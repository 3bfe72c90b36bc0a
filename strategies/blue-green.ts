/**
 * The blue/green strategy: green (the candidate) takes all traffic at once or in equal linear
 * steps with gates between, then bakes at 100% with gates while blue (stable) stays registered
 * at weight 0, so a rollback is one write back to blue. Before any weight moves, the engine
 * waits for green's targets to be healthy (`healthTimeout`). Pure: no I/O.
 */
import type { Plan, PlanStep } from '../src/engine/plan.js';
import { DEFAULT_INCONCLUSIVE_MS } from './canary.js';

/** `strategy.blueGreen` as validated (durations in ms). */
export interface BlueGreenSpec {
  steps?: number | undefined;
  stepHold?: number | undefined;
  bake?: number | undefined;
  healthTimeout?: number | undefined;
  inconclusive?: { after?: number | undefined; action?: 'pause' | 'rollback' | undefined } | undefined;
}

/** How long green bakes at 100% when the config gives no `bake`. */
export const DEFAULT_BAKE_MS = 30 * 60_000;
/** Hold between linear steps when the config gives no `stepHold`. */
export const DEFAULT_STEP_HOLD_MS = 5 * 60_000;
/** How long to wait for green's targets to be healthy when the config gives no `healthTimeout`. */
export const DEFAULT_HEALTH_TIMEOUT_MS = 5 * 60_000;

/**
 * Build the plan: `steps` equal shifts (1: all at once) ending at 100%, the last one held for the
 * bake. Shares are rounded to 0.1%, the finest an ALB weight expresses.
 */
export function planBlueGreen(spec: BlueGreenSpec = {}, gates: string[] = []): Plan {
  const count = spec.steps ?? 1;
  const steps: PlanStep[] = [];
  for (let i = 1; i <= count; i++) {
    const last = i === count;
    const holdMs = last ? (spec.bake ?? DEFAULT_BAKE_MS) : (spec.stepHold ?? DEFAULT_STEP_HOLD_MS);
    steps.push({ index: i - 1, weight: last ? 100 : Math.round((1000 * i) / count) / 10, holdMs, pause: false, gates: holdMs > 0 ? gates : [] });
  }
  return {
    strategy: 'blue-green',
    steps,
    inconclusive: { afterMs: spec.inconclusive?.after ?? DEFAULT_INCONCLUSIVE_MS, action: spec.inconclusive?.action ?? 'pause' },
    readinessTimeoutMs: spec.healthTimeout ?? DEFAULT_HEALTH_TIMEOUT_MS,
  };
}
