/**
 * The nginx router's traffic controls against an attacker on the same host or on the wire: the
 * admin endpoint answers only requests that carry its secret, the route header is off unless
 * asked for, and signed org cookies are verified by nginx before they route — all through real
 * nginx, with real requests.
 */
import { statSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NginxRouterOptions } from '../../src/routers/nginx/config.js';
import { NginxRouter } from '../../src/routers/nginx/router.js';
import { ADMIN_SECRET_HEADER, adminHeaders, signOrgCookie } from '../../src/routers/nginx/secrets.js';
import { startSampleService, type SampleService } from '../../src/sandbox/sample-service.js';
import { startNginxFixture, type NginxFixture } from '../helpers/nginx-fixture.js';
import { freePorts } from '../helpers/ports.js';
import { startNginx, type NginxProcess } from '../../src/sandbox/nginx-process.js';

let fx: NginxFixture;
let router: NginxRouter;
let options: NginxRouterOptions;

beforeAll(async () => {
  fx = await startNginxFixture('nginx-security');
  options = fx.options;
  router = new NginxRouter(options);
  await router.apply({ weights: { v1: 100 } });
}, 30_000);
afterAll(async () => {
  await fx?.stop();
});

const put = (body: string, headers: Record<string, string> = {}) =>
  fetch(`http://${options.admin}/cutover/routes`, { method: 'PUT', body, headers, signal: AbortSignal.timeout(5_000) });
const table = (generation: number) => `generation ${generation}\nunpinned weighted\nweight v1 0\nweight v2 100\n`;

describe('the nginx admin endpoint', () => {
  it('refuses a write without the secret, with a wrong one, and from another user; applies it with the secret', async () => {
    const before = await router.read();
    const next = table((before.generation ?? 0) + 1);
    const none = await put(next);
    const wrong = await put(next, { [ADMIN_SECRET_HEADER]: 'f'.repeat(64) });
    const shorter = await put(next, { [ADMIN_SECRET_HEADER]: 'x' });
    expect([none.status, wrong.status, shorter.status]).toEqual([403, 403, 403]);
    expect(await router.read()).toEqual(before);
    // Another user on this host can neither read the secret nor write without it.
    const secretFile = path.join(options.prefix, 'admin.secret');
    expect(statSync(secretFile).mode & 0o777).toBe(0o600);
    const asNobody = await execa('runuser', ['-u', 'nobody', '--', 'sh', '-c', `cat ${secretFile} >/dev/null 2>&1 && echo read || echo unreadable; curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary 'generation 999' http://${options.admin}/cutover/routes`], { reject: false });
    expect(asNobody.stdout.trim()).toBe('unreadable\n403');
    expect(await router.read()).toEqual(before);
    const withSecret = await put(next, adminHeaders(options.prefix));
    expect(withSecret.status).toBe(200);
    expect((await router.read()).weights).toEqual({ v1: 0, v2: 100 });
    // Reads and the stats need it too; every refusal above was counted.
    expect((await fetch(`http://${options.admin}/cutover/routes`)).status).toBe(403);
    const stats = await (await fetch(`http://${options.admin}/cutover/stats`, { headers: adminHeaders(options.prefix) })).text();
    expect(Number(/admin_refused (\d+)/.exec(stats)?.[1])).toBeGreaterThanOrEqual(5);
    const log = await readFile(path.join(options.prefix, 'logs', 'error.log'), 'utf8');
    expect(log).toMatch(/cutover: admin PUT \/cutover\/routes from 127\.0\.0\.1 refused: wrong secret/);
    expect(log).not.toContain(await readFile(secretFile, 'utf8').then((t) => t.trim()));
    await router.apply({ weights: { v1: 100 } });
  });

  it('loads a new secret at a structural reload: the old one is refused after it', async () => {
    const old = adminHeaders(options.prefix);
    const v3 = await startSampleService({ version: 'v3' });
    try {
      const grown = new NginxRouter({ ...options, upstreams: { ...options.upstreams, v3: [`127.0.0.1:${v3.port}`] } });
      await grown.apply({ weights: { v1: 100 } }); // the new upstream is structure: a reload
      await grown.apply({ weights: { v1: 90, v3: 10 } });
      expect(adminHeaders(options.prefix)).not.toEqual(old);
      expect((await fetch(`http://${options.admin}/cutover/routes`, { headers: old })).status).toBe(403);
      expect((await grown.read()).weights).toEqual({ v1: 90, v3: 10 });
      await grown.apply({ weights: { v1: 100 } });
    } finally {
      await v3.stop();
    }
  });
});

