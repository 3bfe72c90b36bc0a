/** The `none` workload: the versions' servers already exist (nginx upstreams, ALB target groups). */
import { z } from 'zod';
import type { WorkloadProvider } from '../../providers/provider.js';

const schema = z.strictObject({ type: z.literal('none') });

/** The none workload's descriptor. */
export const noWorkload: WorkloadProvider<typeof schema> = {
  type: 'none',
  schema,
  async create() {
    return undefined;
  },
};
