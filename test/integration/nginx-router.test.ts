/**
 * The nginx router against a real nginx (Debian package with the Lua module) on loopback, in
 * front of two sample services. Started here and stopped after; if nginx cannot start, every
 * test fails rather than being skipped.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import type { Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { OperationError, UsageError } from '../../src/errors.js';
import type { NginxRouterOptions } from '../../src/routers/nginx-config.js';
import { NginxRouter } from '../../src/routers/nginx.js';
import { findNginx, startNginx, type NginxProcess } from '../../src/sandbox/nginx-process.js';
import { startSampleService, type SampleService } from '../../src/sandbox/sample-service.js';
import { freePorts } from '../helpers/ports.js';

/** What a batch of requests saw. */
interface Tally {
  sent: number;
  byVersion: Map<string, number>;
  failures: string[];
  /** Distinct TCP connections used; more than the concurrency means some were dropped. */
  connections: number;
}

function newTally(): Tally {
  return { sent: 0, byVersion: new Map(), failures: [], connections: 0 };
}

/** One GET over a keep-alive agent; records the version that answered or why it failed. */
function get(url: string, agent: Agent, headers: Record<string, string>, tally: Tally, seen: WeakSet<Socket>): Promise<void> {
  return new Promise((resolve) => {
    tally.sent += 1;
    const req = request(url, { agent, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        const version = body.trim();
        const route = String(res.headers['x-cutover-route'] ?? '');
        if (res.statusCode !== 200) tally.failures.push(`${res.statusCode} ${version}`);
        else if (route.split(' ')[0] !== version) tally.failures.push(`route header "${route}" but body ${version}`);
        else tally.byVersion.set(version, (tally.byVersion.get(version) ?? 0) + 1);
        resolve();
      });
    });
    req.on('socket', (socket) => {
      if (!seen.has(socket)) tally.connections += 1;
      seen.add(socket);
    });
    req.on('error', (error) => {
      tally.failures.push(error.message);
      resolve();
    });
    req.end();
  });
}

/**
 * `clients` concurrent keep-alive clients, each sending requests back to back until `count` were
 * sent in total or `stop()` is called.
 */
function load(url: string, clients: number, count = Infinity, headers: Record<string, string> = {}) {
  const agent = new Agent({ keepAlive: true, maxSockets: clients });
  const tally = newTally();
  const seen = new WeakSet<Socket>();
  let stopped = false;
  const client = async () => {
    while (!stopped && tally.sent < count) await get(url, agent, headers, tally, seen);
  };
  const done = Promise.all(Array.from({ length: clients }, client)).then(() => {
    agent.destroy();
    return tally;
  });
  return { tally, done, stop: () => ((stopped = true), done) };
}

/** Assert a share observed in n Bernoulli trials fits p within 4.5 binomial standard deviations. */
function expectShare(hits: number, n: number, p: number): void {
  if (p === 0 || p === 1) {
    expect(hits).toBe(p * n);
    return;
  }
  const observed = hits / n;
  const tolerance = 4.5 * Math.sqrt((p * (1 - p)) / n);
  expect(Math.abs(observed - p), `observed ${observed} for p=${p} (±${tolerance})`).toBeLessThanOrEqual(tolerance);
}

let prefix: string;
let nginx: NginxProcess | undefined;
let v1: SampleService;
let v2: SampleService;
let options: NginxRouterOptions;
let publicUrl: string;
let router: NginxRouter;

beforeAll(async () => {
  prefix = await mkdtemp(path.join(os.tmpdir(), 'cutover-nginx-'));
  [v1, v2] = await Promise.all([startSampleService({ version: 'v1' }), startSampleService({ version: 'v2' })]);
  const [listenPort, adminPort] = await freePorts(2);
  options = {
    prefix,
    listen: `127.0.0.1:${listenPort}`,
    admin: `127.0.0.1:${adminPort}`,
    orgHeader: 'X-Org-Id',
    orgCookie: 'cutover_org',
    upstreams: { v1: [`127.0.0.1:${v1.port}`], v2: [`127.0.0.1:${v2.port}`] },
  };
  publicUrl = `http://${options.listen}/`;
  nginx = await startNginx(options);
  router = new NginxRouter(options);
}, 15_000);

