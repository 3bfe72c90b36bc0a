/** The `kubernetes` workload's section of deploy.yaml, loaded only when a config is validated. */
import { z } from 'zod';
import { duration, kubeName } from '../../config/fields.js';

export const schema = z.strictObject({
  type: z.literal('kubernetes'),
  deployment: kubeName('Deployment').meta({ description: 'The stable Deployment; the candidate runs in <deployment>-canary' }),
  canaryDeployment: kubeName('Deployment').optional(),
  container: z.string().min(1).optional().meta({ description: "Container whose image is the version's (default: the first)" }),
  replicas: z.number().int().min(1).max(10_000).optional()
    .meta({ description: "Replicas at 100% (default: the stable Deployment's); the canary gets its share per step, at least 1" }),
  progressDeadline: duration.optional().meta({ description: 'How long a scale-up or promotion may take to become ready (default 5m)' }),
});

/** The kubernetes workload section. */
export type KubeWorkloadConfig = z.output<typeof schema>;
