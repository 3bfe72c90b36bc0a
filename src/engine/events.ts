/**
 * Engine events: what the plain, JSON and terminal renderers show. The engine emits them; no
 * renderer holds logic of its own.
 */
import type { GateResult } from '../gates/types.js';
import type { Weights } from '../routers/router.js';
import type { Phase, PauseReason } from './state.js';

/** Fields every event carries. */
interface Base {
  at: string;
  service: string;
  rolloutId: string;
}

/** A rollout began. */
export interface StartedEvent extends Base {
  event: 'started';
  stable: string;
  candidate: string;
  steps: { weight: number; holdMs: number; pause: boolean }[];
}
/** A step is live (its weights verified) and its hold began. */
export interface StepEvent extends Base {
  event: 'step';
  step: number;
  steps: number;
  weight: number;
  weights: Weights;
  generation?: number;
  /** Org waves: how many orgs are on the candidate at this step. */
  orgs?: number;
  /** A fleet in waves: the candidate's share in each target at this step. */
  targets?: Record<string, number>;
  holdMs: number;
  holdUntil: string;
}
/** Weights were written and read back. */
export interface WeightsEvent extends Base {
  event: 'weights';
  weights: Weights;
  generation?: number;
  changed: boolean;
}
/** Progress of a hold. */
export interface HoldEvent extends Base {
  event: 'hold';
  step: number;
  remainingMs: number;
}
/** A gate was checked. */
export interface GateEvent extends Base, Omit<GateResult, 'at'> {
  event: 'gate';
  step: number;
}
/** The rollout paused. */
export interface PausedEvent extends Base {
  event: 'paused';
  step: number;
  reason: PauseReason;
}
/** Traffic went back to stable (a failed gate, or an abort). */
export interface RollbackEvent extends Base {
  event: 'rollback';
  cause: 'gate' | 'abort';
  reason: string;
  weights: Weights;
  /** A fleet: the target whose gate failed. */
  target?: string;
  /** An abort: who asked for it (the operator, when a live driver carried it out). */
  by?: string;
  /** The candidate's failed requests beyond stable's error rate over the rollout (error-rate gates). */
  excessFailures?: number;
  /** Set by the demo: ms from the fault's start to 100% on stable, and failed requests meanwhile. */
  timeToSafetyMs?: number;
  badRequests?: number;
}
/** A write failed and will be retried, or the driver gave up. */
export interface ErrorEvent extends Base {
  event: 'error';
  message: string;
  retrying: boolean;
}
/** A provider's call failed in a way worth another attempt (throttled, a 5xx, a dropped connection). */
export interface RetryEvent extends Base {
  event: 'retry';
  /** The provider (`alb`) and its call (`ModifyListener`). */
  provider: string;
  operation: string;
  error: string;
  delayMs: number;
}
/** The driver stopped: the phase says why. */
export interface DoneEvent extends Base {
  event: 'done';
  phase: Phase | 'detached';
  exitCode: number;
  step: number;
  weights: Weights;
  /** The rollout as it stands: its versions, how long it has run, why it ended, its last gate verdicts. */
  stable?: string;
  candidate?: string;
  durationMs?: number;
  reason?: string;
  gates?: { gate: string; verdict: string; reason: string }[];
  excessFailures?: number;
}

/** Any engine event. */
export type EngineEvent =
  | StartedEvent
  | StepEvent
  | WeightsEvent
  | HoldEvent
  | GateEvent
  | PausedEvent
  | RollbackEvent
  | ErrorEvent
  | RetryEvent
  | DoneEvent;

/** An event without the fields the engine fills in. */
export type EventBody = EngineEvent extends infer E ? (E extends EngineEvent ? Omit<E, keyof Base> : never) : never;

/** Where events go. */
export type EventSink = (event: EngineEvent) => void;
