/**
 * Engine events recovered from two reads of the stored state. `deploy watch` runs no driver, so
 * no events reach it; turning each change of the state file into the event the driver emitted
 * for it lets the console keep one fold and one wording for both.
 */
import { eventOf, type EngineEvent } from '../../engine/events.js';
import type { StepIndex } from '../../engine/plan.js';
import type { RolloutState } from '../../engine/state.js';
import { excessFailuresOf } from '../../gates/types.js';

/** What the previous read of the state looked like. */
export interface Seen {
  rolloutId: string;
  /** The stored step index it was at. */
  stepIndex: StepIndex;
  phase: RolloutState['phase'];
  /** When each gate was last measured. */
  gateAt: Record<string, string>;
}

/** The events that turn the state `before` described into `state`, oldest first, as the driver emitted them. */
export function stateChanges(before: Seen, state: RolloutState): EngineEvent[] {
  const events: EngineEvent[] = [];
  const fresh = before.rolloutId !== state.rolloutId;
  if (fresh) {
    events.push(
      eventOf(state, state.startedAt, {
        event: 'started',
        stable: state.stable,
        candidate: state.candidate,
        steps: state.plan.steps.map((s) => ({ weight: s.weight, holdMs: s.holdMs, pause: s.pause })),
      }),
    );
  }
  const step = state.plan.steps[state.step];
  if (step && state.holdUntil && (fresh || state.step !== before.stepIndex)) {
    events.push(
      eventOf(state, state.holdStartedAt ?? state.updatedAt, {
        event: 'step',
        steps: state.plan.steps.length,
        weight: step.weight,
        weights: state.weights,
        ...(state.generation !== undefined ? { generation: state.generation } : {}),
        ...(step.orgs ? { orgs: step.orgs.length } : {}),
        holdMs: step.holdMs,
        holdUntil: state.holdUntil,
      }),
    );
  }
  const gateAt = fresh ? {} : before.gateAt;
  for (const g of state.gates ?? []) {
    if (gateAt[g.gate] === g.at) continue;
    const { at, ...result } = g;
    events.push(eventOf(state, at, { ...result, event: 'gate' }));
  }
  if (state.phase !== before.phase || fresh) {
    const at = state.updatedAt;
    if (state.phase === 'paused' && state.paused) events.push(eventOf(state, at, { event: 'paused', reason: state.paused.reason }));
    if (state.phase === 'rolled_back' || state.phase === 'aborted') {
      // As the driver's rollback event counts the users harmed: from the gates it rolled back on.
      const excessFailures = excessFailuresOf(state.gates);
      events.push(eventOf(state, state.outcome?.at ?? at, { event: 'rollback', cause: state.phase === 'aborted' ? 'abort' : 'gate', reason: state.outcome?.reason ?? state.phase, weights: state.weights, ...(state.phase === 'aborted' && state.outcome?.by ? { by: state.outcome.by } : {}), ...(excessFailures !== undefined ? { excessFailures } : {}) }));
    }
    if (state.phase === 'promoted') events.push(eventOf(state, at, { event: 'done', phase: 'promoted', exitCode: 0, weights: state.weights }));
    if (state.phase === 'failed') events.push(eventOf(state, at, { event: 'error', message: state.lastError?.message ?? 'router writes kept failing', retrying: false }));
  }
  return events;
}
