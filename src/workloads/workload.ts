/**
 * What runs the versions. With the `kubernetes` workload the candidate runs in a canary
 * Deployment scaled to its share of traffic, and a promotion hands its pod template to the stable
 * Deployment; with none (nginx upstreams, ALB target groups) the servers already exist.
 */
import type { TargetReadiness } from '../routers/router.js';

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
  /** Undo a promotion begun but not finished: stable's pods back on `stable`'s image. */
  restoreStable(stable: string): Promise<void>;
  /** Scale the canary to zero (after traffic has left it). */
  retire(): Promise<void>;
}
