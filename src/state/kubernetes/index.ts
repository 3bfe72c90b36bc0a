/**
 * The `kubernetes` state backend: state and documents in ConfigMaps, the driver lock a Lease,
 * the audit log in numbered ConfigMap segments. See store.ts.
 */
import { validateState, type RolloutState } from '../../engine/state.js';
import type { StateProvider } from '../../providers/provider.js';
import type { schema } from './section.js';

export type { KubeStateConfig } from './section.js';

/** The kubernetes backend's descriptor. */
export const kubernetesState: StateProvider<typeof schema> = {
  type: 'kubernetes',
  schema: () => import('./section.js').then((m) => m.schema),
  platforms: ['kubernetes'],
  lease: (s) => s.lease,
  rbac(s, config) {
    const name = s.name ?? `cutover-${config.service}`;
    return [
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'update', 'delete'], resourceNames: [name] },
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
      // The audit log's segments are ConfigMaps numbered as the log grows (<name>-audit-0001, …),
      // so their names cannot be listed in advance: ConfigMaps are granted in the namespace.
      { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'create', 'update', 'delete'] },
    ];
  },
  async open(s, { config, clock }) {
    const kube = config.kubernetes ?? {};
    const [{ KubeStateStore }, { connectKube }] = await Promise.all([import('./store.js'), import('../../kube/connect.js')]);
    return new KubeStateStore<RolloutState>(() => connectKube(kube), {
      name: s.name ?? `cutover-${config.service}`,
      clock,
      validate: validateState,
      ...(s.auditMaxBytes ? { auditMaxBytes: s.auditMaxBytes } : {}),
    });
  },
};
