/**
 * Organizations move atomically, measured with real traffic: 32 keep-alive clients send requests
 * for 240 orgs (by header, and for a third of them alternately by cookie) through a real nginx
 * while batches of orgs are moved between versions, one batch is moved back, and a new version
 * is added in the middle (a reload) with a batch pinned to it at once. For every org, once one of
 * its requests was answered by the version it was moved to, no request of that org sent after
 * that answer may be answered by another version.
 *
 * The reload is the one moment nginx itself drops requests: a retired worker closes its idle
 * keep-alive connections, and the connections it accepted but has not read from yet, so a client
 * writing at that moment sees the connection closed before any byte of an answer. Such a request
 * was never processed, and HTTP lets a client send an idempotent one again (RFC 9110 9.2.2), as
 * browsers, curl and Go do on reused connections. The clients here retry it (at most 3 times), and
 * the test holds every such retry to the reload write: no weight or org write may cause one.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { Agent, request } from 'node:http';
import type { NginxRouterOptions } from '../../src/routers/nginx/config.js';
import { NginxRouter } from '../../src/routers/nginx/router.js';
import { adminHeaders } from '../../src/routers/nginx/secrets.js';
import type { OrgRoutes } from '../../src/routers/router.js';
import { startSampleService, type SampleService } from '../../src/sandbox/sample-service.js';
import { startNginxFixture, type NginxFixture } from '../helpers/nginx-fixture.js';

/** One request as the client saw it; times are performance.now() in this process. */
interface Answer {
  org: string;
  /** The version that answered (`x-version`), or undefined when the request failed. */
  version: string | undefined;
  sent: number;
  answered: number;
  failure?: string;
  /** When an earlier attempt's connection was closed before any byte of an answer (then retried). */
  resetAt?: number;
}

/** One router write: the full org map it made live and when it started and returned. */
interface Write {
  label: string;
  pins: OrgRoutes;
  start: number;
  end: number;
}

const CLIENTS = 32;
const LOAD_LIMIT_MS = 20_000;
/** Retries of a request whose connection was closed before any byte of an answer. */
const RETRIES = 3;
const ORGS = Array.from({ length: 240 }, (_, i) => `org-${String(i).padStart(3, '0')}`);
/** Orgs whose requests alternate between the header and the cookie. */
const BY_COOKIE_TOO = new Set(ORGS.filter((_, i) => i % 3 === 0));

/** `CLIENTS` keep-alive clients cycling over `ORGS` until stopped (or `LOAD_LIMIT_MS` passed). */
function orgLoad(url: string) {
  const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS });
  const answers: Answer[] = [];
  const until = performance.now() + LOAD_LIMIT_MS;
  let next = 0;
  let stopped = false;
  const once = (org: string, headers: Record<string, string>, resetAt?: number, attempt = 1): Promise<Answer> =>
    new Promise<Answer>((resolve) => {
      const sent = performance.now();
      const retried = resetAt === undefined ? {} : { resetAt };
      let answering = false;
      const req = request(url, { agent, headers }, (res) => {
        answering = true;
        res.resume();
        res.on('end', () => {
          const version = res.statusCode === 200 ? String(res.headers['x-version']) : undefined;
          resolve({ org, version, sent, answered: performance.now(), ...retried, ...(version ? {} : { failure: `HTTP ${res.statusCode}` }) });
        });
      });
      req.setTimeout(5_000, () => req.destroy(new Error('timeout')));
      req.on('error', (error: NodeJS.ErrnoException) => {
        if (!answering && error.code === 'ECONNRESET' && attempt <= RETRIES) {
          // A short backoff: an immediate retry can land on the other worker being retired.
          const first = resetAt ?? performance.now();
          setTimeout(() => resolve(once(org, headers, first, attempt + 1)), 50 * attempt);
        } else resolve({ org, version: undefined, sent, answered: performance.now(), ...retried, failure: error.message });
      });
      req.end();
    });
  const client = async () => {
    while (!stopped && performance.now() < until) {
      const n = next++;
      const org = ORGS[n % ORGS.length]!;
      const cookie = BY_COOKIE_TOO.has(org) && Math.floor(n / ORGS.length) % 2 === 1;
      answers.push(await once(org, cookie ? { cookie: `theme=dark; cutover_org=${org}` } : { 'x-org-id': org }));
    }
  };
  const done = Promise.all(Array.from({ length: CLIENTS }, client)).then(() => {
    agent.destroy();
    return answers;
  });
  return { stop: () => ((stopped = true), done) };
}

/** One org's move: at write `at`, from version `from` to `to`; it holds until write `until` starts. */
interface Move {
  org: string;
  from: string;
  to: string;
  at: Write;
  until: number;
}

function movesOf(writes: Write[]): Move[] {
  const moves: Move[] = [];
  for (const org of ORGS) {
    const changes = writes.flatMap((w, i) => (i > 0 && w.pins[org] !== writes[i - 1]!.pins[org] ? [i] : []));
    changes.forEach((i, k) => {
      const next = changes[k + 1];
      moves.push({ org, from: writes[i - 1]!.pins[org]!, to: writes[i]!.pins[org]!, at: writes[i]!, until: next === undefined ? Infinity : writes[next]!.start });
    });
  }
  return moves;
}

/** Answers that break a move: sent after the org's first answer by its new version, answered by another. */
function violationsOf(move: Move, byOrg: Map<string, Answer[]>): { firstNew: number | undefined; checked: number; violations: Answer[] } {
  const mine = (byOrg.get(move.org) ?? []).filter((a) => a.version !== undefined && a.answered >= move.at.start && a.answered < move.until);
  const firstNew = Math.min(...mine.filter((a) => a.version === move.to).map((a) => a.answered));
  if (!Number.isFinite(firstNew)) return { firstNew: undefined, checked: 0, violations: [] };
  const after = mine.filter((a) => a.sent > firstNew);
  return { firstNew, checked: after.length, violations: after.filter((a) => a.version !== move.to) };
}

