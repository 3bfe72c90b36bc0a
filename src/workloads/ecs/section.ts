/** The `ecs` workload's section of deploy.yaml, loaded only when a config is validated. */
import { z } from 'zod';
import { duration, name } from '../../config/fields.js';

const cluster = z
  .string()
  .regex(/^(arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:cluster\/)?[A-Za-z0-9_-]{1,255}$/, 'must be an ECS cluster name or ARN, like patient or arn:aws:ecs:eu-west-1:123456789012:cluster/patient');
const serviceName = z.string().regex(/^[A-Za-z0-9_-]{1,255}$/, "must be an ECS service name: letters, digits, '-' and '_', like patient-api-blue");
const roleArn = z.string().regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/, 'must be an IAM role ARN, like arn:aws:iam::123456789012:role/patient-api-task');

export const schema = z.strictObject({
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
