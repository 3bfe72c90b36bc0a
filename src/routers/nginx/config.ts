/**
 * The structure half of the `nginx` router: its options, their validation, and the full main
 * config Cutover renders into the prefix it owns. Pure: no I/O, so every check here runs in a unit
 * test and bad config fails before nginx is touched. Every value that reaches the config or its Lua
 * passes a strict pattern first, which is what makes the plain quoting below injection-safe.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { NAME_PATTERN } from '../../config/patterns.js';
import { UsageError } from '../../errors.js';
import * as lua from './lua.js';

/** Where and how Cutover runs its nginx. */
export interface NginxRouterOptions {
  /** The nginx executable; default `nginx` (looked up on PATH). */
  binary?: string;
  /** Absolute directory Cutover owns: `conf/`, `logs/`, `temp/`, `routes.txt`. */
  prefix: string;
  /** Public listener, `host:port`, e.g. `127.0.0.1:8080`. */
  listen: string;
  /** Admin listener for the routing table; must be a loopback address, e.g. `127.0.0.1:8081`. */
  admin: string;
  /**
   * Where this process reaches the admin listener, when not at `admin` itself: a tunnel, or the
   * fault proxy the tests put in between. Loopback only, like `admin`.
   */
  adminEndpoint?: string;
  /** Request header that carries the org id; default `X-Org-Id`. */
  orgHeader?: string;
  /** Cookie that carries the org id when the header is absent. */
  orgCookie?: string;
  /**
   * Where the org id is read: `header` (default: the header, else the cookie when one is named),
   * `cookie` (the cookie only), or `signedCookie` (the cookie, only when its HMAC verifies with
   * the key in `org-cookie.key`; a forged or expired one counts as no org).
   */
  orgFrom?: 'header' | 'cookie' | 'signedCookie';
  /** Answer every request with `X-Cutover-Route: <version> g<generation>` (tests, the sandbox); default off. */
  exposeRoute?: boolean;
  /** With `orgFrom: signedCookie`: the HMAC key (from the environment; written 0600 into the prefix, never logged). */
  orgKey?: string;
  /** nginx worker processes; default 2. */
  workerProcesses?: number;
  /** Directory of `ndk_http_module.so` and `ngx_http_lua_module.so`; default Debian's. */
  modulesDir?: string;
  /** Servers (`host:port` or `unix:/path`) of each version. */
  upstreams: Record<string, string[]>;
}

/** Options with every default filled in, as validated by `resolveNginxOptions`. */
export type ResolvedNginxOptions = Required<Omit<NginxRouterOptions, 'orgCookie' | 'adminEndpoint' | 'orgKey'>> & Pick<NginxRouterOptions, 'orgCookie' | 'adminEndpoint' | 'orgKey'>;


/**
 * A version name as it may appear in config, upstream names and the routing table. The config
 * schema's own name rule, so a version deploy.yaml accepts is never refused by the router.
 */
export const VERSION_PATTERN: RegExp = NAME_PATTERN;

/**
 * How long a worker retired by a reload may keep serving its open connections before nginx closes
 * them. Bounded so that the router, which waits for those workers to be gone before it writes a
 * table naming a new upstream, waits a bounded time.
 */
export const WORKER_SHUTDOWN_TIMEOUT_S = 10;

const SERVER_PATTERN = /^(unix:\/[A-Za-z0-9._/-]+|[A-Za-z0-9.-]+:\d{1,5}|\[[0-9A-Fa-f:.]+\]:\d{1,5})$/;
const SAFE_PATH = /^\/[A-Za-z0-9._/-]*$/;

