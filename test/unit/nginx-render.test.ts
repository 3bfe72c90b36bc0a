/**
 * The pure parts of the nginx router: config rendering, routing table text, and the checks that
 * keep untrusted names (versions, org ids, addresses) out of nginx config and Lua.
 */
import { describe, it, expect } from 'vitest';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { OperationError, UsageError } from '../../src/errors.js';
import { NginxRouter, type ExecFn, type NginxWorker } from '../../src/routers/nginx/router.js';
import { renderNginxConfig, renderNginxConfigWithHash, type NginxRouterOptions } from '../../src/routers/nginx/config.js';
import { parseRoutingTable, renderRoutingTable } from '../../src/routers/nginx/table.js';

const options: NginxRouterOptions = {
  prefix: '/var/lib/cutover/nginx',
  listen: '127.0.0.1:8080',
  admin: '127.0.0.1:8081',
  orgHeader: 'X-Org-Id',
  orgCookie: 'cutover_org',
  upstreams: { v1: ['10.0.0.1:8080', '10.0.0.2:8080'], 'v2.1': ['10.0.1.1:8080'] },
};

/** Side effects that must not happen in a unit test. */
const offline = {
  exec: (async () => {
    throw new Error('exec must not be called');
  }) as ExecFn,
  fetch: (async () => {
    throw new TypeError('fetch failed');
  }) as typeof fetch,
};

