import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { drive } from '../../src/engine/driver.js';
import type { EngineEvent } from '../../src/engine/events.js';
import { type EngineDeps, pauseByOperator, promoteNow, rollback, startRollout, tick, unpause } from '../../src/engine/machine.js';
import { stateForPeople, type RolloutState } from '../../src/engine/state.js';
import { LocalStateStore } from '../../src/state/local/store.js';
import { planCanary } from '../../strategies/canary.js';
import { UsageError } from '../../src/errors.js';
import { engineHarness, FakeRouter, type ManualClock } from '../helpers/fakes.js';

const actor = { owner: 'nurse@ward', pid: 1, host: 'ward' };

describe('rollout engine', () => {
  let clock: ManualClock;
  let router: FakeRouter;
  let store: LocalStateStore<RolloutState>;
  let events: EngineEvent[];
  let deps: EngineDeps;
  let dispose: () => void;

  beforeEach(() => {
    ({ clock, router, store, events, deps, dispose } = engineHarness(new FakeRouter(), { actor }));
  });
  afterEach(() => dispose());

  const start = (steps = planCanary()) => startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v2', plan: steps }, deps);

  it('walks the default ladder tick by tick, holding 30 minutes at 1%', async () => {
    let s = await start();
    expect(s.phase).toBe('pending');
    expect(router.writes).toEqual([]);

    s = await tick(s, deps);
    expect([s.phase, s.step, s.weights]).toEqual(['holding', 0, { v1: 99, v2: 1 }]);
    expect(router.live.weights).toEqual({ v1: 99, v2: 1 });

    clock.now += 29 * 60_000;
    expect(await tick(s, deps)).toBe(s); // still holding: nothing changes
    clock.now += 60_000;
    s = await tick(s, deps);
    expect([s.phase, s.step, s.weights]).toEqual(['holding', 1, { v1: 95, v2: 5 }]);

    for (const weight of [25, 50, 100]) {
      clock.now += 10 * 60_000;
      s = await tick(s, deps);
      expect(s.weights.v2).toBe(weight);
    }
    s = await tick(s, deps);
    expect(s.phase).toBe('promoted');
    expect(router.writes.map((w) => w.weights.v2)).toEqual([1, 5, 25, 50, 100]);
    expect((await store.load())?.phase).toBe('promoted');
    expect(await store.audit.verify()).toMatchObject({ ok: true });
  });

  it('events count steps as people do, from 1, where the state counts from 0', async () => {
    let s = await tick(await start(planCanary({ steps: [{ weight: 10, hold: 60_000, pause: true }, { weight: 100, hold: 60_000 }] })), deps);
    expect(s.step).toBe(0);
    clock.now += 60_000;
    s = await tick(s, deps);
    expect([s.phase, s.step]).toEqual(['paused', 0]);
    s = await unpause(s, 'promote', deps);
    expect(s.step).toBe(1);
    s = await rollback(s, 'abort', 'drill', deps);
    const stepped = events.filter((e) => 'step' in e).map((e) => [e.event, (e as { step: number }).step]);
    expect(stepped).toEqual([['step', 1], ['paused', 1], ['step', 2]]);
    expect(events.find((e) => e.event === 'step')).toMatchObject({ step: 1, steps: 2, weight: 10 });
  });

  it('shows the stored state with every step counted from 1, the record itself unchanged', async () => {
    const s = await tick(await start(), deps);
    const at = new Date(clock.now).toISOString();
    const stored: RolloutState = { ...s, intent: { to: 'holding', step: 1, weights: { v1: 95, v2: 5 }, at }, readying: { step: 1, since: at }, waitingForTargets: { since: at, detail: 'pods', step: 1 } };
    const shown = stateForPeople(stored);
    expect([shown.step, shown.intent?.step, shown.readying?.step, shown.waitingForTargets?.step]).toEqual([1, 2, 2, 2]);
    expect(shown.plan.steps.map((x) => [x.step, x.weight])).toEqual([[1, 1], [2, 5], [3, 25], [4, 50], [5, 100]]);
    expect([stored.step, stored.intent?.step, stored.plan.steps[0]!.index]).toEqual([0, 1, 0]);
  });

  it('records the intent before the write, so a failed write leaves a resumable state', async () => {
    let s = await start();
    router.failNext = 1;
    await expect(tick(s, deps)).rejects.toThrow('router unavailable');
    s = (await store.load())!;
    expect(s.phase).toBe('progressing');
    expect(s.intent?.weights).toEqual({ v1: 99, v2: 1 });
    expect(s.weights).toEqual({ v1: 100 });
    expect(s.lastError?.message).toBe('router unavailable');
    s = await tick(s, deps);
    expect([s.phase, s.step, s.intent, s.lastError]).toEqual(['holding', 0, undefined, undefined]);
  });

  it('pauses after a step marked pause and goes on only when promoted', async () => {
    let s = await start(planCanary({ steps: [{ weight: 10, hold: 1000, pause: true }, { weight: 100 }] }));
    s = await tick(s, deps);
    clock.now += 1000;
    s = await tick(s, deps);
    expect([s.phase, s.paused?.reason]).toEqual(['paused', 'step']);
    expect(await tick(s, deps)).toBe(s);
    s = await unpause(s, 'promote', deps);
    expect([s.phase, s.step, s.weights]).toEqual(['holding', 1, { v1: 0, v2: 100 }]);
  });

  it('an operator pause keeps the rest of the hold for resume', async () => {
    let s = await tick(await start(), deps);
    clock.now += 10 * 60_000;
    s = await pauseByOperator(s, deps);
    expect(s.paused?.remainingMs).toBe(20 * 60_000);
    clock.now += 60 * 60_000;
    s = await unpause(s, 'resume', deps);
    expect(s.phase).toBe('holding');
    expect(Date.parse(s.holdUntil!) - clock.now).toBe(20 * 60_000);
  });

  it('abort sends all traffic to stable in one write', async () => {
    let s = await tick(await start(), deps);
    const before = router.writes.length;
    s = await rollback(s, 'abort', 'pager went off', deps);
    expect([s.phase, s.weights, s.outcome?.reason]).toEqual(['aborted', { v1: 100 }, 'pager went off']);
    expect(router.writes.length - before).toBe(1);
    expect(events.at(-1)).toMatchObject({ event: 'rollback', cause: 'abort' });
    expect(await rollback(s, 'abort', 'again', deps)).toBe(s);
  });

  it('an abort over a write that may have gone live records the live weights first', async () => {
    let s = await tick(await start(), deps);
    // A driver recorded step 2's intent, wrote it, and was killed before its commit.
    s = { ...s, phase: 'progressing', intent: { to: 'holding', step: 1, weights: { v1: 95, v2: 5 }, at: new Date(clock.now).toISOString() } };
    await store.save(s);
    await router.apply({ weights: { v1: 95, v2: 5 } });
    router.failNext = 1; // and the abort's own write fails
    await expect(rollback(s, 'abort', 'paged', deps)).rejects.toThrow('router unavailable');
    const recorded = (await store.load())!;
    // Live is step 2's split: the record must say so, beside the abort's intent.
    expect([recorded.weights, recorded.intent?.to, recorded.intent?.weights]).toEqual([{ v1: 95, v2: 5 }, 'aborted', { v1: 100 }]);
    expect((await store.audit.read()).find((r) => r.action === 'intent.superseded')?.detail).toMatchObject({ live: { v1: 95, v2: 5 } });
  });

  it('promote --full jumps to 100%', async () => {
    let s = await tick(await start(), deps);
    s = await promoteNow(s, true, deps);
    expect([s.step, s.weights]).toEqual([4, { v1: 0, v2: 100 }]);
    s = await tick(s, deps);
    expect(s.phase).toBe('promoted');
  });

  it('the driver runs a 30-minute ladder on the injected clock: every wait is the clock\'s, none real', async () => {
    const s = await start();
    const lock = await store.acquireLock(actor, 30_000);
    const result = await drive(s, { ...deps, lock, sleep: clock.sleep, leaseMs: 30_000, checkIntervalMs: 10_000, requestPollMs: 5_000 });
    expect(result.exitCode).toBe(0);
    expect(result.state.phase).toBe('promoted');
    expect(clock.now - Date.parse('2026-11-22T10:00:00Z')).toBeGreaterThanOrEqual(60 * 60_000);
    expect(events.filter((e) => e.event === 'step').map((e) => (e as { weight: number }).weight)).toEqual([1, 5, 25, 50, 100]);
  });

  it('the driver carries out an abort request from another process', async () => {
    const s = await start();
    const lock = await store.acquireLock(actor, 30_000);
    await store.postRequest({ id: 'r1', kind: 'abort', reason: 'bad lab results', by: { ...actor, owner: 'oncall@desk' }, at: new Date(clock.now).toISOString() });
    const result = await drive(s, { ...deps, lock, sleep: clock.sleep, leaseMs: 30_000, checkIntervalMs: 10_000 });
    expect(result.exitCode).toBe(3);
    expect(result.state.phase).toBe('aborted');
    expect(result.state.outcome?.reason).toBe('bad lab results');
    // Recorded as the operator's, with their reason, and the driver that carried it out beside it.
    expect(result.state.outcome?.by).toBe('oncall@desk');
    const aborted = (await store.audit.read()).find((r) => r.action === 'rollout.aborted');
    expect(aborted).toMatchObject({ actor: 'oncall@desk', detail: { reason: 'bad lab results', driver: actor.owner } });
  });

  it('the driver gives up after repeated router failures, keeping the intent', async () => {
    const s = await start();
    const lock = await store.acquireLock(actor, 30_000);
    router.failNext = 100;
    const result = await drive(s, { ...deps, lock, sleep: clock.sleep, leaseMs: 30_000, checkIntervalMs: 10_000, maxAttempts: 3 });
    expect(result.exitCode).toBe(1);
    expect(result.state.phase).toBe('failed');
    expect(result.state.intent?.weights).toEqual({ v1: 99, v2: 1 });
    expect(events.filter((e) => e.event === 'error')).toHaveLength(3);
  });

  it('an abort asked for during a router outage is retried until it lands, never lost with the driver', async () => {
    let s = await tick(await start(), deps);
    const lock = await store.acquireLock(actor, 30_000);
    router.failNext = 3;
    await store.postRequest({ id: 'r2', kind: 'abort', reason: 'outage drill', by: { ...actor, owner: 'oncall@desk' }, at: new Date(clock.now).toISOString() });
    const result = await drive(s, { ...deps, lock, sleep: clock.sleep, leaseMs: 30_000, checkIntervalMs: 10_000, maxAttempts: 5 });
    expect([result.exitCode, result.state.phase, result.state.weights]).toEqual([3, 'aborted', { v1: 100 }]);
    expect(router.live.weights).toEqual({ v1: 100 });
    expect(events.filter((e) => e.event === 'error' && (e as { retrying: boolean }).retrying)).toHaveLength(3);
    s = (await store.load())!;
    expect(s.intent).toBeUndefined();
  });

  it('a step the router refuses is refused before any intent is recorded, once, with exit 2', async () => {
    const refusing = Object.assign(router, {
      check(spec: { weights: Record<string, number> }) {
        if ((spec.weights.v2 ?? 0) > 1) throw new UsageError('the router cannot carry this split', 'fix the config');
      },
    });
    let s = await tick(await start(), deps);
    expect(s.weights).toEqual({ v1: 99, v2: 1 });
    const lock = await store.acquireLock(actor, 30_000);
    clock.now += 30 * 60_000;
    const attempt = drive(s, { ...deps, router: refusing, lock, sleep: clock.sleep, leaseMs: 30_000, checkIntervalMs: 10_000, maxAttempts: 5 });
    await expect(attempt).rejects.toBeInstanceOf(UsageError);
    s = (await store.load())!;
    expect([s.phase, s.step, s.intent]).toEqual(['holding', 0, undefined]);
    expect(router.writes).toHaveLength(1);
    expect(events.filter((e) => e.event === 'error')).toEqual([expect.objectContaining({ retrying: false, message: 'the router cannot carry this split' })]);
    expect((await store.audit.read()).some((r) => r.action === 'rollout.refused')).toBe(true);
  });
});