/** Fill in the defaults and check every option; throws UsageError naming the bad one. */
export function resolveNginxOptions(options: NginxRouterOptions): ResolvedNginxOptions {
  const o: ResolvedNginxOptions = {
    ...options,
    binary: options.binary ?? 'nginx',
    orgHeader: options.orgHeader ?? 'X-Org-Id',
    workerProcesses: options.workerProcesses ?? 2,
    modulesDir: options.modulesDir ?? '/usr/lib/nginx/modules',
    orgFrom: options.orgFrom ?? 'header',
    exposeRoute: options.exposeRoute ?? false,
  };
  if (o.orgFrom !== 'header' && o.orgCookie === undefined) throw new UsageError(`nginx orgFrom ${o.orgFrom} reads the org cookie: name it with orgCookie`);
  if (!path.isAbsolute(o.prefix)) throw new UsageError(`nginx prefix must be an absolute path, got "${o.prefix}"`);
  if (!SAFE_PATH.test(o.modulesDir)) throw new UsageError(`nginx modulesDir must be an absolute path, got "${o.modulesDir}"`);
  parseAddress('listen', o.listen);
  const admin = parseAddress('admin', o.admin);
  if (!/^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\]|localhost)$/.test(admin.host)) {
    throw new UsageError(
      `nginx admin address must be loopback, got "${o.admin}"`,
      'the admin server rewrites routing; bind it to 127.0.0.1, e.g. admin: 127.0.0.1:8081',
    );
  }
  if (o.adminEndpoint !== undefined && !/^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\]|localhost)$/.test(parseAddress('adminEndpoint', o.adminEndpoint).host)) {
    throw new UsageError(`nginx adminEndpoint must be loopback, got "${o.adminEndpoint}"`);
  }
  if (!/^[A-Za-z0-9-]{1,64}$/.test(o.orgHeader)) throw new UsageError(`invalid nginx orgHeader "${o.orgHeader}"`);
  if (o.orgCookie !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(o.orgCookie)) {
    throw new UsageError(`invalid nginx orgCookie "${o.orgCookie}"`);
  }
  if (!Number.isInteger(o.workerProcesses) || o.workerProcesses < 1 || o.workerProcesses > 256) {
    throw new UsageError(`nginx workerProcesses must be a whole number from 1 to 256, got ${o.workerProcesses}`);
  }
  const upstreamNames = new Map<string, string>();
  for (const [version, servers] of Object.entries(o.upstreams)) {
    checkVersionName(version);
    const name = upstreamName(version);
    const clash = upstreamNames.get(name);
    if (clash !== undefined) throw new UsageError(`versions "${clash}" and "${version}" map to one nginx upstream`);
    upstreamNames.set(name, version);
    if (servers.length === 0) throw new UsageError(`nginx upstream of version "${version}" has no servers`);
    for (const s of servers) {
      if (!SERVER_PATTERN.test(s)) throw new UsageError(`invalid server "${s}" for version "${version}": use host:port`);
    }
  }
  if (upstreamNames.size === 0) throw new UsageError('nginx router needs at least one version in upstreams');
  return o;
}

function parseAddress(field: string, value: string): { host: string; port: number } {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(value);
  const port = Number(m?.[2]);
  if (!m?.[1] || port < 1 || port > 65535) throw new UsageError(`nginx ${field} must be host:port, got "${value}"`);
  return { host: m[1], port };
}

/** Throw UsageError unless `version` matches VERSION_PATTERN. */
export function checkVersionName(version: string): void {
  if (!VERSION_PATTERN.test(version)) {
    throw new UsageError(`invalid version name "${version}": use lowercase letters, digits and . _ - (max 63)`);
  }
}

/**
 * `proxy_pass http://$cutover_backend` falls back to DNS when no upstream has the name; a dotted
 * name reads like a host name, so dots become underscores and the name stays plainly a group.
 */
function upstreamName(version: string): string {
  return `cutover_${version.replace(/\./g, '_')}`;
}

function indent(text: string, pad: string): string {
  return text.trim().split('\n').map((l) => (l ? pad + l : l)).join('\n');
}

