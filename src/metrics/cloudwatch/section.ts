/** The `cloudwatch:` section of deploy.yaml, loaded only when a config is validated. */
import { z } from 'zod';
import { duration, name, shown } from '../../config/fields.js';
import { loadBalancerDimension, targetGroupDimension } from './dimensions.js';
import { ALB_NAMESPACE } from './index.js';

const dimension = (parse: (text: string) => string | undefined, example: string) =>
  z.string().transform((text, ctx) => {
    const value = parse(text);
    if (value === undefined) {
      ctx.addIssue({ code: 'custom', message: `must be ${example} or its ARN (got ${shown(text)})` });
      return z.NEVER;
    }
    return value;
  });

export const schema = z.strictObject({
  loadBalancer: dimension(loadBalancerDimension, 'the ALB dimension value app/<name>/<id>').optional()
    .meta({ description: "The ALB whose metrics are read: app/<name>/<id> or its ARN (default: the alb router's listener's)" }),
  targetGroups: z.record(name('version'), dimension(targetGroupDimension, 'a target group dimension value targetgroup/<name>/<id>')).optional()
    .meta({ description: "Each version's target group: { v1: targetgroup/<name>/<id> } or ARNs (default: the alb router's targetGroups)" }),
  period: duration
    .refine((ms) => ms >= 60_000 && ms % 60_000 === 0, 'must be whole minutes, like 60s or 5m: the ALB publishes its metrics a minute at a time')
    .optional()
    .meta({ description: 'The granularity of the metrics read (default 60s); windows are widened to whole periods' }),
  namespace: z.string().min(1).max(255).optional().meta({ description: `The metrics' namespace (default ${ALB_NAMESPACE})` }),
});

/** The cloudwatch section. */
export type CloudWatchConfig = z.output<typeof schema>;
