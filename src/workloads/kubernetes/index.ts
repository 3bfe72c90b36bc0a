/**
 * The `kubernetes` workload: the candidate runs in a canary Deployment scaled to its share of
 * traffic, and a promotion hands its pod template to the stable Deployment. See workload.ts.
 */
import type { WorkloadProvider } from '../../providers/provider.js';
import type { schema, KubeWorkloadConfig } from './section.js';

export type { KubeWorkloadConfig } from './section.js';

/** The canary Deployment's name, with its default. */
export function canaryDeploymentOf(w: KubeWorkloadConfig): string {
  return w.canaryDeployment ?? `${w.deployment}-canary`;
}

/** The kubernetes workload's descriptor. */
export const kubernetesWorkload: WorkloadProvider<typeof schema> = {
  type: 'kubernetes',
  schema: () => import('./section.js').then((m) => m.schema),
  platforms: ['kubernetes'],
  roles: true,
  makesCanaryService: true,
  readinessTimeout: (w) => w.progressDeadline,
  validate(_w, config, issue) {
    for (const [v, spec] of Object.entries(config.versions)) {
      if (!spec.image && v !== config.stable) issue(['versions', v, 'image'], 'the kubernetes workload needs the image of every version it can roll out');
    }
  },
  rbac(w) {
    return [
      { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'update'], resourceNames: [...new Set([w.deployment, canaryDeploymentOf(w)])] },
      // `create` cannot be limited to names (the object does not exist yet when RBAC is asked).
      { apiGroups: ['apps'], resources: ['deployments'], verbs: ['create'] },
    ];
  },
  async create(w, { config, chosen }) {
    const [{ KubernetesWorkload }, { connectKube }] = await Promise.all([import('./workload.js'), import('../../kube/connect.js')]);
    const services = chosen.router.services?.(config.router);
    return new KubernetesWorkload({
      kube: () => connectKube(config.kubernetes ?? {}),
      deployment: w.deployment,
      canaryDeployment: canaryDeploymentOf(w),
      images: Object.fromEntries(Object.entries(config.versions).map(([v, spec]) => [v, spec.image])),
      ...(w.container ? { container: w.container } : {}),
      ...(w.replicas ? { replicas: w.replicas } : {}),
      ...(services ? { service: services.service, canaryService: services.canaryService } : {}),
    });
  },
};
