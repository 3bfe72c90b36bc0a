/**
 * ALB costs against moto's ELBv2 server on loopback: API calls per full default canary
 * (1 → 5 → 25 → 50 → 100) and per rollback, and the wall time of a rollback (one ModifyListener
 * expected, plus its reads). `BENCH_ALB_RUNS` rollbacks are timed (default 20).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { rollback, startRollout, tick, type EngineDeps } from '../src/engine/machine.js';
import { validateState, type RolloutState } from '../src/engine/state.js';
import { AlbRouter } from '../src/routers/alb/router.js';
import { SdkAlbClient } from '../src/routers/alb/client.js';
import { createAlb, REGION, useEmulatorCredentials } from '../src/sandbox/alb-fixture.js';
import { startMoto } from '../src/sandbox/moto-process.js';
import { LocalStateStore } from '../src/state/local/store.js';
import { planCanary } from '../strategies/canary.js';

const runs = Number(process.env.BENCH_ALB_RUNS ?? 20);
const total = (calls: Record<string, number>) => Object.values(calls).reduce((a, b) => a + b, 0);
const show = (calls: Record<string, number>) => Object.entries(calls).map(([op, n]) => `${op} ${n}`).join(', ');

useEmulatorCredentials();
const moto = await startMoto();
const dir = mkdtempSync(path.join(tmpdir(), 'cutover-bench-alb-'));
try {
  const alb = await createAlb(moto.url);
  const client = new SdkAlbClient({ region: REGION, endpointUrl: moto.url });
  const router = new AlbRouter({ listenerArn: alb.listenerArn, targetGroups: alb.targetGroups, orgHeader: 'X-Org-Id', maxRules: 100 }, client);
  let now = Date.now();
  const store = new LocalStateStore<RolloutState>(path.join(dir, 'state'), { clock: () => now, validate: validateState });
  const deps: EngineDeps = { router, store, clock: () => now, emit: () => undefined, actor: { owner: 'bench', pid: process.pid, host: 'bench' } };

  let s = await startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v2', plan: planCanary() }, deps);
  while (s.phase !== 'promoted') {
    s = await tick(s, deps);
    if (s.phase === 'holding') now += s.plan.steps[s.step]!.holdMs;
  }
  const canary = { ...client.calls };

  const times: number[] = [];
  let perRollback: Record<string, number> = {};
  for (let i = 0; i < runs; i++) {
    s = await tick(await startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v2', plan: planCanary() }, deps), deps);
    const before = { ...client.calls };
    const t0 = performance.now();
    s = await rollback(s, 'abort', 'bench', deps);
    times.push(performance.now() - t0);
    perRollback = Object.fromEntries(Object.entries(client.calls).map(([op, n]) => [op, n - (before[op] ?? 0)]).filter(([, n]) => (n as number) > 0));
  }
  times.sort((a, b) => a - b);
  console.log('\nALB router against moto (ELBv2 on loopback)\n');
  console.log(`API calls per full canary (5 steps): ${total(canary)} (${show(canary)})`);
  console.log(`API calls per rollback:              ${total(perRollback)} (${show(perRollback)}); writes: ${(perRollback.ModifyListener ?? 0) + (perRollback.ModifyRule ?? 0)}`);
  console.log(`rollback wall time, median of ${runs}:  ${times[Math.floor(times.length / 2)]!.toFixed(1)} ms (min ${times[0]!.toFixed(1)}, max ${times.at(-1)!.toFixed(1)})`);
} finally {
  await moto.stop();
  rmSync(dir, { recursive: true, force: true });
}
