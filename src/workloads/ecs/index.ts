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
import { z } from 'zod';
import { duration, name } from '../../config/fields.js';
import type { WorkloadProvider } from '../../providers/provider.js';
import { ecsStatements } from './policy.js';

const cluster = z
  .string()
  .regex(/^(arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:cluster\/)?[A-Za-z0-9_-]{1,255}$/, 'must be an ECS cluster name or ARN, like patient or arn:aws:ecs:eu-west-1:123456789012:cluster/patient');
const serviceName = z.string().regex(/^[A-Za-z0-9_-]{1,255}$/, "must be an ECS service name: letters, digits, '-' and '_', like patient-api-blue");
const roleArn = z.string().regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/, 'must be an IAM role ARN, like arn:aws:iam::123456789012:role/patient-api-task');

const schema = z.strictObject({
  type: z.literal('ecs'),
  cluster: cluster.meta({ description: 'The ECS cluster of the services, by name or ARN' }),
  services: z.record(name('version'), serviceName)
    .meta({ description: "ECS service of each version, e.g. { v1: patient-api-blue, v2: patient-api-green }: the blue/green pair, each behind its version's target group" }),
  container: z.string().min(1).max(255).optional()
    .meta({ description: "Container whose image is the version's (default: the task definition's first)" }),
  deadline: duration.optional()
    .meta({ description: "How long the candidate's deployment may take to complete (default: strategy.blueGreen.healthTimeout, else 5m)" }),
  passRoles: z.array(roleArn).optional()
    .meta({ description: "The task definition's task and execution roles: registering the candidate's revision passes them to ECS, so `deploy iam-policy` grants iam:PassRole on these" }),
});

/** The ecs workload section. */
export type EcsWorkloadConfig = z.output<typeof schema>;

/** The ecs workload's descriptor. */
export const ecsWorkload: WorkloadProvider<typeof schema> = {
  type: 'ecs',
  schema,
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
