/** The `none` workload: the versions' servers already exist (nginx upstreams, ALB target groups). */
import type { WorkloadProvider } from '../../providers/provider.js';
import type { schema } from './section.js';

/** The none workload's descriptor. */
export const noWorkload: WorkloadProvider<typeof schema> = {
  type: 'none',
  schema: () => import('./section.js').then((m) => m.schema),
  async create() {
    return undefined;
  },
};
