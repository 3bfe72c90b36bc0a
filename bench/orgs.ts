/**
 * `node dist/bench/orgs.js`: 10,000 orgs moved in one write on a real nginx, under load. Pins
 * 10,000 orgs to v1, then moves all of them between v1 and v2 five times while 32 keep-alive
 * clients cycle over the org ids, and reports the write time (render, PUT, read back), how soon
 * the new version answers, requests of an org answered by the old version after that org was
 * already answered by the new one (target 0), failed requests (target 0), and how rendering the
 * table grows with the number of orgs. Not a test: it asserts nothing, but exits non-zero when
 * nginx cannot start. About 30 s.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NginxRouter } from '../src/routers/nginx/router.js';
import { renderRoutingTable } from '../src/routers/nginx/table.js';
import type { OrgRoutes } from '../src/routers/router.js';
import { startNginx, type NginxProcess } from '../src/sandbox/nginx-process.js';
import { freePorts } from '../src/sandbox/ports.js';
import { startSampleService, type SampleService } from '../src/sandbox/sample-service.js';

const ORG_COUNT = 10_000;
const CLIENTS = 32;
const MOVES = 5;
/** Load between two moves: 10,000 orgs take about this long to come round again at ~6k req/s. */
const HOLD_MS = Number(process.env.BENCH_ORGS_HOLD_MS ?? 4_000);
/** The longest a move waits for every org to come round again (a loaded machine is slower). */
const MAX_HOLD_MS = 30_000;
const orgId = (i: number) => `org-${String(i + 1).padStart(5, '0')}`;
const ORGS = Array.from({ length: ORG_COUNT }, (_, i) => orgId(i));

/** One request: org index, answering version (undefined = failed), performance.now() times. */
interface Answer {
  org: number;
  version: string | undefined;
  sent: number;
  answered: number;
}

/** One all-orgs move: its target, when the write started and returned, and the generation. */
interface Move {
  to: string;
  from: string;
  start: number;
  end: number;
  generation: number | undefined;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const allOn = (version: string): OrgRoutes => Object.fromEntries(ORGS.map((org) => [org, version]));

/** `CLIENTS` keep-alive clients cycling over the org ids by header until stopped. */
function startOrgLoad(url: string) {
  const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS });
  const answers: Answer[] = [];
  let next = 0;
  let running = true;
  const once = (org: number) =>
    new Promise<Answer>((resolve) => {
      const sent = performance.now();
      const req = request(url, { agent, headers: { 'x-org-id': ORGS[org]! } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ org, version: res.statusCode === 200 ? String(res.headers['x-version']) : undefined, sent, answered: performance.now() }));
      });
      req.setTimeout(5_000, () => req.destroy(new Error('timeout')));
      req.on('error', () => resolve({ org, version: undefined, sent, answered: performance.now() }));
      req.end();
    });
  const loops = Array.from({ length: CLIENTS }, async () => {
    while (running) answers.push(await once(next++ % ORG_COUNT));
  });
  return {
    answers,
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
    },
  };
}

/**
 * For one move: per org, the first answer by the new version, then the answers of that org sent
 * after it and answered by another version before the next move started.
 */
function checkMove(move: Move, until: number, answers: Answer[]) {
  const inMove = answers.filter((a) => a.version !== undefined && a.answered >= move.start && a.answered < until);
  const firstNew = new Float64Array(ORG_COUNT).fill(Infinity);
  for (const a of inMove) if (a.version === move.to && a.answered < firstNew[a.org]!) firstNew[a.org] = a.answered;
  const checked = inMove.filter((a) => a.sent > firstNew[a.org]!);
  const firstNewAny = Math.min(...firstNew);
  return {
    checked: checked.length,
    /** Orgs with at least one request checked: the property was tested for them. */
    covered: new Set(checked.map((a) => a.org)).size,
    violations: checked.filter((a) => a.version !== move.to).length,
    firstNewAfterStart: firstNewAny - move.start,
    firstNewBeforeEnd: move.end - firstNewAny,
    staleAfterWrite: inMove.filter((a) => a.sent > move.end && a.version === move.from).length,
  };
}

/** Median milliseconds to render the table of `n` orgs (after a warm-up). */
function renderMs(n: number): number {
  const orgs = Object.fromEntries(ORGS.slice(0, n).map((org, i) => [org, i % 2 ? 'v2' : 'v1']));
  renderRoutingTable({ weights: { v1: 100, v2: 0 }, orgs }, 1);
  return median(
    Array.from({ length: 9 }, () => {
      const t0 = performance.now();
      renderRoutingTable({ weights: { v1: 100, v2: 0 }, orgs }, 1);
      return performance.now() - t0;
    }),
  );
}

