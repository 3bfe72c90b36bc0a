/**
 * Picks the router by `router.type`. Providers are imported only when chosen, so a command that
 * needs no router (status, history, plan) never pays for an SDK.
 */
import { isAbsolute, resolve } from 'node:path';
import type { Config, GatewayApiRouterConfig, IngressNginxRouterConfig, NginxRouterConfig } from '../config/schema.js';
import type { NginxRouterOptions } from './nginx.js';
import { DEFAULT_LEASE_MS } from '../state/store.js';
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

/** The Services of a Kubernetes router section, with their defaults. */
export function kubeBackends(r: GatewayApiRouterConfig | IngressNginxRouterConfig): { service: string; canaryService: string; port: number; orgHeader: string } {
  return { service: r.service, canaryService: r.canaryService ?? `${r.service}-canary`, port: r.port ?? 80, orgHeader: r.orgHeader ?? 'X-Org-Id' };
}

/** Whether the kubernetes workload makes the canary Service (so the router's preflight must not require it). */
const canaryServiceByWorkload = (config: Config) => config.workload?.type === 'kubernetes';

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
      return createAlbRouter(r, config.service, process.env, config.state?.lease ?? DEFAULT_LEASE_MS, config.orgs !== undefined);
    }
    case 'gateway-api': {
      const [{ GatewayApiRouter }, { connectKube }] = await Promise.all([import('./gateway-api.js'), import('../kube/connect.js')]);
      return new GatewayApiRouter(
        { ...kubeBackends(r), httpRoute: r.httpRoute, canaryServiceByWorkload: canaryServiceByWorkload(config), ...(r.parentRefs ? { parentRefs: r.parentRefs } : {}), ...(r.hostnames ? { hostnames: r.hostnames } : {}) },
        await connectKube(config.kubernetes ?? {}),
      );
    }
    case 'ingress-nginx': {
      const [{ IngressNginxRouter }, { connectKube }] = await Promise.all([import('./ingress-nginx.js'), import('../kube/connect.js')]);
      // The canary's paths keep the stable Ingress's ports, so router.port plays no part here.
      const { service, canaryService, orgHeader } = kubeBackends(r);
      return new IngressNginxRouter({ ingress: r.ingress, service, canaryService, orgHeader, canaryServiceByWorkload: canaryServiceByWorkload(config) }, await connectKube(config.kubernetes ?? {}));
    }
  }
}
