/**
 * The least-privilege Role for a config: exactly the verbs Cutover uses on exactly the objects
 * deploy.yaml names. Pure, so `deploy rbac` prints it and a test can apply it and run a whole
 * rollout with nothing more.
 */
import type { Config } from '../config/schema.js';
import { kubeBackends } from '../routers/factory.js';
import { canaryDeploymentOf } from '../workloads/factory.js';

/** One RBAC policy rule. */
export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

/** Who the RoleBinding binds. */
export type RbacSubject = { kind: 'ServiceAccount'; name: string; namespace: string } | { kind: 'User' | 'Group'; name: string };

/** The rules the config's router, workload and state backend need in their namespace. */
export function rbacRules(config: Config): PolicyRule[] {
  const rules: PolicyRule[] = [];
  const named = (apiGroup: string, resource: string, verbs: string[], names: string[]) =>
    rules.push({ apiGroups: [apiGroup], resources: [resource], verbs, resourceNames: [...new Set(names)] });
  // `create` cannot be limited to names (the object does not exist yet when RBAC is asked).
  const create = (apiGroup: string, resource: string) => rules.push({ apiGroups: [apiGroup], resources: [resource], verbs: ['create'] });

  const w = config.workload;
  const r = config.router;
  if (w?.type === 'kubernetes') {
    named('apps', 'deployments', ['get', 'update'], [w.deployment, canaryDeploymentOf(w)]);
    create('apps', 'deployments');
  }
  if (r.type === 'gateway-api' || r.type === 'ingress-nginx') {
    const { service, canaryService } = kubeBackends(r);
    named('', 'services', ['get'], [service, canaryService]);
    if (w?.type === 'kubernetes') create('', 'services');
  }
  if (r.type === 'gateway-api') {
    named('gateway.networking.k8s.io', 'httproutes', ['get', 'update'], [r.httpRoute]);
    create('gateway.networking.k8s.io', 'httproutes');
  }
  if (r.type === 'ingress-nginx') {
    named('networking.k8s.io', 'ingresses', ['get'], [r.ingress]);
    named('networking.k8s.io', 'ingresses', ['get', 'update', 'delete'], [`${r.ingress}-canary`]);
    create('networking.k8s.io', 'ingresses');
  }
  const s = config.state;
  if (s?.type === 'kubernetes') {
    const name = s.name ?? `cutover-${config.service}`;
    named('coordination.k8s.io', 'leases', ['get', 'update', 'delete'], [name]);
    create('coordination.k8s.io', 'leases');
    // The audit log's segments are ConfigMaps numbered as the log grows (<name>-audit-0001, …),
    // so their names cannot be listed in advance: ConfigMaps are granted in the namespace.
    rules.push({ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'create', 'update', 'delete'] });
  }
  return rules;
}

/** The Role and RoleBinding for `subject` in `namespace`. */
export function rbacObjects(config: Config, namespace: string, subject: RbacSubject, name = `cutover-${config.service}`): Record<string, unknown>[] {
  return [
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name, namespace, labels: { 'app.kubernetes.io/managed-by': 'cutover' } },
      rules: rbacRules(config),
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name, namespace, labels: { 'app.kubernetes.io/managed-by': 'cutover' } },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
      subjects: [subject.kind === 'ServiceAccount' ? subject : { apiGroup: 'rbac.authorization.k8s.io', ...subject }],
    },
  ];
}
