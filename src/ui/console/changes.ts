/**
 * Engine events recovered from two reads of the stored state. `deploy watch` runs no driver, so
 * no events reach it; turning each change of the state file into the event the driver emitted
 * for it lets the console keep one fold and one wording for both.
 */
import type { EngineEvent } from '../../engine/events.js';
import type { RolloutState } from '../../engine/state.js';
import { excessFailuresOf } from '../../gates/types.js';

/** What the previous read of the state looked like. */
export interface Seen {
  rolloutId: string;
  step: number;
  phase: RolloutState['phase'];
  /** When each gate was last measured. */
  gateAt: Record<string, string>;
}

/** The events that turn the state `before` described into `state`, oldest first. */
export function stateChanges(before: Seen, state: RolloutState): EngineEvent[] {
  const base = { service: state.service, rolloutId: state.rolloutId };
  const events: EngineEvent[] = [];
  const fresh = before.rolloutId !== state.rolloutId;
  if (fresh) {
    events.push({
      ...base,
      at: state.startedAt,
      event: 'started',
      stable: state.stable,
      candidate: state.candidate,
      steps: state.plan.steps.map((s) => ({ weight: s.weight, holdMs: s.holdMs, pause: s.pause })),
    });
  }
  const step = state.plan.steps[state.step];
  if (step && state.holdUntil && (fresh || state.step !== before.step)) {
    events.push({
      ...base,
      at: state.holdStartedAt ?? state.updatedAt,
      event: 'step',
      step: state.step,
      steps: state.plan.steps.length,
      weight: step.weight,
      weights: state.weights,
      ...(state.generation !== undefined ? { generation: state.generation } : {}),
      ...(step.orgs ? { orgs: step.orgs.length } : {}),
      holdMs: step.holdMs,
      holdUntil: state.holdUntil,
    });
  }
  const gateAt = fresh ? {} : before.gateAt;
  for (const g of state.gates ?? []) {
    if (gateAt[g.gate] === g.at) continue;
    events.push({ ...base, ...g, event: 'gate', step: state.step });
  }
  if (state.phase !== before.phase || fresh) {
    const at = state.updatedAt;
    if (state.phase === 'paused' && state.paused) events.push({ ...base, at, event: 'paused', step: state.step, reason: state.paused.reason });
    if (state.phase === 'rolled_back' || state.phase === 'aborted') {
      // As the driver's rollback event counts the users harmed: from the gates it rolled back on.
      const excessFailures = excessFailuresOf(state.gates);
      events.push({ ...base, at: state.outcome?.at ?? at, event: 'rollback', cause: state.phase === 'aborted' ? 'abort' : 'gate', reason: state.outcome?.reason ?? state.phase, weights: state.weights, ...(state.phase === 'aborted' && state.outcome?.by ? { by: state.outcome.by } : {}), ...(excessFailures !== undefined ? { excessFailures } : {}) });
    }
    if (state.phase === 'promoted') events.push({ ...base, at, event: 'done', phase: 'promoted', exitCode: 0, step: state.step, weights: state.weights });
    if (state.phase === 'failed') events.push({ ...base, at, event: 'error', message: state.lastError?.message ?? 'router writes kept failing', retrying: false });
  }
  return events;
}
