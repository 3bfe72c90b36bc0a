/**
 * The shape of the console's view model: what the ink components render. Folded in model.ts.
 */
import type { StepNumber } from '../../engine/plan.js';
import type { Phase, PauseReason } from '../../engine/state.js';
import type { GateResult, Verdict } from '../../gates/types.js';
import type { Seen } from './changes.js';
import type { OrgSource, OrgsView } from './orgs.js';

/** The colour role of a piece of text; the view maps it to a colour, or to none. */
export type Tone = 'plain' | 'good' | 'warn' | 'bad' | 'alert' | 'dim' | 'accent';

/** One step of the ladder. */
export interface Rung {
  label: string;
  pause: boolean;
  status: 'done' | 'current' | 'next';
}

/** One version's share of traffic. */
export interface Share {
  version: string;
  percent: number;
  role: 'stable' | 'candidate' | 'other';
}

/** The current hold: how far along it is. */
export interface HoldView {
  totalMs: number;
  remainingMs: number;
  /** 0 at the start of the hold, 1 at its end. */
  fraction: number;
  /** True while paused: the time left does not run down. */
  frozen: boolean;
}

/** The latest result of one gate, and its recent values for a sparkline. */
export interface GateLine {
  gate: string;
  type: GateResult['type'];
  verdict: Verdict;
  value?: number;
  /** A P99 from a histogram: the bucket it lies in, shown instead of the estimate in `value`. */
  bucket?: GateResult['bucket'];
  threshold?: number;
  samples?: GateResult['samples'];
  reason: string;
  /** Oldest first, a bounded number of them (GATE_HISTORY in model.ts). */
  history: number[];
}

/** A finished line of the event log: printed once above the live area and never redrawn. */
export interface LogLine {
  id: number;
  text: string;
  tone: Tone;
}

/** Who drives the rollout now. */
export interface DriverView {
  owner: string;
  pid: number;
  /** This very process. */
  here: boolean;
}

/**
 * Traffic is back on stable, verified: when, and what the rollback cost. Shown as SAFE beside the
 * rolled-back (or aborted) phase.
 */
export interface SafetyView {
  /** When all traffic was on stable, verified (epoch ms). */
  at: number;
  stable: string;
  /** From the fault's start (known to the demo, which injects it) to all traffic on stable. */
  timeToSafetyMs?: number;
  /** From the check that found the failing gate to all traffic on stable, and that gate's name. */
  afterGate?: { gate: string; ms: number };
  /** The candidate's failed requests beyond stable's error rate over the rollout. */
  excessFailures?: number;
}

/** A risky key waiting for y/n. */
export interface Confirmation {
  action: 'promote' | 'abort';
  question: string;
}

/** Raw times the hold view is computed from at each fold. */
export interface HoldClock {
  until?: number;
  totalMs?: number;
  frozenRemainingMs?: number;
}

/** Everything the console shows. */
export interface ConsoleModel {
  /** `drive`: this process runs the driver (promote, resume); `watch`: it follows the state file. */
  mode: 'drive' | 'watch';
  service: string;
  rolloutId?: string;
  stable?: string;
  candidate?: string;
  phase: Phase | 'none';
  pauseReason?: PauseReason;
  /** Why the rollout ended as it did. */
  outcome?: string;
  /** Present once a rollback or an abort put all traffic back on stable. */
  safety?: SafetyView;
  /** Who paused the rollout and when (`HH:MM:SS`), for an operator's pause. */
  pausedBy?: { by: string; at: string };
  lastError?: string;
  /** Weight is due to move but the candidate's servers are not ready yet: what was seen. */
  waitingFor?: string;
  /** The current step as the header shows it, from 1 (0 before the first); `ladder[step - 1]` is its rung. */
  step: StepNumber;
  ladder: Rung[];
  weights: Share[];
  /** Weights of a router write in flight (recorded intent, not yet verified). */
  inFlight?: Share[];
  hold?: HoldView;
  gates: GateLine[];
  /** Names of the gates the current step checks (known from the stored plan). */
  stepGates?: string[];
  /** No step of the plan has gates: nothing will roll the rollout back by itself. */
  ungated?: boolean;
  /** Present when the config has orgs. */
  orgs?: OrgsView;
  /** Present when the workload has members (a release group), once they were read. */
  members?: MembersView;
  /** Present when the router is a fleet, once its targets were read. */
  targets?: TargetsView;
  log: LogLine[];
  driver?: DriverView;
  confirm?: Confirmation;
  /** One transient line: what the last key did, or why it did nothing. */
  notice?: string;
  showHelp: boolean;
  showOrgs: boolean;
  /** Set when the console closes: the exit code of the command. */
  exitCode?: number;
  now: number;
  holdClock: HoldClock;
  orgSource?: OrgSource;
  /** Time of the latest engine event: a state read older than it is stale and left out. */
  lastEventAt: number;
  /** The last folded state, to turn its changes into log lines when no events flow. */
  seen?: Seen;
  /**
   * A driving console's own rollout: it shows that one only, and never a rollout started after
   * it ended. Unset for `deploy watch`, which follows whatever the service runs.
   */
  follow?: string;
  /** Sequence number of the last audit record folded. */
  auditSeq?: number;
  /** Time and name of the first failing check of the current step's gates, for the time to safety. */
  failedGate?: { gate: string; at: number };
}


/** One member of a release group: what it runs now, as the workload describes it. */
export interface MemberView {
  name: string;
  /** Its role in the group (`traffic`, `consumer`, `worker`, `cron`). */
  role?: string;
  /** Replicas per version: ready of desired. */
  versions: { version: string; ready: number; desired: number }[];
  /** What else is worth a look (a CronJob's template and its Jobs). */
  detail?: string;
  /** The gates tied to it by `member:`, whose verdicts its row shows. */
  gates: string[];
}

/** A release group's members; `error` says why the last look at them failed (the rows are the last known). */
export interface MembersView {
  rows: MemberView[];
  error?: string;
}

/** One target of a fleet: its live routing as `deploy status` reads it. */
export interface TargetView {
  target: string;
  /** Its live weights; absent when it did not answer. */
  weights?: Record<string, number>;
  generation?: number;
  /** Why it could not be read. */
  error?: string;
  /** The recorded write it does not carry yet. */
  owes?: string;
  /** Its live weights differ from the record with no write in flight. */
  differs?: boolean;
}

/** A fleet's targets; `error` says why the last look at them failed (the rows are the last known). */
export interface TargetsView {
  rows: TargetView[];
  error?: string;
}
