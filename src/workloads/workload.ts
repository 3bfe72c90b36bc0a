/**
 * What runs the versions. With the `kubernetes` workload the candidate runs in a canary
 * Deployment scaled to its share of traffic, and a promotion hands its pod template to the stable
 * Deployment; a `group` does that for several workloads released together (an API, its
 * consumers, its worker, its CronJob); with none (nginx upstreams, ALB target groups) the servers
 * already exist.
 */
import type { TargetReadiness } from '../routers/router.js';

/** What one part of a workload runs now, for `deploy status`. */
export interface MemberStatus {
  /** The member's name (a group's), or the Deployment's for a single workload. */
  name: string;
  /** Its role in a group (`traffic`, `consumer`, `worker`, `cron`). */
  role?: string;
  /** Replicas per version: ready of desired. */
  versions: { version: string; ready: number; desired: number }[];
  /** What else is worth a look (a CronJob's template and its Jobs). */
  detail?: string;
}

/** A workload the engine scales and promotes around its router writes. */
export interface Workload {
  /** Short name as in config (`kubernetes`). */
  readonly type: string;
  /** Check the workload can be driven (objects exist, permissions) before anything is recorded. */
  preflight(): Promise<void>;
  /**
   * Make the candidate ready for `weight` percent of traffic: its pods running its image, scaled
   * in proportion (at least one replica). Idempotent; answers whether that many are ready now,
   * or that they never will be (`stuck`).
   */
  scaleFor(candidate: string, weight: number): Promise<TargetReadiness>;
  /**
   * Give the stable Deployment the candidate's pod template (idempotent) and answer whether the
   * stable Deployment has rolled out on it. A stuck rollout answers `stuck` with the reason.
   */
  promote(candidate: string): Promise<TargetReadiness>;
  /**
   * Put back on `stable` whatever of the rollout runs outside the canary — a promotion begun, a
   * CronJob switched at a step. Called on every rollback, after traffic has left the candidate;
   * idempotent.
   */
  restoreStable(stable: string): Promise<void>;
  /** Scale the canary to zero (after traffic has left it). */
  retire(): Promise<void>;
  /** What runs now, part by part (replicas ready per version), for `deploy status`. */
  describe?(): Promise<MemberStatus[]>;
  /**
   * A run of the candidate that failed where no traffic gate can see it (a CronJob's Job), in
   * words; undefined while there is none. The engine asks with every gate check and before each
   * look at a promotion, and rolls back on an answer as it does on a failed gate.
   */
  failure?(candidate: string): Promise<string | undefined>;
}
