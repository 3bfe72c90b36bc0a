/** The `none` router: versions run without traffic routing (a workload alone, or a dry run). */
import type { RouterProvider } from '../../providers/provider.js';
import type { schema } from './section.js';

/** The none router's descriptor. */
export const noRouter: RouterProvider<typeof schema> = {
  type: 'none',
  schema: () => import('./section.js').then((m) => m.schema),
  async create() {
    const { NopRouter } = await import('./router.js');
    return new NopRouter();
  },
};
