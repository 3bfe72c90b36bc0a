/**
 * The least-privilege Role for a config: exactly the verbs Cutover uses on exactly the objects
 * deploy.yaml names. Pure, so `deploy rbac` prints it and a test can apply it and run a whole
 * rollout with nothing more.
 */
import type { Config } from '../config/schema.js';
import { chosenProviders } from '../providers/chosen.js';

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
  const chosen = chosenProviders(config);
  return [
    ...(config.workload ? (chosen.workload?.rbac?.(config.workload, config, chosen) ?? []) : []),
    ...(chosen.router.rbac?.(config.router, config, chosen) ?? []),
    ...(config.state ? (chosen.state.rbac?.(config.state, config, chosen) ?? []) : []),
  ];
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
