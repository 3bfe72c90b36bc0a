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
    modulesDir: r.modulesDir ?? '/usr/lib/nginx/modules',
    upstreams: Object.fromEntries(Object.entries(config.versions).map(([v, spec]) => [v, spec.endpoints ?? []])),
  };
}

/** The nginx router's descriptor. */
export const nginxRouter: RouterProvider<typeof schema> = {
  type: 'nginx',
  schema,
  validate(_section, config, issue) {
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
