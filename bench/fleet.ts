/**
 * `node dist/bench/fleet.js`: a fleet of real nginx regions on this machine (one nginx, two
 * sample versions per region). It measures
 *   1. fleet step time: a weight step made live in every region — staged everywhere, activated at
 *      one instant, read back — for 2 and 3 regions, and the direct write a rollback uses;
 *   2. fleet rollback time: from a fault injected into one region's candidate to 100% stable in
 *      every region, read from each nginx, with the CLI driving, Prometheus scraping every 1 s
 *      and an error-rate gate per region (2 and 3 regions);
 *   3. org-move skew under load: 3 regions, 2,400 req/s of random orgs at random regions, moves
 *      of 50 orgs; per move the spread of the regions' switch instants (bounded by nginx's own
 *      routing times) and the requests of a moved org answered by the old version after any
 *      region answered it with the new one.
 * Not a test: it prints tables and asserts nothing; it exits non-zero when a round fails.
 * `BENCH_FLEET_RUNS` rollback rounds per size (default 2), `BENCH_FLEET_MOVES` moves (default 30).
 */
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { openProject } from '../src/cli/context.js';
import { FleetRouter } from '../src/fleet/router.js';
import { createRouter } from '../src/providers/chosen.js';
import { sameWeights } from '../src/routers/router.js';
import { startFleetSandbox, type FleetSandbox } from '../src/sandbox/fleet-sandbox.js';
import { judgeMoves, nowMs, quantile, startFleetOrgLoad, type FleetMove } from '../src/sandbox/fleet-traffic.js';
import { startLoad } from '../src/sandbox/load.js';

