/**
 * What both Kubernetes routers share: the stable and canary Services they route to and the org
 * header (their section fields are in kube-service-fields.ts). A kubernetes workload runs the
 * versions behind those same Services.
 */
import type { PolicyRule } from '../kube/rbac.js';
import type { Chosen, Issue } from '../providers/provider.js';

/** The Services of a Kubernetes router section, with their defaults. */
export function kubeBackends(r: { service: string; canaryService?: string | undefined; port?: number | undefined; orgHeader?: string | undefined }): { service: string; canaryService: string; port: number; orgHeader: string } {
  return { service: r.service, canaryService: r.canaryService ?? `${r.service}-canary`, port: r.port ?? 80, orgHeader: r.orgHeader ?? 'X-Org-Id' };
}

/** Both routers route to a stable and a canary Service: a workload must run the versions behind them. */
export function requireRoleWorkload(type: string, chosen: Chosen, issue: Issue): void {
  if (chosen.workload?.roles) return;
  issue(
    ['router', 'type'],
    `${type} routes to a stable and a canary Service: add workload: { type: kubernetes, deployment: … } so the candidate runs behind the canary Service and is promoted into the stable one`,
  );
}

/** The Role rules both routers need for their Services (create only when the workload makes the canary one). */
export function serviceRules(r: Parameters<typeof kubeBackends>[0], chosen: Chosen): PolicyRule[] {
  const { service, canaryService } = kubeBackends(r);
  return [
    { apiGroups: [''], resources: ['services'], verbs: ['get'], resourceNames: [...new Set([service, canaryService])] },
    ...(chosen.workload?.makesCanaryService ? [{ apiGroups: [''], resources: ['services'], verbs: ['create'] }] : []),
  ];
}
