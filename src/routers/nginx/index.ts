/**
 * The `nginx` router: weights and org pins in a routing table that Cutover's nginx (with the Lua
 * module) serves from a shared dict, written through a loopback admin endpoint. See router.ts.
 */
import { isAbsolute, resolve } from 'node:path';
import type { ProviderConfig } from '../../config/schema.js';
import type { RouterProvider } from '../../providers/provider.js';
import type { NginxRouterOptions } from './router.js';
import type { schema, NginxRouterConfig } from './section.js';

export type { NginxRouterConfig } from './section.js';

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
  schema: () => import('./section.js').then((m) => m.schema),
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
