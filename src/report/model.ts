/**
 * What a rollout report says, whatever it is rendered as (an HTML page, Markdown): the shape the
 * extraction fills from the audit log and the stored state, and the renderers only read.
 */
import type { StepNumber } from '../engine/plan.js';
import type { Phase } from '../engine/state.js';
import type { GateResult, Verdict } from '../gates/types.js';
import type { Weights } from '../routers/router.js';
import type { AuditVerification } from '../state/store.js';

/** The traffic split from this moment until the next point. */
export interface TrafficPoint {
  at: string;
  weights: Weights;
  /** Candidate and stable shares in percent, for charts. */
  candidate: number;
  stable: number;
}

/** One recorded measurement of a gate. */
export interface GatePoint {
  /** When the gate measured (the result's own time, not the record's). */
  at: string;
  /** The step the measurement was made at, from 1 (0: not known). */
  step: StepNumber;
  verdict: Verdict;
  value?: number;
  threshold?: number;
  baseline?: number;
  /** A P99 from a histogram: the buckets the value and the baseline lie in (their estimates are interpolations). */
  bucket?: GateResult['bucket'];
  baselineBucket?: GateResult['baselineBucket'];
  samples?: GateResult['samples'];
  reason: string;
  /** Where the point was read: a change of verdict, the evidence of a rollback, the latest state. */
  source: 'verdict' | 'evidence' | 'latest';
}

/** Every recorded measurement of one gate, oldest first. */
export interface GateSeries {
  gate: string;
  type?: GateResult['type'];
  points: GatePoint[];
}

/** What kind of moment a decision is, for colour and for filtering. */
export type DecisionKind = 'start' | 'step' | 'gate' | 'pause' | 'operator' | 'rollback' | 'promoted' | 'info' | 'problem';

/** One audit record, said in words. */
export interface Decision {
  seq: number;
  at: string;
  kind: DecisionKind;
  /** Who the record names: the driver, or the person who asked. */
  actor: string;
  /** The step it concerns, from 1, when it concerns one. */
  step?: StepNumber;
  /** A short line: `step 2/5: v2 at 5%`, `gate errors failed`, `paused by an operator`. */
  what: string;
  /** The why: a gate's reason, an operator's reason, an error. */
  detail?: string;
  /** Made by a person's command (start, pause, resume, promote early, abort, org moves). */
  operator: boolean;
}

/** How long the rollout spent at one step, and how it left it. */
export interface StepSpan {
  /** The step, from 1. */
  step: StepNumber;
  weight: number;
  holdMs?: number;
  enteredAt?: string;
  leftAt?: string;
  durationMs?: number;
  /** `next step`, `rolled back`, `aborted`, `promoted`, `still here`, `not reached`. */
  ended: string;
}

/** From the decision to roll back to 100% on stable, verified. */
export interface Safety {
  /** The failed measurement the rollback acted on. */
  from: string;
  fromWhat: string;
  /** The router write back to stable, verified. */
  at: string;
  afterMs: number;
}

/** The audit chain's verdict for the whole log, and what of it belongs to this rollout. */
export interface ChainReport {
  verification: AuditVerification;
  /** Records of this rollout, and how many of them carry a signature (by key id). */
  rolloutRecords: number;
  signed: number;
  keys: string[];
}

/** A rollout, told from its records. */
export interface RolloutReport {
  service: string;
  rolloutId: string;
  stable: string;
  candidate: string;
  /** The stored phase when the state is this rollout's; otherwise read from the last decisive record. */
  phase: Phase;
  /** The version serving users at the end of the record. */
  serving: string;
  startedAt: string;
  startedBy: string;
  /** When it was promoted, rolled back or aborted; absent while it goes on. */
  endedAt?: string;
  /** Start to end, or to the report's time while it goes on. */
  durationMs: number;
  /** Why it ended the way it did. */
  reason?: string;
  plan: { weight: number; holdMs?: number; pause?: boolean }[];
  traffic: TrafficPoint[];
  gates: GateSeries[];
  decisions: Decision[];
  steps: StepSpan[];
  safety?: Safety;
  /** Fault start to safety, when a record carries it (the demo measures it). */
  timeToSafetyMs?: number;
  /** The candidate's failed requests beyond stable's error rate, when a gate counted them. */
  excessFailures?: number;
  chain: ChainReport;
  /** When the report was made. */
  generatedAt: string;
}