afterAll(async () => {
  await nginx?.stop();
  await Promise.all([v1?.stop(), v2?.stop()]);
  if (prefix) await rm(prefix, { recursive: true, force: true });
});

describe('nginx router against real nginx', () => {
  it('answers 503 with a clear message before any routing table is loaded', async () => {
    const res = await fetch(publicUrl);
    expect(res.status).toBe(503);
    expect(await res.text()).toMatch(/no routing table is loaded/);
    expect(await router.read()).toEqual({ generation: 0, weights: {}, orgs: {} });
  });

  it('steps v2 through 1, 5, 25, 50, 100 and back to 0 with binomial-true shares and no failures', async () => {
    let lastGeneration = 0;
    for (const step of [1, 5, 25, 50, 100, 0]) {
      const result = await router.apply({ weights: { v1: 100 - step, v2: step } });
      expect(result.changed).toBe(true);
      expect(result.generation).toBe(lastGeneration + 1);
      lastGeneration = result.generation ?? 0;
      const tally = await load(publicUrl, 32, 2_000).done;
      expect(tally.failures).toEqual([]);
      const n = (tally.byVersion.get('v1') ?? 0) + (tally.byVersion.get('v2') ?? 0);
      expect(n).toBe(2_000);
      expectShare(tally.byVersion.get('v2') ?? 0, n, step / 100);
    }
  });

  it('reports changed:false when the same spec is applied twice', async () => {
    const spec = { weights: { v1: 75, v2: 25 }, orgs: { acme: 'v2' } };
    const first = await router.apply(spec);
    const second = await router.apply(spec);
    expect(second).toEqual({ changed: false, generation: first.generation });
    await expect(router.verify(spec)).resolves.toMatchObject({ status: 'verified' });
  });

  it('routes a pinned org by header and by cookie to its version, whatever the weights', async () => {
    await router.apply({ weights: { v1: 100, v2: 0 }, orgs: { acme: 'v2', globex: 'v1' } });
    const byHeader = await load(publicUrl, 8, 400, { 'x-org-id': 'acme' }).done;
    const byCookie = await load(publicUrl, 8, 400, { cookie: 'theme=dark; cutover_org=acme' }).done;
    const unpinned = await load(publicUrl, 8, 400, { 'x-org-id': 'initech' }).done;
    expect(byHeader.byVersion).toEqual(new Map([['v2', 400]]));
    expect(byCookie.byVersion).toEqual(new Map([['v2', 400]]));
    expect(unpinned.byVersion).toEqual(new Map([['v1', 400]]));

    await router.apply({ weights: { v1: 0, v2: 100 }, orgs: { acme: 'v2', globex: 'v1' } });
    const globex = await load(publicUrl, 8, 400, { 'x-org-id': 'globex', cookie: 'cutover_org=acme' }).done;
    expect(globex.byVersion).toEqual(new Map([['v1', 400]])); // the header wins over the cookie
  });

  it('changes weights and moves orgs under 32 keep-alive clients without failing a request', async () => {
    await router.apply({ weights: { v1: 100, v2: 0 } });
    const running = load(publicUrl, 32);
    const specs = [1, 5, 25, 50, 100, 0, 50, 0].map((w, i) => ({
      weights: { v1: 100 - w, v2: w },
      orgs: { acme: i % 2 ? 'v1' : 'v2', globex: i % 2 ? 'v2' : 'v1' },
    }));
    for (const spec of specs) {
      expect((await router.apply(spec)).changed).toBe(true);
      await new Promise((r) => setTimeout(r, 150));
    }
    const tally = await running.stop();
    expect(tally.failures).toEqual([]);
    expect(tally.sent).toBeGreaterThan(1_000);
    // No connection was closed under the clients: routing changes never touched the workers.
    expect(tally.connections).toBeLessThanOrEqual(32);
  });

  it('moves 10,000 orgs in one generation in under 2 s', async () => {
    const orgs = Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`org-${i}`, i % 2 ? 'v2' : 'v1']));
    const started = performance.now();
    const result = await router.apply({ weights: { v1: 100, v2: 0 }, orgs });
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(Object.keys((await router.read()).orgs ?? {})).toHaveLength(10_000);
    const res = await fetch(publicUrl, { headers: { 'x-org-id': 'org-9999' } });
    expect(await res.text()).toBe('v2\n');
    expect(res.headers.get('x-cutover-route')).toBe(`v2 g${result.generation}`);
  });

  it('refuses a config nginx -t rejects and leaves the live config and routing untouched', async () => {
    const conf = path.join(prefix, 'conf', 'nginx.conf');
    const [confBefore, routesBefore] = [await readFile(conf, 'utf8'), await router.read()];
    const broken = new NginxRouter({ ...options, upstreams: { ...options.upstreams, v3: ['127.0.0.1:99999'] } });
    const attempt = broken.apply({ weights: { v1: 0, v2: 0, v3: 100 } });
    await expect(attempt).rejects.toThrow(OperationError);
    await expect(attempt).rejects.toThrow(/invalid port/);
    expect(await readFile(conf, 'utf8')).toBe(confBefore);
    expect(await router.read()).toEqual(routesBefore);
    expect(await (await fetch(publicUrl)).text()).toBe('v1\n');
  });

  it('reloads for a new upstream, keeps the routing generation, then routes to it', async () => {
    const v3 = await startSampleService({ version: 'v3' });
    try {
      const before = await router.read();
      const grown = new NginxRouter({ ...options, upstreams: { ...options.upstreams, v3: [`127.0.0.1:${v3.port}`] } });
      const result = await grown.apply({ weights: { v1: 0, v2: 0, v3: 100 } });
      expect(result).toEqual({ changed: true, generation: (before.generation ?? 0) + 1 });
      const tally = await load(publicUrl, 8, 200).done;
      expect(tally.failures).toEqual([]);
      expect(tally.byVersion).toEqual(new Map([['v3', 200]]));
      await grown.removeManaged('v1');
      expect(await grown.read()).toMatchObject({ weights: { v1: 100 }, orgs: {} });
    } finally {
      await v3.stop();
    }
  });
});

