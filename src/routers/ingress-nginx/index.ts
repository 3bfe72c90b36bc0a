/**
 * The `ingress-nginx` router: a canary twin of the stable Ingress, weighted and pinned through
 * ingress-nginx's canary annotations. See router.ts.
 */
import type { RouterProvider } from '../../providers/provider.js';
import { ORG_LIMIT } from './routes.js';
import { kubeBackends, requireRoleWorkload, serviceRules } from '../kube-services.js';
import type { schema } from './section.js';

export type { IngressNginxRouterConfig } from './section.js';

/** The ingress-nginx router's descriptor. */
export const ingressNginxRouter: RouterProvider<typeof schema> = {
  type: 'ingress-nginx',
  schema: () => import('./section.js').then((m) => m.schema),
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
