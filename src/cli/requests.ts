/**
 * Asking a running driver to act: when another process holds the lock, `deploy pause`, `abort`
 * and `promote --full` leave a request and wait until the driver's recorded state shows it.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { RolloutState } from '../engine/state.js';
import { OperationError } from '../errors.js';
import { currentActor } from '../state/actor.js';
import type { OperatorRequest } from '../state/store.js';
import type { Io, Project } from './context.js';

/** How long to wait for a driver to pick a request up. */
const ACK_TIMEOUT_MS = 15_000;

/** Post a request and wait until `done(state)` holds; returns that state. */
export async function requestOfDriver(
  project: Project,
  io: Io,
  request: Pick<OperatorRequest, 'kind' | 'reason' | 'full'>,
  done: (state: RolloutState) => boolean,
): Promise<RolloutState> {
  const holder = await project.store.lockHolder();
  await project.store.postRequest({ id: randomUUID(), ...request, by: currentActor(), at: new Date(io.clock()).toISOString() });
  io.out.note(`asked the driver ${holder ? `of ${holder.owner} (pid ${holder.pid} on ${holder.host}) ` : ''}to ${request.kind}; waiting for it…`);
  const deadline = io.clock() + ACK_TIMEOUT_MS;
  while (io.clock() < deadline) {
    const state = await project.store.load();
    if (state && done(state)) return state;
    await delay(100);
  }
  throw new OperationError(
    `the driver did not act on the ${request.kind} request within ${ACK_TIMEOUT_MS / 1000}s`,
    'check `deploy status`; if that driver is gone, the request is carried out as soon as its lease expires and `deploy resume` runs',
  );
}
