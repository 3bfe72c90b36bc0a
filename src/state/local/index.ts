/**
 * The `local` state backend, the embedded default: state, lock, requests and audit log as files
 * in one folder per service. See store.ts.
 */
import { isAbsolute, resolve } from 'node:path';
import { validateState, type RolloutState } from '../../engine/state.js';
import type { StateProvider } from '../../providers/provider.js';
import type { schema } from './section.js';

export type { LocalStateConfig } from './section.js';

/** The local backend's descriptor. */
export const localState: StateProvider<typeof schema> = {
  type: 'local',
  schema: () => import('./section.js').then((m) => m.schema),
  lease: (s) => s.lease,
  async open(s, { dir, clock }) {
    const { LocalStateStore } = await import('./store.js');
    const folder = s.dir ?? '.deploy';
    return new LocalStateStore<RolloutState>(isAbsolute(folder) ? folder : resolve(dir, folder), { clock, validate: validateState });
  },
};