describe('renderNginxConfig', () => {
  it('is deterministic, and the hash follows the structure', () => {
    expect(renderNginxConfig(options)).toBe(renderNginxConfig({ ...options, upstreams: { 'v2.1': ['10.0.1.1:8080'], v1: ['10.0.0.1:8080', '10.0.0.2:8080'] } }));
    const a = renderNginxConfigWithHash(options);
    const b = renderNginxConfigWithHash({ ...options, workerProcesses: 4 });
    expect(a.hash).toMatch(/^[0-9a-f]{16}$/);
    expect(b.hash).not.toBe(a.hash);
    expect(a.config).toContain(`config_hash = "${a.hash}"`);
  });

  it('loads ndk before lua, keeps routing in a shared dict and proxies with keepalive', () => {
    const config = renderNginxConfig(options);
    const ndk = config.indexOf('load_module /usr/lib/nginx/modules/ndk_http_module.so;');
    const lua = config.indexOf('load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;');
    expect(ndk).toBeGreaterThanOrEqual(0);
    expect(lua).toBeGreaterThan(ndk);
    expect(config).toContain('lua_shared_dict cutover_routes 16m;');
    expect(config).toContain('upstream cutover_v2_1 {');
    expect(config).toContain('["v2.1"] = "cutover_v2_1"');
    expect(config).toContain('org_header_var = "http_x_org_id"');
    expect(config).toContain('org_cookie_var = "cookie_cutover_org"');
    expect(config).toMatch(/proxy_pass http:\/\/\$cutover_backend;\s+# [^\n]*\n\s+proxy_http_version 1\.1;\s+proxy_set_header Connection "";/);
    expect(config).toMatch(/listen 127\.0\.0\.1:8081;\s+allow 127\.0\.0\.0\/8;\s+allow ::1;\s+deny all;/);
  });

  it('bounds how long workers retired by a reload may serve (main context, before events)', () => {
    const config = renderNginxConfig(options);
    const at = config.indexOf('\nworker_shutdown_timeout 10s;\n');
    expect(at).toBeGreaterThan(0);
    expect(at).toBeLessThan(config.indexOf('events {'));
  });

  it.each(['V1', 'v1;', '../v1', 'v1 v2', '-v1', 'v'.repeat(64)])('rejects the version name %j', (version) => {
    expect(() => renderNginxConfig({ ...options, upstreams: { [version]: ['10.0.0.1:80'] } })).toThrow(UsageError);
  });

  it('rejects two versions that would share one upstream name', () => {
    expect(() => renderNginxConfig({ ...options, upstreams: { 'v1.2': ['a:1'], v1_2: ['b:1'] } })).toThrow(/one nginx upstream/);
  });

  it.each(['0.0.0.0:8081', '10.0.0.5:8081', 'example.com:8081', '[::]:8081'])('refuses the non-loopback admin %s', (admin) => {
    expect(() => renderNginxConfig({ ...options, admin })).toThrow(UsageError);
  });

  it('accepts loopback admin addresses', () => {
    for (const admin of ['127.0.0.1:9000', '127.0.0.2:9000', '[::1]:9000', 'localhost:9000']) {
      expect(() => renderNginxConfig({ ...options, admin })).not.toThrow();
    }
  });

  it('rejects server addresses and header names that could inject config', () => {
    expect(() => renderNginxConfig({ ...options, upstreams: { v1: ['10.0.0.1:80; include /etc/passwd'] } })).toThrow(UsageError);
    expect(() => renderNginxConfig({ ...options, orgHeader: 'X-Org"; os.exit()' })).toThrow(UsageError);
    expect(() => renderNginxConfig({ ...options, orgCookie: 'org }' })).toThrow(UsageError);
    expect(() => renderNginxConfig({ ...options, prefix: 'relative/dir' })).toThrow(UsageError);
  });
});

describe('routing table text', () => {
  it('round-trips weights (fractions included) and org pins', () => {
    const spec = { weights: { v1: 66.66666666666667, 'v2.1': 33.33333333333333 }, orgs: { acme: 'v2.1', 'globex.eu_1-a': 'v1' } };
    const text = renderRoutingTable(spec, 42);
    expect(text.split('\n')[0]).toBe('generation 42');
    expect(parseRoutingTable(text)).toEqual({ generation: 42, ...spec, unpinned: { mode: 'weighted' } });
    expect(renderRoutingTable({ ...spec, orgs: { 'globex.eu_1-a': 'v1', acme: 'v2.1' } }, 42)).toBe(text);
  });

  it('round-trips the unpinned policy; absent renders as weighted', () => {
    const weights = { v1: 90, 'v2.1': 10 };
    const byVersion = renderRoutingTable({ weights, unpinned: { mode: 'version', version: 'v2.1' } }, 7);
    expect(byVersion.split('\n')[1]).toBe('unpinned version v2.1');
    expect(parseRoutingTable(byVersion)).toEqual({ generation: 7, weights, orgs: {}, unpinned: { mode: 'version', version: 'v2.1' } });
    const absent = renderRoutingTable({ weights }, 7);
    expect(absent.split('\n')[1]).toBe('unpinned weighted');
    expect(renderRoutingTable({ weights, unpinned: { mode: 'weighted' } }, 7)).toBe(absent);
    expect(parseRoutingTable(absent).unpinned).toEqual({ mode: 'weighted' });
  });

  it('reads a table without an unpinned line (written before it existed) as weighted', () => {
    expect(parseRoutingTable('generation 3\nweight v1 100\norg acme v1\n')).toEqual({
      generation: 3,
      weights: { v1: 100 },
      orgs: { acme: 'v1' },
      unpinned: { mode: 'weighted' },
    });
  });

  it.each(['V2', 'v2 v3', 'v2\nweight v3 100', '', '-v2', 'v'.repeat(64)])('rejects the crafted unpinned version %j', (version) => {
    expect(() => renderRoutingTable({ weights: { v1: 100 }, unpinned: { mode: 'version', version } }, 1)).toThrow(UsageError);
  });

  it('rejects an unknown unpinned mode', () => {
    const unpinned = { mode: 'stable' } as unknown as { mode: 'weighted' };
    expect(() => renderRoutingTable({ weights: { v1: 100 }, unpinned }, 1)).toThrow(/unpinned mode/);
  });

  it.each([
    ['unpinned version V2', 'line 2'],
    ['unpinned version', 'line 2'],
    ['unpinned sticky', 'line 2'],
    ['unpinned weighted v1', 'line 2'],
    ['unpinned weighted\nunpinned version v1', 'line 3: unpinned must appear once'],
  ])('refuses the malformed unpinned line in %j', (lines, where) => {
    expect(() => parseRoutingTable(`generation 1\n${lines}\nweight v1 100\n`)).toThrow(where);
  });

  it.each(['acme;\n include /etc/passwd', 'acme v2', '', '.hidden', 'a'.repeat(129), 'org\nweight v2 100'])(
    'rejects the crafted org id %j',
    (org) => {
      expect(() => renderRoutingTable({ weights: { v1: 100 }, orgs: { [org]: 'v1' } }, 1)).toThrow(UsageError);
    },
  );

  it('rejects weights that do not sum to 100', () => {
    expect(() => renderRoutingTable({ weights: { v1: 90, v2: 5 } }, 1)).toThrow(/sum to 100/);
    expect(() => renderRoutingTable({ weights: { v1: 150, v2: -50 } }, 1)).toThrow(UsageError);
  });

  it('refuses malformed text from the admin server', () => {
    expect(() => parseRoutingTable('weight v1 100\n')).toThrow(OperationError);
    expect(() => parseRoutingTable('generation 1\nroute v1 100\n')).toThrow(/line 2/);
  });
});

describe('NginxRouter input checks', () => {
  it('refuses a version that has no upstream before touching nginx', async () => {
    const router = new NginxRouter(options, offline);
    await expect(router.apply({ weights: { v1: 50, v3: 50 } })).rejects.toThrow(/version "v3" has no nginx upstream/);
    const unpinned = { weights: { v1: 100 }, unpinned: { mode: 'version' as const, version: 'v3' } };
    await expect(router.apply(unpinned)).rejects.toThrow(/version "v3" has no nginx upstream/);
  });

  it('names the missing nginx binary and how to install it (exit 2)', async () => {
    const prefix = await mkdtemp(path.join(os.tmpdir(), 'cutover-unit-nginx-'));
    const router = new NginxRouter({ ...options, binary: '/nonexistent/nginx', prefix }, { fetch: offline.fetch });
    const error = await router.apply({ weights: { v1: 100 } }).catch((e: unknown) => e);
    await rm(prefix, { recursive: true, force: true });
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).exitCode).toBe(2);
    expect((error as UsageError).message).toContain('/nonexistent/nginx');
    expect((error as UsageError).hint).toContain('apt-get install nginx libnginx-mod-http-lua');
  });

  it('answers unverifiable when the admin server does not answer', async () => {
    const router = new NginxRouter(options, offline);
    await expect(router.verify({ weights: { v1: 100 } })).resolves.toMatchObject({ status: 'unverifiable' });
  });
});