const deployBin = join(resolve(import.meta.dirname, '../..'), 'bin', 'deploy');
const RUNS = Number(process.env.BENCH_FLEET_RUNS ?? 2);
const MOVES = Number(process.env.BENCH_FLEET_MOVES ?? 30);
const NAMES = ['eu', 'us', 'ap'];
const ORGS = Array.from({ length: 300 }, (_, i) => `org-${String(i).padStart(3, '0')}`);
const median = (xs: number[]) => quantile(xs, 0.5);
const ms = (x: number) => `${x.toFixed(1)} ms`;
const row = (cells: string[], widths: number[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');

/** The fleet router the CLI would build for `fleet`, and deps to move orgs with it under the lock. */
async function open(fleet: FleetSandbox) {
  const project = await openProject({ file: fleet.file });
  const router = (await createRouter(project)) as FleetRouter;
  await router.preflight();
  return { project, router };
}

/** (1) Weight steps over the ladder, staged and activated, and rollback-style direct writes. */
async function stepTimes(regions: number): Promise<{ staged: number[]; direct: number[]; lead: number[] }> {
  const fleet = await startFleetSandbox({ deployBin, regions: NAMES.slice(0, regions), steps: '    steps:\n      - { weight: 100 }\n' });
  try {
    const { router } = await open(fleet);
    const staged: number[] = [];
    const direct: number[] = [];
    const lead: number[] = [];
    for (let round = 0; round < 3; round++) {
      for (const w of [1, 5, 25, 50, 100, 0]) {
        const t0 = performance.now();
        await router.apply({ weights: { v1: 100 - w, v2: w } });
        staged.push(performance.now() - t0);
        lead.push(router.lastActivation!.atMs - router.lastActivation!.stagedMs);
      }
      for (const w of [50, 0]) {
        const t0 = performance.now();
        await router.apply({ weights: { v1: 100 - w, v2: w }, rollback: true });
        direct.push(performance.now() - t0);
      }
    }
    return { staged, direct, lead };
  } finally {
    await fleet.stop();
  }
}

/** (2) Fault in the last region's candidate → 100% stable in every region, read from each nginx. */
async function rollbackTimes(regions: number): Promise<{ total: number[]; detect: number[] }> {
  const fleet = await startFleetSandbox({
    deployBin,
    regions: NAMES.slice(0, regions),
    prometheus: true,
    fleet: '  strategy: lockstep',
    extra: 'prometheus:\n  url: PROMETHEUS_URL\n  timeout: 1s\ngates:\n  - name: errors\n    type: errorRate\n    maxIncrease: 5%\n',
    steps: '    steps:\n      - { weight: 50, hold: 10m }\n      - { weight: 100 }\n',
  });
  const loads = fleet.regions.map((r) => startLoad(`http://${r.listen}/`, { clients: 4, ratePerSecond: 80 }));
  const total: number[] = [];
  const detect: number[] = [];
  try {
    for (let run = 0; run < RUNS; run++) {
      const faulty = fleet.regions.at(-1)!;
      faulty.versions.v2.setFault({ errorRate: 0 });
      const driver = fleet.deploy(['promote', '--to', 'v2', '-o', 'json']);
      let out = '';
      let exited = false;
      void driver.then(() => (exited = true));
      driver.stdout!.on('data', (c: Buffer) => (out += c.toString()));
      while (!out.includes('"event":"step"')) {
        if (exited) throw new Error(`the driver exited before its first step: ${(await driver).stderr}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      await new Promise((r) => setTimeout(r, 3_000));
      const faultAt = Date.now();
      faulty.versions.v2.setFault({ errorRate: 0.5 });
      for (;;) {
        const live = await Promise.all(fleet.regions.map((r) => r.router.read().catch(() => undefined)));
        if (live.every((l) => l && sameWeights(l.weights, { v1: 100 }))) break;
        if (Date.now() - faultAt > 60_000) throw new Error(`not back on stable within 60 s; the driver printed:\n${out.split('\n').slice(-8).join('\n')}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      total.push(Date.now() - faultAt);
      const result = await driver;
      if (result.exitCode !== 3) throw new Error(`the driver exited ${result.exitCode}, not 3: ${result.stderr}`);
      const failedGate = out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { event: string; verdict?: string; at: string }).find((e) => e.event === 'gate' && e.verdict === 'failed');
      if (failedGate) detect.push(Date.parse(failedGate.at) - faultAt);
    }
    return { total, detect };
  } finally {
    await Promise.all(loads.map((l) => l.stop()));
    await fleet.stop();
  }
}

/**
 * (3) Org moves under load, each by `deploy orgs move` (a driver process of its own, as in use;
 * this one serves the sample versions): skew bound, late requests, move time.
 */
async function orgSkew() {
  const fleet = await startFleetSandbox({ deployBin, regions: NAMES, extra: `orgs:\n  unpinned: stable\n  list: [${ORGS.join(', ')}]\n`, steps: '    steps:\n      - { weight: 100 }\n' });
  try {
    const load = startFleetOrgLoad(fleet.regions.map((r) => `http://${r.listen}/`), ORGS, 2_400);
    const moves: FleetMove[] = [];
    try {
      await new Promise((r) => setTimeout(r, 1_000));
      for (let i = 0; i < MOVES; i++) {
        const first = (i * 50) % ORGS.length;
        const orgs = Array.from({ length: 50 }, (_, k) => (first + k) % ORGS.length);
        const to = Math.floor(i / 6) % 2 === 0 ? 'v2' : 'v1';
        const start = nowMs();
        const run = await fleet.deploy(['orgs', 'move', ...orgs.map((o) => ORGS[o]!), '--to', to, '-o', 'json']);
        const end = nowMs();
        if (run.exitCode !== 0) throw new Error(`deploy orgs move exited ${run.exitCode}: ${run.stderr}`);
        const result = JSON.parse(run.stdout.split('\n')[0]!) as { generation: number | null; activatedAt?: string };
        if (result.generation === null || !result.activatedAt) continue;
        moves.push({ orgs, to, generation: result.generation, start, end, activateAt: Date.parse(result.activatedAt) });
        await new Promise((r) => setTimeout(r, 700));
      }
    } finally {
      await load.stop();
    }
    return { moves, verdicts: judgeMoves(moves, load.answers, fleet.regions.length), requests: load.answers.length, failed: load.answers.filter((a) => a.version === undefined).length };
  } finally {
    await fleet.stop();
  }
}

try {
  console.log('\nfleet step time: one weight step made live in every region and read back (18 steps each)\n');
  const widths = [44, 10, 10, 10];
  console.log(row(['', 'median', 'p90', 'max'], widths));
  for (const n of [2, 3]) {
    const t = await stepTimes(n);
    console.log(row([`${n} regions, staged + activated at one instant`, ms(median(t.staged)), ms(quantile(t.staged, 0.9)), ms(Math.max(...t.staged))], widths));
    console.log(row([`  of which the activation lead`, ms(median(t.lead)), ms(quantile(t.lead, 0.9)), ms(Math.max(...t.lead))], widths));
    console.log(row([`${n} regions, direct (as a rollback writes)`, ms(median(t.direct)), ms(quantile(t.direct, 0.9)), ms(Math.max(...t.direct))], widths));
  }

  console.log(`\nfleet rollback time: fault in one region's candidate → 100% stable in every region (${RUNS} rounds each;\nPrometheus scrapes every 1 s; error-rate gate per region, maxIncrease 5%; 80 req/s per region)\n`);
  console.log(row(['', 'median', 'max', 'detect'], widths));
  for (const n of [2, 3]) {
    const t = await rollbackTimes(n);
    console.log(row([`${n} regions`, `${(median(t.total) / 1000).toFixed(2)} s`, `${(Math.max(...t.total) / 1000).toFixed(2)} s`, t.detect.length ? `${(median(t.detect) / 1000).toFixed(2)} s` : '?'], widths));
  }
  console.log('(detect: fault → the failed gate verdict; the rest is the rollback write to every region)');

  const s = await orgSkew();
  const resolved = s.verdicts.filter((v) => v.resolutionMs < 50);
  const skews = (resolved.length ? resolved : s.verdicts).map((v) => v.skewMs);
  const bounds = s.verdicts.map((v) => v.skewMs);
  const moveMs = s.moves.map((m) => m.end - m.start);
  const late = s.verdicts.reduce((n, v) => n + v.late, 0);
  const checked = s.verdicts.reduce((n, v) => n + v.checked, 0);
  const lateAfter = s.verdicts.reduce((n, v) => n + v.lateAfterInstant, 0);
  console.log(`\norg moves under load: 3 regions, ${s.requests.toLocaleString('en')} requests of 300 orgs at random regions (${s.failed} failed), ${s.moves.length} moves of 50 orgs\n`);
  console.log(row(['', 'median', 'p99', 'max'], widths));
  console.log(row([`cross-region skew, ${resolved.length} moves pinned < 50 ms`, ms(median(skews)), ms(quantile(skews, 0.99)), ms(Math.max(...skews))], widths));
  console.log(row(['  bound over all moves (gaps in traffic too)', ms(median(bounds)), ms(quantile(bounds, 0.99)), ms(Math.max(...bounds))], widths));
  console.log(row(['`deploy orgs move`, process start included', ms(median(moveMs)), ms(quantile(moveMs, 0.99)), ms(Math.max(...moveMs))], widths));
  console.log(`\nrequests of a moved org answered by the old version after any region answered it with the new: ${late} of ${checked.toLocaleString('en')} checked`);
  console.log(`  of them sent after the activation instant + 50 ms: ${lateAfter} (target 0 ${lateAfter === 0 ? 'met' : 'MISSED'}); skew target < 50 ms ${Math.max(...skews) < 50 ? 'met' : 'MISSED'}`);
  console.log(`(skew: each region's switch lies between the last request nginx routed by the old generation and the first by the new; a move is pinned when every region's interval is under 50 ms; load average ${loadavg().map((x) => x.toFixed(1)).join(' ')})`);
} catch (e) {
  console.error(`fleet bench failed: ${(e as Error).stack ?? (e as Error).message}`);
  process.exitCode = 1;
}
