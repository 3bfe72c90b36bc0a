/**
 * The nginx router against a real nginx (Debian package with the Lua module) on loopback, in
 * front of two sample services. Started here and stopped after; if nginx cannot start, every
 * test fails rather than being skipped.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { LockedError, OperationError, UsageError } from '../../src/errors.js';
import type { NginxRouterOptions } from '../../src/routers/nginx/config.js';
import { listNginxWorkers, NginxRouter } from '../../src/routers/nginx/router.js';
import { adminHeaders } from '../../src/routers/nginx/secrets.js';
import { findNginx, startNginx, type NginxProcess } from '../../src/sandbox/nginx-process.js';
import { startNginxFixture, type NginxFixture } from '../helpers/nginx-fixture.js';
import { startSampleService } from '../../src/sandbox/sample-service.js';
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

/**
 * Send `perOrg` requests for each org (16 at a time over keep-alive) and collect, per org, the
 * versions that answered. `headersOf` says how an org id travels (header or cookie).
 */
async function versionsByOrg(orgs: string[], perOrg: number, headersOf: (org: string) => Record<string, string>) {
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  const seen = new WeakSet<Socket>();
  const byOrg = new Map<string, Map<string, number>>();
  const failures: string[] = [];
  const queue = orgs.flatMap((org) => Array.from({ length: perOrg }, () => org));
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let org = queue.shift(); org !== undefined; org = queue.shift()) {
        const tally = newTally();
        await get(publicUrl, agent, headersOf(org), tally, seen);
        failures.push(...tally.failures);
        const versions = byOrg.get(org) ?? new Map<string, number>();
        for (const [v, n] of tally.byVersion) versions.set(v, (versions.get(v) ?? 0) + n);
        byOrg.set(org, versions);
      }
    }),
  );
  agent.destroy();
  return { byOrg, failures };
}

/**
 * Where the Lua side puts an unpinned org under weights listed in version-name order: the CRC-32
 * of its id mapped to [0, 100), against the cumulative weights.
 */
