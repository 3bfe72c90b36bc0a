/** The `none` router: versions run without traffic routing (a workload alone, or a dry run). */
import { z } from 'zod';
import type { RouterProvider } from '../../providers/provider.js';

const schema = z.strictObject({ type: z.literal('none') });

/** The none router's descriptor. */
export const noRouter: RouterProvider<typeof schema> = {
  type: 'none',
  schema,
  async create() {
    const { NopRouter } = await import('./router.js');
    return new NopRouter();
  },
};
