/**
 * Asking a running driver to act: when another process holds the lock, `deploy pause`, `abort`
 * and `promote --full` leave a request and wait until the driver's recorded state shows it.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { RolloutState } from '../engine/state.js';
import { OperationError } from '../errors.js';
import { currentActor } from '../state/actor.js';
import { holderGone } from '../state/liveness.js';
import type { OperatorRequest } from '../state/store.js';
import type { Io, Project } from './context.js';

/** How long to wait for a driver to pick a request up. */
const ACK_TIMEOUT_MS = 15_000;

/**
 * Post a request and wait until `done(state)` holds; returns that state. With `takeOver`, the
 * wait also watches the driver: the moment none is left (its process ended on this host, its lock
 * released, its lease run out) `takeOver` does the job here instead — a driver that hangs is
 * waited for only as long as its lease lets it hold on.
 */
export async function requestOfDriver(
  project: Project,
  io: Io,
  request: Pick<OperatorRequest, 'kind' | 'reason' | 'full'>,
  done: (state: RolloutState) => boolean,
  takeOver?: () => Promise<RolloutState>,
): Promise<RolloutState> {
  const holder = await project.store.lockHolder();
  await project.store.postRequest({ id: randomUUID(), ...request, by: currentActor(), at: new Date(io.clock()).toISOString() });
  io.out.note(`asked the driver ${holder ? `of ${holder.owner} (pid ${holder.pid} on ${holder.host}) ` : ''}to ${request.kind}; waiting for it…`);
  let deadline = io.clock() + ACK_TIMEOUT_MS;
  let told = false;
  while (io.clock() < deadline) {
    const state = await project.store.load();
    if (state && done(state)) return state;
    if (takeOver) {
      const now = await project.store.lockHolder();
      // A driver that took over meanwhile finds the request in its turn: only nobody driving is ours to act on.
      if (!now || Date.parse(now.leaseExpiresAt) <= io.clock() || holderGone(now)) {
        io.out.note(now && holderGone(now) ? `the driver (pid ${now.pid}) is gone: doing it here` : 'no driver holds the rollout any more: doing it here');
        return takeOver();
      }
      // A driver that does not answer keeps the lock only until its lease runs out.
      deadline = Math.max(deadline, Date.parse(now.leaseExpiresAt) + 1_000);
      if (!told && io.clock() > deadline - ACK_TIMEOUT_MS + 3_000) {
        told = true;
        io.out.note(`the driver has not answered for 3 s; its lease runs out at ${now.leaseExpiresAt.slice(11, 19)}, then this takes over`);
      }
    }
    await delay(100);
  }
  throw new OperationError(
    `the driver did not act on the ${request.kind} request within ${ACK_TIMEOUT_MS / 1000}s`,
    'check `deploy status`; if that driver is gone, the request is carried out as soon as its lease expires and `deploy resume` runs',
  );
}
