/** The `fleet` router's and workload's sections of deploy.yaml, loaded only when a config is validated. */
import { z } from 'zod';
import { duration } from '../config/fields.js';
import { TARGET_PATTERN } from './config.js';

export const schema = z.strictObject({
  type: z.literal('fleet'),
  strategy: z.enum(['lockstep', 'waves']).optional()
    .meta({ description: 'lockstep (default): every step live in every target before its hold; waves: one target through the whole ladder, then the next' }),
  order: z.array(z.string().regex(TARGET_PATTERN, 'must be a target name')).min(1).optional()
    .meta({ description: 'waves: the order of the targets (default: as listed under targets:)' }),
  bake: duration.optional().meta({ description: 'waves: hold at 100% in a target, with gates, before the next one starts (default 10m)' }),
  unreachableTimeout: duration.optional()
    .meta({ description: 'How long a target may fail to answer (a write, or its routing read during a hold) before the fleet rolls back the targets that answer (default 60s)' }),
  activationLead: duration.optional()
    .meta({ description: 'Routers that stage (nginx): the least time between the last staging and the activation instant (default 50ms)' }),
});

/** The fleet router section. */
export type FleetSection = z.output<typeof schema>;

export const workloadSchema = z.strictObject({ type: z.literal('fleet') });
