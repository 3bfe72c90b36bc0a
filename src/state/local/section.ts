/** The `local` state section of deploy.yaml, loaded only when a config is validated. */
import { z } from 'zod';
import { lease } from '../../config/fields.js';

export const schema = z.strictObject({
  type: z.literal('local'),
  dir: z.string().min(1).optional().meta({ description: 'Folder for state, lock and audit log (default .deploy)' }),
  lease: lease.optional().meta({ description: 'Driver lock lease (default 30s)' }),
});

/** The local state section. */
export type LocalStateConfig = z.output<typeof schema>;
