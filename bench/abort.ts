/**
 * `node dist/bench/abort.js`: manual time to safety on real nginx — from the moment an operator
 * runs `deploy abort` to 100% on stable, verified by the command's own read-back and then by the
 * live table — (a) with a live driver holding the lock, (b) with the driver killed by SIGKILL on
 * this host and its 30 s lease still running, (c) after an outage of the admin endpoint, from
 * the moment it answers again. `BENCH_ABORT_RUNS` rounds of each (default 5).
 * Not a test: it prints a table and asserts nothing, but exits non-zero when a round fails.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openProject } from '../src/cli/context.js';
import { nginxRouterOptions } from '../src/routers/nginx/index.js';
import { rollback, startRollout, tick, type EngineDeps } from '../src/engine/machine.js';
import { validateState, type RolloutState } from '../src/engine/state.js';
import { NginxRouter } from '../src/routers/nginx/router.js';
import { startFaultProxy } from '../src/sandbox/fault-proxy.js';
import { LocalStateStore } from '../src/state/local/store.js';
import { planCanary } from '../strategies/canary.js';
import { startNginx } from '../src/sandbox/nginx-process.js';
import { freePorts } from '../src/sandbox/ports.js';
import { startSampleService } from '../src/sandbox/sample-service.js';

const RUNS = Number(process.env.BENCH_ABORT_RUNS ?? 5);
const deploy = join(resolve(import.meta.dirname, '../..'), 'bin', 'deploy');
const dir = mkdtempSync(join(tmpdir(), 'cutover-bench-abort-'));
const file = join(dir, 'deploy.yaml');
const env = { ...process.env, CI: 'true' };

const v1 = await startSampleService({ version: 'v1' });
const v2 = await startSampleService({ version: 'v2' });
const [listenPort, adminPort] = await freePorts(2);
writeFileSync(
  file,
  `service: patient-api\nstable: v1\nversions:\n  v1: { endpoints: ["127.0.0.1:${v1.port}"] }\n  v2: { endpoints: ["127.0.0.1:${v2.port}"] }\nrouter:\n  type: nginx\n  listen: 127.0.0.1:${listenPort}\n  admin: 127.0.0.1:${adminPort}\n  prefix: nginx\nstate:\n  type: local\n  lease: 30s\nstrategy:\n  canary:\n    steps:\n      - { weight: 25, hold: 10m }\n      - { weight: 100 }\n`,
);
const project = await openProject({ file }, Date.now);
if (project.config.router.type !== 'nginx') throw new Error('the bench routes through nginx');
const options = nginxRouterOptions(project.config.router, project.config, project.dir);
const nginx = await startNginx(options);
const router = new NginxRouter(options);
await router.apply({ weights: { v1: 100 } });

/** Start a rollout to v2 and resolve once its 25% step is live; returns the driver process. */
async function driving() {
  const child = spawn(deploy, ['promote', '--to', 'v2', '-o', 'json', '-f', file], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((done, fail) => {
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('"event":"step"')) done();
    });
    child.on('exit', (code) => fail(new Error(`driver exited ${code} before its first step`)));
  });
  return child;
}

/** Resolves once `child` has exited (at once if it already has). */
const exited = (child: ReturnType<typeof spawn>) => (child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', r)));

/** Run `deploy abort`, return its wall time; the live table must then send everything to v1. */
async function abortMs(): Promise<number> {
  const t0 = performance.now();
  const r = spawnSync(deploy, ['abort', '-f', file], { env, encoding: 'utf8' });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`deploy abort exited ${r.status}: ${r.stderr}`);
  const live = await router.read();
  if (live.weights.v1 !== 100) throw new Error(`after the abort the table says ${JSON.stringify(live.weights)}`);
  return ms;
}

const OUTAGE = 'endpoint down (connections reset), from its return';
const rows: Record<string, number[]> = { 'live driver': [], 'driver killed (SIGKILL), lease running': [], [OUTAGE]: [] };

/**
 * (c) In this process, as the driver runs it: a rollout at 25%, the admin endpoint down (the
 * fault proxy resets every connection), an abort that fails against it and stays owed; then the
 * endpoint returns, and the time from its return to 100% on stable, verified, is measured.
 */
async function outageMs(round: number): Promise<number> {
  const proxy = await startFaultProxy(options.admin);
  try {
    const router = new NginxRouter({ ...options, adminEndpoint: proxy.address });
    const store = new LocalStateStore<RolloutState>(join(dir, `outage-${round}`), { validate: validateState });
    const deps: EngineDeps = { router, store, clock: Date.now, emit: () => undefined, actor: { owner: 'bench', pid: process.pid, host: 'bench' } };
    const plan = planCanary({ steps: [{ weight: 25, hold: 600_000 }, { weight: 100 }] });
    let s = await tick(await startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v2', plan }, deps), deps);
    proxy.mode = 'reset';
    await rollback(s, 'abort', 'bench', deps).catch(() => undefined);
    s = (await store.load())!;
    proxy.mode = 'pass';
    const t0 = performance.now();
    s = await rollback(s, 'abort', 'bench', deps);
    const ms = performance.now() - t0;
    if (s.phase !== 'aborted' || (await router.read()).weights.v1 !== 100) throw new Error(`after the outage the abort ended ${s.phase}`);
    return ms;
  } finally {
    await proxy.stop();
  }
}
try {
  for (let i = 0; i < RUNS; i++) {
    const live = await driving();
    rows['live driver']!.push(await abortMs());
    await exited(live);
    const dead = await driving();
    dead.kill('SIGKILL');
    await exited(dead);
    rows['driver killed (SIGKILL), lease running']!.push(await abortMs());
    rows[OUTAGE]!.push(await outageMs(i));
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`\nmanual time to safety on real nginx: \`deploy abort\` to 100% on stable, verified (${RUNS} rounds, process start included)\n`);
  console.log(`${'case'.padEnd(52)} ${'median'.padStart(9)} ${'worst'.padStart(9)}  target`);
  for (const [name, xs] of Object.entries(rows)) {
    const target = name === 'driver killed (SIGKILL), lease running' ? 2_000 : 1_000;
    console.log(`${name.padEnd(52)} ${`${Math.round(median(xs))} ms`.padStart(9)} ${`${Math.round(Math.max(...xs))} ms`.padStart(9)}  < ${target / 1000} s ${Math.max(...xs) < target ? 'met' : 'MISSED'}`);
  }
  console.log(`(the outage case runs in this process, as the driver does: no process start in it)`);
} catch (e) {
  console.error(`abort bench failed: ${(e as Error).message}`);
  process.exitCode = 1;
} finally {
  await nginx.stop();
  await Promise.all([v1.stop(), v2.stop()]);
  rmSync(dir, { recursive: true, force: true });
}