/**
 * Versions an answer may carry: the org's pin in every write that may have been live between
 * sending and answering (from the last one done before it was sent to the last one started
 * before it was answered).
 */
function allowedVersions(answer: Answer, writes: Write[]): Set<string> {
  let lo = 0;
  writes.forEach((w, i) => {
    if (w.end <= answer.sent) lo = i;
  });
  const allowed = new Set<string>();
  for (let i = lo; i < writes.length && writes[i]!.start <= answer.answered; i++) allowed.add(writes[i]!.pins[answer.org]!);
  return allowed;
}

let fixture: NginxFixture | undefined;
/** Services started by a test besides the fixture's v1 and v2, stopped after. */
const services: SampleService[] = [];
let options: NginxRouterOptions;

beforeAll(async () => {
  fixture = await startNginxFixture('org-atomicity');
  options = fixture.options;
}, 15_000);

afterAll(async () => {
  await fixture?.stop();
  await Promise.all(services.map((s) => s.stop()));
});

describe('org moves under keep-alive load through real nginx', () => {
  it('never serves an org from the version it left once it was served by the one it moved to', async () => {
    let router = new NginxRouter(options);
    const writes: Write[] = [];
    let generation = 0;
    let pins: OrgRoutes = Object.fromEntries(ORGS.map((org) => [org, 'v1']));
    const apply = async (label: string, moved: OrgRoutes) => {
      pins = { ...pins, ...moved };
      const start = performance.now();
      const result = await router.apply({ weights: { v1: 100 }, orgs: pins, unpinned: { mode: 'version', version: 'v1' } });
      writes.push({ label, pins, start, end: performance.now() });
      // Each batch is one write: exactly one new generation.
      expect(result, label).toEqual({ changed: true, generation: generation + 1 });
      generation += 1;
    };
    const batch = (from: number, to: number, version: string): OrgRoutes =>
      Object.fromEntries(ORGS.slice(from, to).map((org) => [org, version]));
    const settle = () => new Promise((r) => setTimeout(r, 1_200));

    await apply('all on v1', {});
    const load = orgLoad(`http://${options.listen}/`);
    try {
      await settle();
      await apply('0-59 to v2', batch(0, 60, 'v2'));
      await settle();
      await apply('60-119 to v2', batch(60, 120, 'v2'));
      await settle();
      // Structure: a third version with its own service, which takes a reload; a batch is pinned
      // to it by the very write that follows the reload.
      const v3 = await startSampleService({ version: 'v3' });
      services.push(v3);
      const hashBefore = await (await fetch(`http://${options.admin}/cutover/config`, { headers: adminHeaders(options.prefix) })).text();
      router = new NginxRouter({ ...options, upstreams: { ...options.upstreams, v3: [`127.0.0.1:${v3.port}`] } });
      await apply('120-159 to v3 (reload)', batch(120, 160, 'v3'));
      expect(await (await fetch(`http://${options.admin}/cutover/config`, { headers: adminHeaders(options.prefix) })).text()).not.toBe(hashBefore);
      await settle();
      await apply('160-219 to v2', batch(160, 220, 'v2'));
      await settle();
      await apply('60-119 back to v1', batch(60, 120, 'v1'));
      await settle();
      await apply('220-239 and 120-139 to v2', { ...batch(220, 240, 'v2'), ...batch(120, 140, 'v2') });
      await settle();
    } finally {
      await load.stop();
    }
    const answers = await load.stop();

    const failures = answers.filter((a) => a.failure !== undefined);
    expect(failures.map((a) => `${a.org}: ${a.failure}`)).toEqual([]);
    expect(answers.length).toBeGreaterThan(5_000);
    // Resets come from the reload only: no weight or org write ever closes a connection.
    const reload = writes.find((w) => w.label.includes('reload'))!;
    const resets = answers.filter((a) => a.resetAt !== undefined);
    const outside = resets.filter((a) => a.resetAt! < reload.start || a.resetAt! > reload.end);
    expect(outside.map((a) => `${a.org} reset at ${a.resetAt!.toFixed(1)} ms`)).toEqual([]);
    console.log(`${answers.length} requests for ${ORGS.length} orgs; ${resets.length} sent again after the reload closed their connection unanswered`);
    const byOrg = new Map<string, Answer[]>();
    for (const a of answers) {
      if (!byOrg.has(a.org)) byOrg.set(a.org, []);
      byOrg.get(a.org)!.push(a);
    }

    const moves = movesOf(writes);
    expect(moves).toHaveLength(60 + 60 + 40 + 60 + 60 + 20 + 20);
    let checked = 0;
    for (const move of moves) {
      const result = violationsOf(move, byOrg);
      // Every org was seen on its new version, so the check below is never vacuous.
      expect(result.firstNew, `${move.org} never answered by ${move.to} after "${move.at.label}"`).toBeDefined();
      const detail = result.violations.map((a) => `${a.version} sent ${(a.sent - result.firstNew!).toFixed(1)} ms after the first ${move.to} answer`);
      expect(detail, `${move.org} moved ${move.from} → ${move.to} by "${move.at.label}"`).toEqual([]);
      checked += result.checked;
    }
    expect(checked).toBeGreaterThan(answers.length / 2);

    const misrouted = answers.filter((a) => a.version !== undefined && !allowedVersions(a, writes).has(a.version));
    expect(misrouted.map((a) => `${a.org} on ${a.version}`)).toEqual([]);
  }, 45_000);
});
