/**
 * Picks the router by `router.type`. Providers are imported only when chosen, so a command that
 * needs no router (status, history, plan) never pays for an SDK.
 */
import { isAbsolute, resolve } from 'node:path';
import type { Config, NginxRouterConfig } from '../config/schema.js';
import type { NginxRouterOptions } from './nginx.js';
import type { Router } from './router.js';

/** The nginx router's options from its config section; `dir` resolves a relative prefix. */
export function nginxRouterOptions(r: NginxRouterConfig, config: Config, dir: string): NginxRouterOptions {
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

/** Build the router a config names; `dir` resolves relative paths in it. */
export async function createRouter(config: Config, dir: string): Promise<Router> {
  const r = config.router;
  switch (r.type) {
    case 'none': {
      const { NopRouter } = await import('./nop.js');
      return new NopRouter();
    }
    case 'nginx': {
      const { NginxRouter } = await import('./nginx.js');
      return new NginxRouter(nginxRouterOptions(r, config, dir));
    }
    case 'alb': {
      // The AWS SDK loads only here, so commands without an ALB never pay for it.
      const { createAlbRouter } = await import('./alb-config.js');
      return createAlbRouter(r);
    }
  }
}
