/**
 * Blue/green: the pure plan, and the engine waiting for green's targets before any weight moves
 * (rolling back untouched past the deadline), baking with blue at weight 0, and an abort during
 * the bake putting 100% back on blue in one write.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EngineEvent } from '../../src/engine/events.js';
import { rollback, startRollout, tick, type EngineDeps } from '../../src/engine/machine.js';
import type { RolloutState } from '../../src/engine/state.js';
import type { TargetReadiness } from '../../src/routers/router.js';
import { LocalStateStore } from '../../src/state/local/store.js';
import { planBlueGreen } from '../../strategies/blue-green.js';
import { engineHarness, FakeRouter, type ManualClock } from '../helpers/fakes.js';

/** A router whose candidate targets become healthy when the test says so. */
class CheckingRouter extends FakeRouter {
  ready = false;
  checks = 0;
  async targetsReady(version: string): Promise<TargetReadiness> {
    this.checks += 1;
    return { ready: this.ready, detail: this.ready ? `1/1 targets of ${version} healthy` : `0/1 targets of ${version} healthy; 10.0.0.2:80 initial` };
  }
}

describe('blue/green plan', () => {
  it('shifts all at once by default and bakes 30 minutes with the gates', () => {
    const plan = planBlueGreen({}, ['errors']);
    expect(plan.strategy).toBe('blue-green');
    expect(plan.steps).toEqual([{ index: 0, weight: 100, holdMs: 30 * 60_000, pause: false, gates: ['errors'] }]);
    expect(plan.readinessTimeoutMs).toBe(5 * 60_000);
  });

  it('shifts in linear steps rounded to 0.1%, holding with gates between them', () => {
    const plan = planBlueGreen({ steps: 3, stepHold: 60_000, bake: 600_000, healthTimeout: 30_000 }, ['errors']);
    expect(plan.steps.map((s) => [s.weight, s.holdMs])).toEqual([[33.3, 60_000], [66.7, 60_000], [100, 600_000]]);
    expect(plan.readinessTimeoutMs).toBe(30_000);
  });
});

describe('blue/green in the engine', () => {
  let clock: ManualClock;
  let router: CheckingRouter;
  let store: LocalStateStore<RolloutState>;
  let events: EngineEvent[];
  let deps: EngineDeps;
  let dispose: () => void;

  beforeEach(() => {
    ({ clock, router, store, events, deps, dispose } = engineHarness(new CheckingRouter()));
  });
  afterEach(() => dispose());

  const start = () => startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v2', plan: planBlueGreen({ bake: 600_000, healthTimeout: 120_000 }) }, deps);

  it("waits for green's targets before moving any weight, then shifts, bakes and finishes with blue at 0", async () => {
    let s = await tick(await start(), deps);
    expect([s.phase, s.waitingForTargets?.detail]).toEqual(['pending', '0/1 targets of v2 healthy; 10.0.0.2:80 initial']);
    expect(router.writes).toEqual([]);
    expect(events.at(-1)).toMatchObject({ event: 'error', retrying: true });
    clock.now += 60_000;
    s = await tick(s, deps);
    expect(router.writes).toEqual([]);
    router.ready = true;
    s = await tick(s, deps);
    expect([s.phase, s.weights, s.waitingForTargets]).toEqual(['holding', { v1: 0, v2: 100 }, undefined]);
    expect(router.writes).toEqual([{ weights: { v1: 0, v2: 100 } }]);
    clock.now += 600_000;
    s = await tick(s, deps);
    expect([s.phase, s.weights]).toEqual(['promoted', { v1: 0, v2: 100 }]);
    const actions = (await store.audit.read()).map((r) => r.action);
    expect(actions).toEqual(expect.arrayContaining(['targets.waiting', 'targets.ready']));
  });

  it('rolls back without having moved traffic when green stays unhealthy past the deadline', async () => {
    let s = await tick(await start(), deps);
    clock.now += 120_000;
    s = await tick(s, deps);
    expect(s.phase).toBe('rolled_back');
    expect(s.outcome?.reason).toMatch(/^v2's targets were not ready within 120s: 0\/1 targets of v2 healthy/);
    expect(router.writes.every((w) => (w.weights.v2 ?? 0) === 0)).toBe(true);
  });

  it('an abort during the bake puts 100% back on blue in one write', async () => {
    router.ready = true;
    let s = await tick(await start(), deps);
    clock.now += 300_000;
    s = await tick(s, deps);
    expect(s.phase).toBe('holding');
    const before = router.writes.length;
    s = await rollback(s, 'abort', 'pager went off', deps);
    expect(s.phase).toBe('aborted');
    expect(router.writes.slice(before)).toEqual([{ weights: { v1: 100 }, rollback: true }]);
  });
});