function stickyVersion(org: string, weights: Record<string, number>): string {
  const point = (crc32(org) % 1_000_000) / 10_000;
  let acc = 0;
  const positive = Object.entries(weights).filter(([, w]) => w > 0).sort(([a], [b]) => (a < b ? -1 : 1));
  for (const [version, share] of positive) if (point < (acc += share)) return version;
  return positive.at(-1)![0];
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

let fixture: NginxFixture | undefined;
let prefix: string;
let nginx: NginxProcess;
let options: NginxRouterOptions;
let publicUrl: string;
let router: NginxRouter;

beforeAll(async () => {
  fixture = await startNginxFixture('nginx');
  ({ nginx, options, publicUrl } = fixture);
  prefix = options.prefix;
  router = new NginxRouter(options);
}, 15_000);

afterAll(async () => {
  await fixture?.stop();
});

describe('nginx router against real nginx', () => {
  it('answers 503 with a clear message before any routing table is loaded', async () => {
    const res = await fetch(publicUrl);
    expect(res.status).toBe(503);
    expect(await res.text()).toMatch(/no routing table is loaded/);
    expect(await router.read()).toEqual({ generation: 0, weights: {}, orgs: {}, unpinned: { mode: 'weighted' } });
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

  it('refuses a table written under an older fencing token than the live one, and keeps the newer routing', async () => {
    const newer = await router.apply({ weights: { v1: 100 }, fence: 7 });
    expect((await router.read()).fence).toBe(7);
    const stale = await router.apply({ weights: { v1: 90, v2: 10 }, fence: 6 }).then(() => undefined, (e: unknown) => e);
    expect(stale).toBeInstanceOf(LockedError);
    expect((stale as Error).message).toMatch(/fencing token 7, newer than this driver's 6; nothing was written/);
    // The admin endpoint refuses it by itself too: a write already past the router's own check.
    const text = `generation ${(newer.generation ?? 0) + 1}\nfence 6\nunpinned weighted\nweight v1 90\nweight v2 10\n`;
    const put = await fetch(`http://${options.admin}/cutover/routes`, { method: 'PUT', body: text, headers: adminHeaders(options.prefix), signal: AbortSignal.timeout(5_000) });
    expect([put.status, (await put.text()).trim()]).toEqual([409, 'stale fence 6: the live table was written under fence 7 by a newer lock holder']);
    expect(await router.read()).toMatchObject({ weights: { v1: 100 }, fence: 7, generation: newer.generation });
    // The same token or a newer one writes.
    await expect(router.apply({ weights: { v1: 95, v2: 5 }, fence: 7 })).resolves.toMatchObject({ changed: true });
    await expect(router.apply({ weights: { v1: 100 }, fence: 8 })).resolves.toMatchObject({ changed: true });
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

  it('routes unpinned orgs by weight, sticky per org: every request of one org on one version', async () => {
    const orgs = Array.from({ length: 100 }, (_, i) => `tenant-${String(i).padStart(3, '0')}`);
    await router.apply({ weights: { v1: 70, v2: 30 }, orgs: {} });
    const { byOrg, failures } = await versionsByOrg(orgs, 20, (org) => ({ 'x-org-id': org }));
    expect(failures).toEqual([]);
    const versionOf = new Map<string, string>();
    for (const org of orgs) {
      const versions = [...(byOrg.get(org) ?? [])];
      expect(versions, `versions of ${org}`).toHaveLength(1);
      expect(versions[0]![1]).toBe(20);
      expect(versions[0]![0], `version of ${org}`).toBe(stickyVersion(org, { v1: 70, v2: 30 }));
      versionOf.set(org, versions[0]![0]);
    }
    const onV2 = orgs.filter((org) => versionOf.get(org) === 'v2');
    expectShare(onV2.length, orgs.length, 0.3);

    // The cookie carries the same org to the same version.
    const byCookie = await versionsByOrg(orgs, 3, (org) => ({ cookie: `cutover_org=${org}` }));
    for (const org of orgs) expect([...(byCookie.byOrg.get(org) ?? [])]).toEqual([[versionOf.get(org), 3]]);

    // A larger candidate share only adds orgs to v2: none of those already there moves back.
    await router.apply({ weights: { v1: 50, v2: 50 }, orgs: {} });
    const stepped = await versionsByOrg(orgs, 5, (org) => ({ 'x-org-id': org }));
    for (const org of onV2) expect([...(stepped.byOrg.get(org) ?? [])]).toEqual([['v2', 5]]);
    const onV2After = orgs.filter((org) => stepped.byOrg.get(org)?.has('v2'));
    expect(onV2After.length).toBeGreaterThan(onV2.length);
  });

  it('sends unpinned orgs to one version under "unpinned version", while requests without an org split by weight', async () => {
    const spec = { weights: { v1: 50, v2: 50 }, orgs: { acme: 'v2' }, unpinned: { mode: 'version' as const, version: 'v1' } };
    await router.apply(spec);
    expect(await router.read()).toMatchObject({ unpinned: { mode: 'version', version: 'v1' } });
    await expect(router.verify(spec)).resolves.toMatchObject({ status: 'verified' });
    await expect(router.verify({ ...spec, unpinned: { mode: 'weighted' } })).resolves.toMatchObject({ status: 'mismatch' });

    const orgs = Array.from({ length: 100 }, (_, i) => `clinic-${i}`);
    const { byOrg, failures } = await versionsByOrg([...orgs, 'acme'], 20, (org) => ({ 'x-org-id': org }));
    expect(failures).toEqual([]);
    for (const org of orgs) expect([...(byOrg.get(org) ?? [])]).toEqual([['v1', 20]]);
    expect([...(byOrg.get('acme') ?? [])]).toEqual([['v2', 20]]);

    const noOrg = await load(publicUrl, 16, 2_000).done;
    expect(noOrg.failures).toEqual([]);
    expectShare(noOrg.byVersion.get('v2') ?? 0, 2_000, 0.5);
  });

  it('refuses through the admin server an unpinned version that has no upstream', async () => {
    const before = await router.read();
    const res = await fetch(`http://${options.admin}/cutover/routes`, {
      method: 'PUT',
      body: `generation ${(before.generation ?? 0) + 1}\nunpinned version v9\nweight v1 100\n`,
      headers: adminHeaders(options.prefix),
    });
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(/line 2: unpinned names version v9, which has no upstream/);
    expect(await router.read()).toEqual(before);
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
      // The reload is done when apply returns: no worker of the old config is left.
      const workers = await listNginxWorkers(nginx.pid);
      expect(workers?.filter((w) => w.shuttingDown)).toEqual([]);
      expect(workers).toHaveLength(2);
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

describe('nginx router, a table naming a version the config lacks', () => {
  it('answers 503 with a clear message for requests routed to it, and serves the rest', async () => {
    // Only a worker on an older config can meet such a table (the admin write refuses it); a cold
    // start restoring a saved table the config no longer fits is the same situation, reproducible.
    const stalePrefix = await mkdtemp(path.join(os.tmpdir(), 'cutover-nginx-stale-'));
    const [listenPort, adminPort] = await freePorts(2);
    const stale = { ...options, prefix: stalePrefix, listen: `127.0.0.1:${listenPort}`, admin: `127.0.0.1:${adminPort}` };
    let staleNginx: NginxProcess | undefined;
    try {
      await mkdir(stalePrefix, { recursive: true });
      await writeFile(path.join(stalePrefix, 'routes.txt'), 'generation 5\nunpinned version v9\nweight v1 100\norg acme v2\n');
      staleNginx = await startNginx(stale);
      const routedToV9 = await fetch(`http://${stale.listen}/`, { headers: { 'x-org-id': 'initech' } });
      expect(routedToV9.status).toBe(503);
      expect(routedToV9.headers.get('x-cutover-route')).toBe('v9 g5');
      expect(await routedToV9.text()).toMatch(/routing generation 5 sends this request to version v9, which has no upstream/);
      expect(await (await fetch(`http://${stale.listen}/`, { headers: { 'x-org-id': 'acme' } })).text()).toBe('v2\n');
      expect(await (await fetch(`http://${stale.listen}/`)).text()).toBe('v1\n');
    } finally {
      await staleNginx?.stop();
      await rm(stalePrefix, { recursive: true, force: true });
    }
  });
});

describe('nginx router, a reload while an old worker still holds a request', () => {
  it('writes the table naming the new version only after that worker finished on the old table', async () => {
    await router.apply({ weights: { v1: 100, v2: 0 }, orgs: {} });
    const before = await router.read();
    // A client still sending its headers when the reload comes: its connection is not idle, so the
    // retired worker keeps it and routes it, with whatever table is live once the headers end.
    const slow = connect(Number(options.listen.split(':')[1]), '127.0.0.1');
    let response = '';
    slow.setEncoding('utf8').on('data', (chunk: string) => (response += chunk));
    const closed = new Promise<void>((resolve) => slow.on('close', () => resolve()));
    slow.write('GET / HTTP/1.1\r\nHost: cutover\r\nX-Org-Id: slow-org\r\n');
    await new Promise((r) => setTimeout(r, 100));

    const v3 = await startSampleService({ version: 'v3' });
    try {
      const hashBefore = await (await fetch(`http://${options.admin}/cutover/config`, { headers: adminHeaders(options.prefix) })).text();
      const grown = new NginxRouter({ ...options, upstreams: { ...options.upstreams, v3: [`127.0.0.1:${v3.port}`] } });
      let applied = false;
      const applying = grown.apply({ weights: { v1: 100 }, orgs: { 'slow-org': 'v3' } }).finally(() => (applied = true));
      while ((await (await fetch(`http://${options.admin}/cutover/config`, { headers: adminHeaders(options.prefix) })).text()) === hashBefore) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 300));
      expect(applied, 'apply returned while a worker of the old config still ran').toBe(false);
      expect((await listNginxWorkers(nginx.pid))?.some((w) => w.shuttingDown)).toBe(true);

      slow.write('\r\n');
      await closed; // the retired worker answers and then closes, as it is shutting down
      expect(response).toMatch(/^HTTP\/1\.1 200 /);
      expect(response).toMatch(new RegExp(`X-Cutover-Route: v1 g${before.generation}\r\n`, 'i'));
      const result = await applying;
      expect(result).toEqual({ changed: true, generation: (before.generation ?? 0) + 1 });
      const moved = await fetch(publicUrl, { headers: { 'x-org-id': 'slow-org' } });
      expect(await moved.text()).toBe('v3\n');
      await grown.removeManaged('v1');
    } finally {
      slow.destroy();
      await v3.stop();
    }
  });
});

describe('nginx router preflight', () => {
  it('passes against the running nginx without starting another', async () => {
    await router.preflight();
    expect((await findNginx(options))?.pid).toBe(nginx.pid);
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
      expect(await freshRouter.read()).toEqual({ generation: 0, weights: {}, orgs: {}, unpinned: { mode: 'weighted' } });
      await freshRouter.apply({ weights: { v1: 0, v2: 100 } });
      expect(await (await fetch(`http://${fresh.listen}/`)).text()).toBe('v2\n');
    } finally {
      await (await findNginx(fresh))?.stop();
      await rm(freshPrefix, { recursive: true, force: true });
    }
  }, 15_000);
});
