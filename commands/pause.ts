/** `deploy pause`: hold the rollout at its current step until `deploy resume`. */
import { openProject, type GlobalOptions, type Io } from '../src/cli/context.js';
import { actUnderLock } from '../src/cli/drive.js';
import { requestOfDriver } from '../src/cli/requests.js';
import { pauseByOperator } from '../src/engine/machine.js';
import { stepNumberOf } from '../src/engine/plan.js';
import { isTerminal, type RolloutState } from '../src/engine/state.js';
import { ExitCode, UsageError } from '../src/errors.js';

/** Pause the rollout in progress. */
export async function run(opts: GlobalOptions, io: Io): Promise<number> {
  const project = await openProject(opts, io.clock);
  const current = await project.store.load();
  if (!current || isTerminal(current)) throw new UsageError('no rollout is in progress; nothing to pause', '`deploy status` shows the state');
  if (current.phase === 'paused') {
    io.out.result({ event: 'pause', phase: current.phase, step: stepNumberOf(current.step) }, `already paused at step ${stepNumberOf(current.step)}`);
    return ExitCode.Done;
  }
  const holder = await project.store.lockHolder();
  let state: RolloutState;
  if (holder && Date.parse(holder.leaseExpiresAt) > io.clock()) {
    state = await requestOfDriver(project, io, { kind: 'pause' }, (s) => s.phase === 'paused' || isTerminal(s));
  } else {
    state = await actUnderLock(project, io, async (s, deps) => (s ? pauseByOperator(s, deps) : current));
  }
  if (state.phase !== 'paused') {
    throw new UsageError(`the rollout cannot be paused in phase ${state.phase}`, '`deploy status` shows the state');
  }
  io.out.result({ event: 'pause', phase: state.phase, step: stepNumberOf(state.step) }, `paused at step ${stepNumberOf(state.step)}; \`deploy resume\` carries on`);
  return ExitCode.Done;
}