describe('the route header and signed org cookies', () => {
  let v1: SampleService;
  let v2: SampleService;
  let nginx: NginxProcess | undefined;
  let signed: NginxRouterOptions;
  const key = 'k'.repeat(40);

  beforeAll(async () => {
    [v1, v2] = await Promise.all([startSampleService({ version: 'v1' }), startSampleService({ version: 'v2' })]);
    const [listen, admin] = await freePorts(2);
    signed = {
      prefix: path.join(options.prefix, '..', `${path.basename(options.prefix)}-signed`),
      listen: `127.0.0.1:${listen}`,
      admin: `127.0.0.1:${admin}`,
      orgCookie: 'cutover_org',
      orgFrom: 'signedCookie',
      orgKey: key,
      upstreams: { v1: [`127.0.0.1:${v1.port}`], v2: [`127.0.0.1:${v2.port}`] },
    };
    nginx = await startNginx(signed);
    await new NginxRouter(signed).apply({ weights: { v1: 100 }, orgs: { 'st-marys': 'v2' } });
  }, 30_000);
  afterAll(async () => {
    await nginx?.stop();
    await Promise.all([v1?.stop(), v2?.stop()]);
    await rm(signed.prefix, { recursive: true, force: true });
  });

  /** Which version answered each of `n` requests carrying `cookie` (and an org header an attacker set). */
  async function versions(cookie: string | undefined, n: number): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const res = await fetch(`http://${signed.listen}/`, { headers: { 'X-Org-Id': 'st-marys', ...(cookie ? { cookie: `cutover_org=${cookie}` } : {}) }, signal: AbortSignal.timeout(5_000) });
      expect(res.headers.get('x-cutover-route')).toBeNull(); // off unless exposeRoute
      const version = (await res.text()).match(/v\d/)?.[0] ?? `status ${res.status}`;
      out[version] = (out[version] ?? 0) + 1;
    }
    return out;
  }

  it('routes a valid cookie to its org; a forged, tampered or expired one (or a bare header) is routed as no org, and counted', async () => {
    const hour = Math.floor(Date.now() / 1000) + 3600;
    const valid = signOrgCookie('st-marys', key, hour);
    const forged = signOrgCookie('st-marys', 'not-the-key', hour);
    const tampered = valid.replace('st-marys', 'st-maryz');
    const expired = signOrgCookie('st-marys', key, Math.floor(Date.now() / 1000) - 1);
    expect(await versions(valid, 200)).toEqual({ v2: 200 });
    expect(await versions(forged, 200)).toEqual({ v1: 200 });
    expect(await versions(tampered, 100)).toEqual({ v1: 100 });
    expect(await versions(expired, 100)).toEqual({ v1: 100 });
    // The header alone is not trusted under signedCookie.
    expect(await versions(undefined, 100)).toEqual({ v1: 100 });
    const stats = await (await fetch(`http://${signed.admin}/cutover/stats`, { headers: adminHeaders(signed.prefix) })).text();
    expect(stats).toMatch(/org_cookie_forged 300\n/);
    expect(stats).toMatch(/org_cookie_expired 100\n/);
    expect(statSync(path.join(signed.prefix, 'org-cookie.key')).mode & 0o777).toBe(0o600);
  });
});

describe('deploy router rotate-secret', () => {
  it('loads a new secret into the running nginx without printing it; the old one is refused, the router carries on', async () => {
    const { startSandbox } = await import('../helpers/sandbox.js');
    const sb = await startSandbox('    steps:\n      - { weight: 100 }\n');
    try {
      const prefix = path.join(sb.dir, 'nginx');
      const old = adminHeaders(prefix);
      const run = await sb.deploy(['router', 'rotate-secret']);
      expect(run.exitCode, run.stderr).toBe(0);
      expect(run.stdout.trim()).toBe('nginx: the admin endpoint has a new secret; the old one is refused from now on');
      const now = adminHeaders(prefix);
      expect(now).not.toEqual(old);
      for (const secret of [...Object.values(old), ...Object.values(now)]) expect(`${run.stdout}${run.stderr}`).not.toContain(secret);
      const admin = /admin: (\S+)/.exec(await readFile(sb.file, 'utf8'))![1]!;
      expect((await fetch(`http://${admin}/cutover/routes`, { headers: old })).status).toBe(403);
      const promote = await sb.deploy(['promote', '--to', 'v2', '-y', '-o', 'json']);
      expect(promote.exitCode, promote.stderr).toBe(0);
      expect((await sb.router.read()).weights).toEqual({ v1: 0, v2: 100 });
    } finally {
      await sb.stop();
    }
  });
});

describe('deploy router status and stop', () => {
  it('says whether nginx runs and what it serves; stop asks first, quits it, and the next deploy starts it again', async () => {
    const { startSandbox } = await import('../helpers/sandbox.js');
    const sb = await startSandbox('    steps:\n      - { weight: 100 }\n');
    try {
      const status = await sb.deploy(['router', 'status']);
      expect(status.exitCode, status.stderr).toBe(0);
      expect(status.stdout).toMatch(/^nginx: running\n[\s\S]*pid {6}\d+\n[\s\S]*workers {2}2\n {2}config {3}[0-9a-f]{16} \(as deploy\.yaml renders it\)\n {2}routing {2}generation \d+: \[v1=100%; 0 org pins; unpinned orgs by weight\]\n?$/);
      const refused = await sb.deploy(['router', 'stop']);
      expect([refused.exitCode, refused.stderr]).toEqual([2, expect.stringMatching(/stop nginx\? every request through it fails until the next deploy starts it: needs confirmation/)]);
      const stopped = await sb.deploy(['router', 'stop', '-y', '-o', 'json']);
      expect(stopped.exitCode, stopped.stderr).toBe(0);
      const { waitFor } = await import('../helpers/sandbox.js');
      await waitFor('nginx to quit', async () => JSON.parse((await sb.deploy(['router', 'status', '-o', 'json'])).stdout).running === false);
      await expect(fetch(`http://${sb.listen}/`, { signal: AbortSignal.timeout(2_000) })).rejects.toThrow();
      const promote = await sb.deploy(['promote', '--to', 'v2', '-y']);
      expect(promote.exitCode, promote.stderr).toBe(0);
      expect(await (await fetch(`http://${sb.listen}/`, { signal: AbortSignal.timeout(2_000) })).text()).toMatch(/v2/);
    } finally {
      await sb.stop();
    }
  });
});
