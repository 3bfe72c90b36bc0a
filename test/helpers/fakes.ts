/** Fakes for unit tests of engine logic: a router that records writes, and a manual clock. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EngineEvent } from '../../src/engine/events.js';
import type { EngineDeps } from '../../src/engine/machine.js';
import { validateState, type RolloutState } from '../../src/engine/state.js';
import { LocalStateStore } from '../../src/state/local/store.js';
import type { ApplyResult, LiveRoutes, RouteSpec, Router, Verification } from '../../src/routers/router.js';
import { sameRoutes } from '../../src/routers/router.js';

/** A router that keeps the live routing in memory and can be told to fail its next writes. */
export class FakeRouter implements Router {
  readonly type = 'fake';
  live: LiveRoutes = { weights: {}, generation: 0 };
  writes: RouteSpec[] = [];
  failNext = 0;
  /** When set, `preflight` throws it, as a router whose endpoint is down or misconfigured would. */
  preflightError?: Error;

  async preflight(): Promise<void> {
    if (this.preflightError) throw this.preflightError;
  }
  async apply(spec: RouteSpec): Promise<ApplyResult> {
    if (this.failNext > 0) {
      this.failNext -= 1;
      throw new Error('router unavailable');
    }
    if (sameRoutes(this.live, spec) && JSON.stringify(this.live.roles) === JSON.stringify(spec.roles)) return { changed: false, generation: this.live.generation! };
    this.writes.push(spec);
    this.live = { ...spec, generation: this.live.generation! + 1 };
    return { changed: true, generation: this.live.generation! };
  }
  async read(): Promise<LiveRoutes> {
    return this.live;
  }
  async verify(spec: RouteSpec): Promise<Verification> {
    return sameRoutes(this.live, spec) ? { status: 'verified', live: this.live } : { status: 'mismatch', live: this.live, detail: 'differs' };
  }
  async removeManaged(fallback: string): Promise<void> {
    await this.apply({ weights: { [fallback]: 100 } });
  }
}

/** A clock that only moves when told to (or when `sleep` is awaited). */
export class ManualClock {
  constructor(public now = Date.parse('2026-11-22T10:00:00Z')) {}
  readonly clock = () => this.now;
  readonly sleep = async (ms: number) => {
    this.now += Math.max(ms, 1);
  };
}

/**
 * The machine's deps for a unit test: `router`, a manual clock, a real local store in a temp
 * folder (removed by `dispose`) and the events emitted.
 */
export function engineHarness<R extends Router>(router: R, extra: Partial<EngineDeps> = {}) {
  const clock = new ManualClock();
  const dir = mkdtempSync(join(tmpdir(), 'cutover-engine-'));
  const store = new LocalStateStore<RolloutState>(dir, { clock: clock.clock, validate: validateState });
  const events: EngineEvent[] = [];
  const deps: EngineDeps = { router, store, clock: clock.clock, emit: (e) => events.push(e), actor: { owner: 'nurse@ward', pid: 1, host: 'ward' }, ...extra };
  return { clock, router, store, events, deps, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}
