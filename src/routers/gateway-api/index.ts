/**
 * The `gateway-api` router: weights and org pins in an HTTPRoute's rules, between the stable and
 * the canary Service. See router.ts.
 */
import type { RouterProvider } from '../../providers/provider.js';
import { kubeBackends, requireRoleWorkload, serviceRules } from '../kube-services.js';
import { gatewayPlanNote } from './routes.js';
import type { schema } from './section.js';

export type { GatewayApiRouterConfig } from './section.js';

/** The gateway-api router's descriptor. */
export const gatewayApiRouter: RouterProvider<typeof schema> = {
  type: 'gateway-api',
  schema: () => import('./section.js').then((m) => m.schema),
  platforms: ['kubernetes'],
  services: kubeBackends,
  validate(_section, _config, issue, chosen) {
    requireRoleWorkload('gateway-api', chosen, issue);
  },
  rbac(r, _config, chosen) {
    return [
      ...serviceRules(r, chosen),
      { apiGroups: ['gateway.networking.k8s.io'], resources: ['httproutes'], verbs: ['get', 'update'], resourceNames: [r.httpRoute] },
      // `create` cannot be limited to names (the object does not exist yet when RBAC is asked).
      { apiGroups: ['gateway.networking.k8s.io'], resources: ['httproutes'], verbs: ['create'] },
    ];
  },
  planNote(r, config) {
    return gatewayPlanNote(config.orgs ? { orgHeader: kubeBackends(r).orgHeader, unpinned: config.orgs.unpinned ?? 'stable' } : undefined);
  },
  async create(r, { config, chosen }) {
    const [{ GatewayApiRouter }, { connectKube }] = await Promise.all([import('./router.js'), import('../../kube/connect.js')]);
    return new GatewayApiRouter(
      { ...kubeBackends(r), httpRoute: r.httpRoute, canaryServiceByWorkload: chosen.workload?.makesCanaryService === true, ...(r.parentRefs ? { parentRefs: r.parentRefs } : {}), ...(r.hostnames ? { hostnames: r.hostnames } : {}) },
      await connectKube(config.kubernetes ?? {}),
    );
  },
};
