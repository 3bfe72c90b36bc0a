/**
 * The `nginx` router: weights and org pins in a routing table that Cutover's nginx (with the Lua
 * module) serves from a shared dict, written through a loopback admin endpoint. See router.ts.
 */
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { hostPort } from '../../config/fields.js';
import type { ProviderConfig } from '../../config/schema.js';
import type { RouterProvider } from '../../providers/provider.js';
import type { NginxRouterOptions } from './router.js';

const schema = z.strictObject({
  type: z.literal('nginx'),
  listen: hostPort.meta({ description: 'Where nginx serves users' }),
  admin: hostPort.meta({ description: 'Loopback address of the routing admin endpoint' }),
  prefix: z.string().min(1).optional().meta({ description: 'Folder Cutover owns for nginx (default .deploy/nginx)' }),
  binary: z.string().min(1).optional(),
  modulesDir: z.string().min(1).optional(),
  workerProcesses: z.number().int().min(1).max(64).optional(),
  orgHeader: z.string().regex(/^[A-Za-z0-9-]+$/, 'must be an HTTP header name').optional(),
  orgCookie: z.string().regex(/^[A-Za-z0-9_]+$/, 'must be a cookie name of letters, digits or _').optional(),
  orgFrom: z.enum(['header', 'cookie', 'signedCookie']).optional()
    .meta({ description: 'Where the org id is read: header (default; the cookie when the header is absent), cookie, or signedCookie (an HMAC-signed cookie set by your app or trusted proxy; forged or expired ones count as no org)' }),
  orgKeyEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an environment variable name').optional()
    .meta({ description: 'With orgFrom: signedCookie, the environment variable holding the HMAC key (default CUTOVER_ORG_KEY); the key is never written to deploy.yaml' }),
  exposeRoute: z.boolean().optional()
    .meta({ description: 'Answer every request with X-Cutover-Route: <version> g<generation> (default false: it tells the world your versions; the sandbox and tests turn it on)' }),
});

/** The nginx router section. */
export type NginxRouterConfig = z.output<typeof schema>;

/** The nginx router's options from its config section; `dir` resolves a relative prefix. */
export function nginxRouterOptions(r: NginxRouterConfig, config: ProviderConfig, dir: string): NginxRouterOptions {
  const prefix = r.prefix ?? '.deploy/nginx';
  return {
    binary: r.binary ?? 'nginx',
    prefix: isAbsolute(prefix) ? prefix : resolve(dir, prefix),
    listen: r.listen,
    admin: r.admin,
    orgHeader: r.orgHeader ?? 'X-Org-Id',
    ...(r.orgCookie ? { orgCookie: r.orgCookie } : {}),
    workerProcesses: r.workerProcesses ?? 2,
    ...(r.orgFrom ? { orgFrom: r.orgFrom } : {}),
    ...(r.exposeRoute ? { exposeRoute: true } : {}),
    ...(r.orgFrom === 'signedCookie' && process.env[r.orgKeyEnv ?? 'CUTOVER_ORG_KEY'] ? { orgKey: process.env[r.orgKeyEnv ?? 'CUTOVER_ORG_KEY'] } : {}),
    modulesDir: r.modulesDir ?? '/usr/lib/nginx/modules',
    upstreams: Object.fromEntries(Object.entries(config.versions).map(([v, spec]) => [v, spec.endpoints ?? []])),
  };
}

/** The nginx router's descriptor. */
export const nginxRouter: RouterProvider<typeof schema> = {
  type: 'nginx',
  schema,
  validate(section, config, issue) {
    if (section.orgFrom && section.orgFrom !== 'header' && !section.orgCookie) issue(['router', 'orgCookie'], `orgFrom: ${section.orgFrom} reads the org from a cookie: name it here, like orgCookie: cutover_org`);
    const upstreams = new Map<string, string>();
    for (const [v, spec] of Object.entries(config.versions)) {
      // nginx names each version's upstream with '.' as '_': two names must not meet there.
      const upstream = v.replaceAll('.', '_');
      if (upstreams.has(upstream)) issue(['versions', v], `versions "${upstreams.get(upstream)}" and "${v}" would share one nginx upstream; rename one`);
      upstreams.set(upstream, v);
      if (!spec.endpoints) issue(['versions', v, 'endpoints'], 'the nginx router needs the endpoints of every version');
    }
  },
  async create(section, { config, dir }) {
    const { NginxRouter } = await import('./router.js');
    return new NginxRouter(nginxRouterOptions(section, config, dir));
  },
};
