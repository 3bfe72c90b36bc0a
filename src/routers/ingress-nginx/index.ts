/**
 * The `ingress-nginx` router: a canary twin of the stable Ingress, weighted and pinned through
 * ingress-nginx's canary annotations. See router.ts.
 */
import { z } from 'zod';
import { kubeName } from '../../config/fields.js';
import type { RouterProvider } from '../../providers/provider.js';
import { ORG_LIMIT } from './routes.js';
import { kubeBackends, kubeServiceFields as kubeService, requireRoleWorkload, serviceRules } from '../kube-services.js';

const schema = z.strictObject({
  type: z.literal('ingress-nginx'),
  ingress: kubeName('Ingress').meta({ description: "The stable Ingress; Cutover manages its canary twin <ingress>-canary" }),
  ...kubeService,
});

/** The ingress-nginx router section. */
export type IngressNginxRouterConfig = z.output<typeof schema>;

/** The ingress-nginx router's descriptor. */
export const ingressNginxRouter: RouterProvider<typeof schema> = {
  type: 'ingress-nginx',
  schema,
  platforms: ['kubernetes'],
  services: kubeBackends,
  validate(_section, _config, issue, chosen) {
    requireRoleWorkload('ingress-nginx', chosen, issue);
  },
  rbac(r, _config, chosen) {
    return [
      ...serviceRules(r, chosen),
      { apiGroups: ['networking.k8s.io'], resources: ['ingresses'], verbs: ['get'], resourceNames: [r.ingress] },
      { apiGroups: ['networking.k8s.io'], resources: ['ingresses'], verbs: ['get', 'update', 'delete'], resourceNames: [`${r.ingress}-canary`] },
      { apiGroups: ['networking.k8s.io'], resources: ['ingresses'], verbs: ['create'] },
    ];
  },
  planNote(_section, config) {
    return config.orgs ? ORG_LIMIT : undefined;
  },
  async create(r, { config, chosen }) {
    const [{ IngressNginxRouter }, { connectKube }] = await Promise.all([import('./router.js'), import('../../kube/connect.js')]);
    // The canary's paths keep the stable Ingress's ports, so router.port plays no part here.
    const { service, canaryService, orgHeader } = kubeBackends(r);
    return new IngressNginxRouter({ ingress: r.ingress, service, canaryService, orgHeader, canaryServiceByWorkload: chosen.workload?.makesCanaryService === true }, await connectKube(config.kubernetes ?? {}));
  },
};
