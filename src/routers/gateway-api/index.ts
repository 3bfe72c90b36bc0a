/**
 * The `gateway-api` router: weights and org pins in an HTTPRoute's rules, between the stable and
 * the canary Service. See router.ts.
 */
import { z } from 'zod';
import { kubeName } from '../../config/fields.js';
import type { RouterProvider } from '../../providers/provider.js';
import { kubeBackends, kubeServiceFields as kubeService, requireRoleWorkload, serviceRules } from '../kube-services.js';
import { gatewayPlanNote } from './routes.js';

const schema = z.strictObject({
  type: z.literal('gateway-api'),
  httpRoute: kubeName('HTTPRoute').meta({ description: 'The HTTPRoute carrying the weights (created when missing, with parentRefs)' }),
  parentRefs: z.array(z.strictObject({ name: kubeName('Gateway'), namespace: kubeName('namespace').optional(), sectionName: z.string().min(1).optional() })).optional()
    .meta({ description: 'Gateways the HTTPRoute attaches to, when Cutover creates it' }),
  hostnames: z.array(z.string().min(1)).optional(),
  ...kubeService,
});

/** The gateway-api router section. */
export type GatewayApiRouterConfig = z.output<typeof schema>;

/** The gateway-api router's descriptor. */
export const gatewayApiRouter: RouterProvider<typeof schema> = {
  type: 'gateway-api',
  schema,
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
