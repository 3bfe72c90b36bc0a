/**
 * `deploy abort`: all traffic back to stable in one verified router write. When a driver is
 * running it is asked to do it (it holds the lock); otherwise this process does it.
 */
import { openProject, type GlobalOptions, type Io } from '../src/cli/context.js';
import { actUnderLock } from '../src/cli/drive.js';
import { requestOfDriver } from '../src/cli/requests.js';
import { rollback } from '../src/engine/machine.js';
import { isTerminal, type RolloutState } from '../src/engine/state.js';
import { ExitCode, UsageError } from '../src/errors.js';
import { currentActor } from '../src/state/actor.js';
import { holderGone } from '../src/state/liveness.js';
import { formatWeights } from '../src/ui/plain.js';

/** Options of abort. */
export interface AbortOptions extends GlobalOptions {
  reason?: string;
}

/** Abort the rollout in progress. */
export async function run(opts: AbortOptions, io: Io): Promise<number> {
  const project = await openProject(opts, io.clock);
  const current = await project.store.load();
  if (!current || isTerminal(current)) {
    throw new UsageError(current ? `the last rollout of ${current.service} is already over (${current.phase.replace('_', ' ')})` : 'no rollout has been started', 'nothing to abort; `deploy status` shows the state');
  }
  const reason = opts.reason ?? `aborted by ${currentActor().owner}`;
  const holder = await project.store.lockHolder();
  const here = () =>
    actUnderLock(project, io, async (s, deps) => {
      if (!s || isTerminal(s)) return s ?? current;
      return rollback(s, 'abort', reason, deps);
    });
  // A live driver is asked (it holds the lock); a dead one is not waited for.
  const state: RolloutState = holder && Date.parse(holder.leaseExpiresAt) > io.clock() && !holderGone(holder)
    ? await requestOfDriver(project, io, { kind: 'abort', reason }, isTerminal, here)
    : await here();
  io.out.result(
    { event: 'abort', phase: state.phase, weights: state.weights, reason: state.outcome?.reason ?? reason },
    `${state.service}: ${state.phase.replace('_', ' ')}, ${formatWeights(state.weights)}`,
  );
  return ExitCode.Done;
}