async function main(): Promise<void> {
  const prefix = mkdtempSync(join(tmpdir(), 'cutover-bench-orgs-'));
  const services: SampleService[] = [await startSampleService({ version: 'v1' }), await startSampleService({ version: 'v2' })];
  let nginx: NginxProcess | undefined;
  try {
    const [listenPort, adminPort] = await freePorts(2);
    const options = {
      prefix,
      listen: `127.0.0.1:${listenPort}`,
      admin: `127.0.0.1:${adminPort}`,
      upstreams: { v1: [`127.0.0.1:${services[0]!.port}`], v2: [`127.0.0.1:${services[1]!.port}`] },
    };
    try {
      nginx = await startNginx(options);
    } catch (error) {
      console.error(`nginx could not start: ${error instanceof Error ? error.message : String(error)}`);
      process.exitCode = 1;
      return;
    }
    const router = new NginxRouter(options);
    const spec = (version: string) => ({ weights: { v1: 100, v2: 0 }, orgs: allOn(version), unpinned: { mode: 'version' as const, version: 'v1' } });
    await router.apply(spec('v1'));

    const load = startOrgLoad(`http://${options.listen}/`);
    const moves: Move[] = [];
    const loadStart = performance.now();
    try {
      await new Promise((r) => setTimeout(r, HOLD_MS));
      for (let i = 0; i < MOVES; i++) {
        const [from, to] = i % 2 ? ['v2', 'v1'] : ['v1', 'v2'];
        const start = performance.now();
        const result = await router.apply(spec(to!));
        const move = { from: from!, to: to!, start, end: performance.now(), generation: result.generation };
        moves.push(move);
        // Hold until every org has been answered by the new version and then asked again, so the
        // check below covers all of them (or until the cap, which the report then says).
        const deadline = performance.now() + Math.max(HOLD_MS, MAX_HOLD_MS);
        await new Promise((r) => setTimeout(r, HOLD_MS));
        while (checkMove(move, Infinity, load.answers).covered < ORG_COUNT && performance.now() < deadline) await new Promise((r) => setTimeout(r, 250));
      }
    } finally {
      await load.stop();
    }
    const seconds = (performance.now() - loadStart) / 1000;
    const { answers } = load;
    const checks = moves.map((m, i) => checkMove(m, moves[i + 1]?.start ?? Infinity, answers));
    const failed = answers.filter((a) => a.version === undefined).length;
    const writes = moves.map((m) => m.end - m.start);
    const generations = moves.map((m) => m.generation).join(' → ');
    const sum = (f: (c: (typeof checks)[number]) => number) => checks.reduce((n, c) => n + f(c), 0);
    const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');

    console.log(`\n${ORG_COUNT.toLocaleString('en')} orgs moved in one write, ${MOVES} times (v1 ↔ v2), real nginx on loopback,`);
    console.log(`${CLIENTS} keep-alive clients cycling over the org ids: ${answers.length.toLocaleString('en')} requests in ${seconds.toFixed(1)} s; generations ${generations}\n`);
    const rows: [string, string, string][] = [
      ['write: render + PUT + read back (median)', `${median(writes).toFixed(1)} ms`, `< 2000 ms ${verdict(median(writes) < 2_000)}`],
      ['write: slowest of the moves', `${Math.max(...writes).toFixed(1)} ms`, ''],
      ['first answer by the new version (median), after the write started', `${median(checks.map((c) => c.firstNewAfterStart)).toFixed(1)} ms`, ''],
      ['  ... before the write returned (the read-back follows the switch)', `${median(checks.map((c) => c.firstNewBeforeEnd)).toFixed(1)} ms`, ''],
      ['old version answering a request sent after the write returned', String(sum((c) => c.staleAfterWrite)), `0 ${verdict(sum((c) => c.staleAfterWrite) === 0)}`],
      [
        'mixed-version violations',
        `${sum((c) => c.violations)} of ${sum((c) => c.checked).toLocaleString('en')} checked`,
        // A figure over too few orgs is not a result: every org of every move must have been asked again.
        Math.min(...checks.map((c) => c.covered)) < ORG_COUNT
          ? `0 NOT MEASURED: only ${Math.min(...checks.map((c) => c.covered)).toLocaleString('en')} of ${ORG_COUNT.toLocaleString('en')} orgs asked again after a move`
          : `0 ${verdict(sum((c) => c.violations) === 0)}, all ${ORG_COUNT.toLocaleString('en')} orgs checked in each move`,
      ],
      ['failed requests', `${failed} of ${answers.length.toLocaleString('en')}`, `0 ${verdict(failed === 0)}`],
    ];
    for (const [name, value, target] of rows) console.log(`${name.padEnd(68)} ${value.padEnd(24)} ${target}`);
    if (Math.min(...checks.map((c) => c.covered)) < ORG_COUNT) process.exitCode = 1;

    console.log(`\nrendering the routing table (median of 9)`);
    for (const n of [100, 1_000, 10_000]) console.log(`${`${n.toLocaleString('en')} orgs`.padEnd(14)} ${renderMs(n).toFixed(2).padStart(8)} ms`);
  } finally {
    await nginx?.stop();
    await Promise.all(services.map((s) => s.stop()));
    rmSync(prefix, { recursive: true, force: true });
  }
}

await main();
