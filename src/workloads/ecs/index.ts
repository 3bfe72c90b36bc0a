/**
 * The `ecs` workload: the blue/green pair of ECS services behind the ALB, one per target group.
 * The candidate's service gets the stable task definition with the version's image, the router
 * shifts weight between the target groups, and the side traffic left is scaled to zero. See
 * workload.ts for how the engine's calls map onto that.
 *
 * `services` is keyed by version, as `router.targetGroups` is: the two maps read side by side
 * (v1 → patient-api-blue → its target group) and change together at each release, and a version
 * names its own backend everywhere, so nothing has to guess which side runs what.
 */
import type { WorkloadProvider } from '../../providers/provider.js';
import { ecsStatements } from './policy.js';
import type { schema } from './section.js';

export type { EcsWorkloadConfig } from './section.js';

/** The ecs workload's descriptor. */
export const ecsWorkload: WorkloadProvider<typeof schema> = {
  type: 'ecs',
  schema: () => import('./section.js').then((m) => m.schema),
  platforms: ['aws'],
  readinessTimeout: (w) => w.deadline,
  validate(w, config, issue) {
    const versions = Object.keys(config.versions);
    for (const v of versions) {
      if (!w.services[v]) issue(['workload', 'services'], `needs the ECS service of version ${v}`);
      if (!config.versions[v]!.image && v !== config.stable) issue(['versions', v, 'image'], 'the ecs workload needs the image of every version it can roll out');
    }
    const owner = new Map<string, string>();
    for (const [v, service] of Object.entries(w.services)) {
      if (!(v in config.versions)) issue(['workload', 'services', v], `is not a version listed under versions: (${versions.join(', ')})`);
      const other = owner.get(service);
      if (other) issue(['workload', 'services', v], `is ${other}'s service too: each version needs its own, or rolling one out would replace the tasks serving the other`);
      owner.set(service, v);
    }
  },
  iam(w, config) {
    return ecsStatements(w, config.aws?.region);
  },
  async create(w, { config, leaseMs, clock, report }) {
    // The ECS SDK loads only here, so commands that drive no rollout never pay for it.
    const { createEcsWorkload } = await import('./config.js');
    return createEcsWorkload(w, {
      aws: config.aws,
      images: Object.fromEntries(Object.entries(config.versions).map(([v, spec]) => [v, spec.image])),
      stable: config.stable,
      strategyDeadlineMs: config.strategy?.blueGreen?.healthTimeout,
      leaseMs,
      clock,
      ...(report ? { report } : {}),
    });
  },
};
