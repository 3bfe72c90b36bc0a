/**
 * Picks the workload by `workload.type`; the Kubernetes client loads only when one is chosen.
 */
import type { Config } from '../config/schema.js';
import type { Workload } from './workload.js';

/** The workload a config names, or undefined when its versions run without one. */
export async function createWorkload(config: Config): Promise<Workload | undefined> {
  const w = config.workload;
  if (!w || w.type === 'none') return undefined;
  const [{ KubernetesWorkload }, { connectKube }] = await Promise.all([import('./kubernetes.js'), import('../kube/connect.js')]);
  const router = config.router;
  const service = router.type === 'gateway-api' || router.type === 'ingress-nginx' ? router.service : undefined;
  return new KubernetesWorkload({
    kube: () => connectKube(config.kubernetes ?? {}),
    deployment: w.deployment,
    canaryDeployment: w.canaryDeployment ?? `${w.deployment}-canary`,
    images: Object.fromEntries(Object.entries(config.versions).map(([v, spec]) => [v, spec.image])),
    ...(w.container ? { container: w.container } : {}),
    ...(w.replicas ? { replicas: w.replicas } : {}),
    ...(service ? { service, canaryService: (router as { canaryService?: string }).canaryService ?? `${service}-canary` } : {}),
  });
}