describe('nginx router preflight', () => {
  it('passes against the running nginx without starting another', async () => {
    await router.preflight();
    expect((await findNginx(options))?.pid).toBe(nginx?.pid);
  });

  it('refuses a missing nginx binary as a usage error (exit 2)', async () => {
    const missing = new NginxRouter({ ...options, binary: '/nonexistent/nginx' });
    const error = await missing.preflight().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).exitCode).toBe(2);
    expect((error as UsageError).message).toContain('/nonexistent/nginx');
  });

  it('starts nginx on the rendered config when nothing answers on the admin address', async () => {
    const freshPrefix = await mkdtemp(path.join(os.tmpdir(), 'cutover-nginx-preflight-'));
    const [listenPort, adminPort] = await freePorts(2);
    const fresh = { ...options, prefix: freshPrefix, listen: `127.0.0.1:${listenPort}`, admin: `127.0.0.1:${adminPort}` };
    try {
      expect(await findNginx(fresh)).toBeUndefined();
      const freshRouter = new NginxRouter(fresh);
      await freshRouter.preflight();
      expect(await findNginx(fresh)).toBeDefined();
      expect(await freshRouter.read()).toEqual({ generation: 0, weights: {}, orgs: {} });
      await freshRouter.apply({ weights: { v1: 0, v2: 100 } });
      expect(await (await fetch(`http://${fresh.listen}/`)).text()).toBe('v2\n');
    } finally {
      await (await findNginx(fresh))?.stop();
      await rm(freshPrefix, { recursive: true, force: true });
    }
  }, 15_000);
});
