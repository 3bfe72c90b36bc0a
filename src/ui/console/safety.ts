/**
 * SAFE: all traffic back on stable, verified, after a rollback or an abort — since when, how long
 * it took, and the users harmed. From the rollback event where the console sees it (the demo's
 * time to safety rides on it), else from what the stored state records.
 */
import type { RollbackEvent } from '../../engine/events.js';
import type { RolloutState } from '../../engine/state.js';
import { excessFailuresOf } from '../../gates/types.js';
import type { SafetyView } from './types.js';

/** SAFE as a rollback event tells it; `failedGate` is the first failing check of its step. */
export function safetyOfRollback(e: RollbackEvent, failedGate: { gate: string; at: number } | undefined, stable: string | undefined): SafetyView {
  const at = Date.parse(e.at);
  return {
    at,
    stable: Object.keys(e.weights).find((v) => (e.weights[v] ?? 0) >= 100) ?? stable ?? '?',
    ...(e.timeToSafetyMs !== undefined ? { timeToSafetyMs: e.timeToSafetyMs } : {}),
    ...(e.cause === 'gate' && failedGate ? { afterGate: { gate: failedGate.gate, ms: Math.max(0, at - failedGate.at) } } : {}),
    ...(e.excessFailures !== undefined ? { excessFailures: e.excessFailures } : {}),
  };
}

/** SAFE as the stored state records it: the outcome's time, the failed gate's check, the harm counted. */
export function safetyOfState(state: RolloutState): SafetyView {
  const at = Date.parse(state.outcome?.at ?? state.updatedAt);
  const failed = state.phase === 'rolled_back' ? state.gates?.find((g) => g.verdict === 'failed') : undefined;
  const excessFailures = excessFailuresOf(state.gates);
  return {
    at,
    stable: state.stable,
    ...(failed ? { afterGate: { gate: failed.gate, ms: Math.max(0, at - Date.parse(failed.at)) } } : {}),
    ...(excessFailures !== undefined ? { excessFailures } : {}),
  };
}