describe('NginxRouter structure changes', () => {
  /**
   * A fake nginx: the admin server serves the old config hash until `-s reload`, then the new one;
   * the process table shows the workers `script` gives for each poll after the reload. Every
   * observable step is logged, so the order of reload, retired workers and table write shows.
   */
  async function fakeNginx(script: NginxWorker[][], reloadNeeded = true) {
    const prefix = await mkdtemp(path.join(os.tmpdir(), 'cutover-unit-nginx-'));
    await mkdir(path.join(prefix, 'logs'), { recursive: true });
    await writeFile(path.join(prefix, 'logs', 'nginx.pid'), '4242\n');
    const o = { ...options, prefix };
    const { hash } = renderNginxConfigWithHash(o);
    const log: string[] = [];
    let reloaded = !reloadNeeded;
    let table: string | undefined;
    let polls = 0;
    const router = new NginxRouter(o, {
      exec: (async (_file: string, args: string[]) => {
        if (args.includes('reload')) {
          reloaded = true;
          log.push('reload');
        }
        return { stdout: '', stderr: '' };
      }) as ExecFn,
      fetch: (async (url: string, init?: RequestInit) => {
        if (url.endsWith('/cutover/config')) return new Response(`${reloaded ? hash : 'old'}\n`);
        if (init?.method === 'PUT') {
          table = String(init.body);
          log.push('put');
          return new Response('ok');
        }
        return table === undefined ? new Response('none', { status: 404 }) : new Response(table);
      }) as typeof fetch,
      workers: async (master) => {
        expect(master).toBe(4242);
        if (!reloaded) return [{ pid: 1, shuttingDown: false }, { pid: 2, shuttingDown: false }];
        const workers = script[Math.min(polls++, script.length - 1)] ?? [];
        log.push(`workers ${workers.map((w) => `${w.pid}${w.shuttingDown ? 's' : ''}`).join(',') || 'none old'}`);
        return workers;
      },
    });
    return { router, log, cleanup: () => rm(prefix, { recursive: true, force: true }) };
  }

  it('writes a table after a reload only once every worker of the old config is gone', async () => {
    const nginx = await fakeNginx([
      [{ pid: 1, shuttingDown: false }, { pid: 3, shuttingDown: false }], // not yet retitled: still old by pid
      [{ pid: 1, shuttingDown: true }, { pid: 3, shuttingDown: false }],
      [{ pid: 3, shuttingDown: false }, { pid: 4, shuttingDown: false }],
    ]);
    try {
      await expect(nginx.router.apply({ weights: { v1: 100 } })).resolves.toEqual({ changed: true, generation: 1 });
      expect(nginx.log).toEqual(['reload', 'workers 1,3', 'workers 1s,3', 'workers 3,4', 'put']);
    } finally {
      await nginx.cleanup();
    }
  });

  it('without a reload, still waits for workers an earlier reload left shutting down', async () => {
    const nginx = await fakeNginx([[{ pid: 9, shuttingDown: true }, { pid: 3, shuttingDown: false }], [{ pid: 3, shuttingDown: false }]], false);
    try {
      await nginx.router.apply({ weights: { v1: 100 } });
      expect(nginx.log).toEqual(['workers 9s,3', 'workers 3', 'put']);
    } finally {
      await nginx.cleanup();
    }
  });
});
