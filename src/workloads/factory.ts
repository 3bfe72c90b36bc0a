/**
 * Picks the workload by `workload.type`; the Kubernetes client loads only when one is chosen.
 */
import type { Config, KubeWorkloadConfig } from '../config/schema.js';
import { kubeBackends } from '../routers/factory.js';
import type { Workload } from './workload.js';

/** The canary Deployment's name, with its default. */
export function canaryDeploymentOf(w: KubeWorkloadConfig): string {
  return w.canaryDeployment ?? `${w.deployment}-canary`;
}

/** The workload a config names, or undefined when its versions run without one. */
export async function createWorkload(config: Config): Promise<Workload | undefined> {
  const w = config.workload;
  if (!w || w.type === 'none') return undefined;
  const [{ KubernetesWorkload }, { connectKube }] = await Promise.all([import('./kubernetes.js'), import('../kube/connect.js')]);
  const router = config.router;
  const services = router.type === 'gateway-api' || router.type === 'ingress-nginx' ? kubeBackends(router) : undefined;
  return new KubernetesWorkload({
    kube: () => connectKube(config.kubernetes ?? {}),
    deployment: w.deployment,
    canaryDeployment: canaryDeploymentOf(w),
    images: Object.fromEntries(Object.entries(config.versions).map(([v, spec]) => [v, spec.image])),
    ...(w.container ? { container: w.container } : {}),
    ...(w.replicas ? { replicas: w.replicas } : {}),
    ...(services ? { service: services.service, canaryService: services.canaryService } : {}),
  });
}