function renderBody(o: ResolvedNginxOptions, hash: string): string {
  const mods = ['ndk_http_module.so', 'ngx_http_lua_module.so'].map((m) => `load_module ${path.join(o.modulesDir, m)};`);
  const versions = Object.keys(o.upstreams).sort();
  // Every value below was validated against a strict pattern, so plain quoting is injection-safe.
  const settings = [
    'local settings = {',
    `  config_hash = "${hash}",`,
    `  org_header_var = "http_${o.orgHeader.toLowerCase().replace(/-/g, '_')}",`,
    o.orgCookie === undefined ? '  org_cookie_var = nil,' : `  org_cookie_var = "cookie_${o.orgCookie}",`,
    `  org_from = "${o.orgFrom}",`,
    '  upstreams = {',
    ...versions.map((v) => `    ["${v}"] = "${upstreamName(v)}",`),
    '  },',
    '}',
  ].join('\n');
  const upstreams = versions.map((v) =>
    [
      `  upstream ${upstreamName(v)} {`,
      ...(o.upstreams[v] ?? []).map((s) => `    server ${s};`),
      '    keepalive 64;',
      // Shorter than the services' idle timeout, so nginx never reuses a connection they closed.
      '    keepalive_timeout 30s;',
      '  }',
    ].join('\n'),
  );
  return `# Rendered by Cutover (deploy); the next apply overwrites any edit.
# cutover-config-hash ${hash}
${mods.join('\n')}
worker_processes ${o.workerProcesses};
# Workers retired by a reload run on the old config; the router waits for them to be gone before
# it routes to a new upstream, so their shutdown must be bounded.
worker_shutdown_timeout ${WORKER_SHUTDOWN_TIMEOUT_S}s;
pid logs/nginx.pid;
error_log logs/error.log warn;

events {
  worker_connections 4096;
}

http {
  access_log off;
  # Temp files live in the prefix, so nothing outside it must exist or be writable.
  client_body_temp_path temp/client_body;
  proxy_temp_path temp/proxy;
  fastcgi_temp_path temp/fastcgi;
  uwsgi_temp_path temp/uwsgi;
  scgi_temp_path temp/scgi;
  # 16m holds a table of 10,000 orgs with room to spare; kept across reloads (same name and size).
  lua_shared_dict ${lua.ROUTES_DICT} 16m;

  init_by_lua_block {
${indent(settings, '    ')}
${indent(lua.ROUTING_MODULE_LUA, '    ')}
  }

  init_worker_by_lua_block {
${indent(lua.INIT_WORKER_LUA, '    ')}
  }

${upstreams.join('\n\n')}

  server {
    listen ${o.listen};
    keepalive_requests 100000;
    set $cutover_backend "";
    set $cutover_route "";
    set $cutover_routed_at "";

    location / {
      access_by_lua_block {
${indent(lua.ACCESS_LUA, '        ')}
      }
      proxy_pass http://$cutover_backend;
      # HTTP/1.1 without "Connection: close" lets upstream keepalive reuse connections.
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
${o.exposeRoute ? '      add_header X-Cutover-Route $cutover_route always;\n      add_header X-Cutover-Routed-At $cutover_routed_at always;\n' : ''}    }
  }

  server {
    listen ${o.admin};
    allow 127.0.0.0/8;
    allow ::1;
    deny all;
    # The table is read from memory in Lua; a body buffered to a temp file would be refused.
    client_max_body_size 8m;
    client_body_buffer_size 8m;
    # One request per connection: a client never reuses a connection to a worker that a reload
    # is retiring, so the first admin call after a reload cannot hit a reset.
    keepalive_timeout 0;

    location = /cutover/routes {
      content_by_lua_block {
${indent(lua.ADMIN_ROUTES_LUA, '        ')}
      }
    }

    location = /cutover/activate {
      content_by_lua_block {
${indent(lua.ADMIN_ACTIVATE_LUA, '        ')}
      }
    }

    location = /cutover/config {
      content_by_lua_block {
${indent(lua.ADMIN_CONFIG_LUA, '        ')}
      }
    }

    location = /cutover/stats {
      content_by_lua_block {
${indent(lua.ADMIN_STATS_LUA, '        ')}
      }
    }

    location / {
      return 404;
    }
  }
}
`;
}

/**
 * Render the full main config and the hash that identifies it. The hash covers everything but
 * itself and is served by the admin `/cutover/config`, so the router can tell which config the
 * running workers were started with after a reload. Pure; throws UsageError on bad options.
 */
export function renderNginxConfigWithHash(options: NginxRouterOptions): { config: string; hash: string } {
  const o = resolveNginxOptions(options);
  const hash = createHash('sha256').update(renderBody(o, '')).digest('hex').slice(0, 16);
  return { config: renderBody(o, hash), hash };
}

/** Render the full main config Cutover owns (deterministic: same options, same text). */
export function renderNginxConfig(options: NginxRouterOptions): string {
  return renderNginxConfigWithHash(options).config;
}
