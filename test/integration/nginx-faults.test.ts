/**
 * The engine against a real nginx whose admin endpoint misbehaves, through the project's own
 * fault proxy: a hung endpoint, reset connections, a write whose answer is lost after nginx
 * applied it, and an endpoint answering 503 to every request. After every fault the recorded
 * state must equal what nginx holds, read directly (not through the proxy) — the recorded
 * weights, or the recorded intent's; and an abort issued during the outage ends with all traffic
 * on stable once the endpoint answers again.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rollback, startRollout, tick, type EngineDeps } from '../../src/engine/machine.js';
import { validateState, type RolloutState } from '../../src/engine/state.js';
import { listNginxWorkers, NginxRouter } from '../../src/routers/nginx/router.js';
import { startFaultProxy, type FaultMode, type FaultProxy } from '../../src/sandbox/fault-proxy.js';
import { LocalStateStore } from '../../src/state/local/store.js';
import { planCanary } from '../../strategies/canary.js';
import { startNginxFixture, type NginxFixture } from '../helpers/nginx-fixture.js';

let fx: NginxFixture;
let proxy: FaultProxy;
let direct: NginxRouter;
let viaProxy: NginxRouter;
let dir: string;

beforeAll(async () => {
  fx = await startNginxFixture('faults');
  proxy = await startFaultProxy(fx.options.admin, 'pass', { errorFormat: 'plain' });
  direct = new NginxRouter(fx.options);
  viaProxy = new NginxRouter({ ...fx.options, adminEndpoint: proxy.address });
  dir = await mkdtemp(path.join(os.tmpdir(), 'cutover-faults-state-'));
});
afterAll(async () => {
  await proxy?.stop();
  await fx?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const same = (a: Record<string, number>, b: Record<string, number>) => Object.entries({ ...a, ...b }).every(([v]) => (a[v] ?? 0) === (b[v] ?? 0));

/** The invariant: nginx holds the recorded weights or the recorded intent's, never anything else. */
async function expectConsistent(store: LocalStateStore<RolloutState>, context: string): Promise<RolloutState> {
  const state = (await store.load())!;
  const live = (await direct.read()).weights;
  const ok = same(live, state.weights) || (state.intent !== undefined && same(live, state.intent.weights));
  expect(ok, `${context}: nginx ${JSON.stringify(live)}, recorded ${JSON.stringify(state.weights)}, intent ${JSON.stringify(state.intent?.weights)}`).toBe(true);
  return state;
}

describe('the engine on nginx behind a faulty admin endpoint', () => {
  it.each<FaultMode>(['hang', 'reset', 'lose-answer'])('%s: the record matches nginx; an abort during the fault lands once it answers', async (mode) => {
    proxy.mode = 'pass';
    await direct.apply({ weights: { v1: 100 } });
    const store = new LocalStateStore<RolloutState>(path.join(dir, mode), { validate: validateState });
    const deps: EngineDeps = { router: viaProxy, store, clock: Date.now, emit: () => undefined, actor: { owner: 'oncall@ward', pid: process.pid, host: 'ward' } };
    const plan = planCanary({ steps: [{ weight: 10, hold: 0 }, { weight: 50, hold: 600_000 }, { weight: 100 }] });
    let s = await tick(await startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v2', plan }, deps), deps);
    expect(s.weights).toEqual({ v1: 90, v2: 10 });

    proxy.mode = mode;
    // The next step's write meets the fault: it fails, with its intent recorded.
    await expect(tick(s, deps)).rejects.toThrow();
    s = await expectConsistent(store, `${mode}, step write`);
    expect(s.intent?.weights).toEqual({ v1: 50, v2: 50 });
    // The operator aborts during the outage: a rollback must first settle what is live, which
    // it cannot read either; the abort stays owed and nothing unknown is recorded.
    await expect(rollback(s, 'abort', 'incident', deps)).rejects.toThrow();
    s = await expectConsistent(store, `${mode}, abort during the fault`);

    proxy.mode = 'pass';
    const back = performance.now();
    s = await tick(s, deps); // finishes the step's intent, as `deploy resume` or the driver would
    s = await rollback(s, 'abort', 'incident', deps);
    const ms = performance.now() - back;
    expect([s.phase, s.weights]).toEqual(['aborted', { v1: 100 }]);
    expect((await direct.read()).weights).toEqual({ v1: 100 });
    await expectConsistent(store, `${mode}, after the abort`);
    // Time to safety once the endpoint answers again.
    expect(ms).toBeLessThan(1_000);
  }, 60_000);

  it('error-5xx: the admin endpoint answers 503; the record matches nginx; an abort during the fault lands once it answers', async () => {
    proxy.mode = 'pass';
    await direct.apply({ weights: { v1: 100 } });
    const store = new LocalStateStore<RolloutState>(path.join(dir, 'error-5xx'), { validate: validateState });
    const deps: EngineDeps = { router: viaProxy, store, clock: Date.now, emit: () => undefined, actor: { owner: 'oncall@ward', pid: process.pid, host: 'ward' } };
    const plan = planCanary({ steps: [{ weight: 10, hold: 0 }, { weight: 50, hold: 600_000 }, { weight: 100 }] });
    let s = await tick(await startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v2', plan }, deps), deps);
    expect(s.weights).toEqual({ v1: 90, v2: 10 });

    proxy.mode = 'error-5xx';
    const faulted = proxy.faulted;
    const workers = (await listNginxWorkers(fx.nginx.pid))?.map((w) => w.pid).sort();
    // The step's write meets the 503s: it fails, with its intent recorded and nothing written,
    // and nginx is not reloaded on the word of an endpoint that did not answer.
    await expect(tick(s, deps)).rejects.toThrow(/nginx admin .* answered 503 .*when asked for its config; nothing was changed/);
    expect(proxy.faulted).toBeGreaterThan(faulted);
    expect((await listNginxWorkers(fx.nginx.pid))?.map((w) => w.pid).sort()).toEqual(workers);
    s = await expectConsistent(store, 'error-5xx, step write');
    expect([s.phase, s.weights, s.intent?.weights]).toEqual(['progressing', { v1: 90, v2: 10 }, { v1: 50, v2: 50 }]);
    expect((await direct.read()).weights).toEqual({ v1: 90, v2: 10 });
    // The abort during the outage reads the 503 and stays owed; nothing unknown is recorded.
    const beforeAbort = proxy.faulted;
    await expect(rollback(s, 'abort', 'incident', deps)).rejects.toThrow(/nginx admin answered 503: service unavailable/);
    expect(proxy.faulted).toBeGreaterThan(beforeAbort);
    s = await expectConsistent(store, 'error-5xx, abort during the fault');
    expect(s.phase).not.toBe('aborted');

    proxy.mode = 'pass';
    const back = performance.now();
    s = await tick(s, deps); // finishes the step's intent, as `deploy resume` or the driver would
    s = await rollback(s, 'abort', 'incident', deps);
    const ms = performance.now() - back;
    expect([s.phase, s.weights]).toEqual(['aborted', { v1: 100 }]);
    expect((await direct.read()).weights).toEqual({ v1: 100 });
    await expectConsistent(store, 'error-5xx, after the abort');
    expect(ms).toBeLessThan(1_000);
  }, 60_000);
});
