/**
 * A router that routes nothing: for rollouts whose traffic is split elsewhere (or dry runs).
 * It remembers what it was asked within one process and cannot verify anything live.
 */
import type { ApplyResult, LiveRoutes, RouteSpec, Router, Verification } from '../router.js';
import { sameRoutes } from '../router.js';

/** The `none` router. */
export class NopRouter implements Router {
  readonly type = 'none';
  private live: LiveRoutes = { weights: {} };

  /** Nothing to reach, so nothing can be down. */
  async preflight(): Promise<void> {}

  /** Remember the spec; nothing is written anywhere. */
  async apply(spec: RouteSpec): Promise<ApplyResult> {
    const changed = !sameRoutes(this.live, spec);
    this.live = { ...spec };
    return { changed };
  }

  /** What was last applied in this process. */
  async read(): Promise<LiveRoutes> {
    return this.live;
  }

  /** There is nothing live to read back. */
  async verify(): Promise<Verification> {
    return { status: 'unverifiable', detail: 'router "none" splits no traffic' };
  }

  /** Nothing is managed. */
  async removeManaged(): Promise<void> {}
}
