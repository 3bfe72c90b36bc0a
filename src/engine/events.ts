/**
 * Engine events: what the plain, JSON and terminal renderers show. The engine emits them; no
 * renderer holds logic of its own. Every `step` an event carries is a step number as people count
 * them, from 1: `eventOf` stamps it from the state's 0-based index, the one place that converts.
 */
import type { GateResult } from '../gates/types.js';
import type { Weights } from '../routers/router.js';
import { stepNumberOf, type StepNumber } from './plan.js';
import type { Phase, PauseReason, RolloutState } from './state.js';

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
  /** The step now live, from 1; `steps` is how many the plan has. */
  step: StepNumber;
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
  /** The step holding, from 1. */
  step: StepNumber;
  remainingMs: number;
}
/** A gate was checked. */
export interface GateEvent extends Base, Omit<GateResult, 'at'> {
  event: 'gate';
  /** The step whose hold the gate was checked in, from 1. */
  step: StepNumber;
}
/** The rollout paused. */
export interface PausedEvent extends Base {
  event: 'paused';
  /** The step paused at, from 1. */
  step: StepNumber;
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
  /** The step the rollout was at, from 1 (0: it never reached its first). */
  step: StepNumber;
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

/** An event without the fields `eventOf` fills in: the common ones, and the step. */
export type EventBody = EngineEvent extends infer E ? (E extends EngineEvent ? Omit<E, keyof Base | 'step'> : never) : never;

/** Events that say which step the rollout is at. */
const AT_STEP: ReadonlySet<EngineEvent['event']> = new Set(['step', 'hold', 'gate', 'paused', 'done']);

/**
 * An event of `state`'s rollout at `at`: the common fields, and for events that say which step
 * the rollout is at, its step number (from 1) taken from the state's step index (from 0).
 */
export function eventOf(state: Pick<RolloutState, 'service' | 'rolloutId' | 'step'>, at: string, body: EventBody): EngineEvent {
  const { event, ...rest } = body;
  const step = AT_STEP.has(event) ? { step: stepNumberOf(state.step) } : {};
  return { at, service: state.service, rolloutId: state.rolloutId, event, ...step, ...rest } as EngineEvent;
}

/** Where events go. */
export type EventSink = (event: EngineEvent) => void;
