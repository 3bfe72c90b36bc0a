/**
 * The `local` state backend, the embedded default: state, lock, requests and audit log as files
 * in one folder per service. See store.ts.
 */
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { lease } from '../../config/fields.js';
import { validateState, type RolloutState } from '../../engine/state.js';
import type { StateProvider } from '../../providers/provider.js';

const schema = z.strictObject({
  type: z.literal('local'),
  dir: z.string().min(1).optional().meta({ description: 'Folder for state, lock and audit log (default .deploy)' }),
  lease: lease.optional().meta({ description: 'Driver lock lease (default 30s)' }),
});

/** The local state section. */
export type LocalStateConfig = z.output<typeof schema>;

/** The local backend's descriptor. */
export const localState: StateProvider<typeof schema> = {
  type: 'local',
  schema,
  lease: (s) => s.lease,
  async open(s, { dir, clock }) {
    const { LocalStateStore } = await import('./store.js');
    const folder = s.dir ?? '.deploy';
    return new LocalStateStore<RolloutState>(isAbsolute(folder) ? folder : resolve(dir, folder), { clock, validate: validateState });
  },
};
