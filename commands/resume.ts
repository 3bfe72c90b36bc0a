/**
 * `deploy resume`: carry on from the last recorded step — after a killed driver, a lost CI
 * runner, an operator's pause, or a failed write.
 */
import { openProject, type Io, type Project } from '../src/cli/context.js';
import { actUnderLock } from '../src/cli/drive.js';
import { driveInTerminal, type ConsoleOptions } from '../src/cli/tui.js';
import { exitCodeFor } from '../src/engine/driver.js';
import { retireWorkload, unpause } from '../src/engine/machine.js';
import { stepNumberOf } from '../src/engine/plan.js';
import { isTerminal } from '../src/engine/state.js';
import { ExitCode, OperationError, UsageError } from '../src/errors.js';
import { formatWeights } from '../src/ui/plain.js';

/** Resume driving. */
export async function run(opts: ConsoleOptions, io: Io): Promise<number> {
  const project = await openProject(opts, io.clock);
  const current = await project.store.load();
  if (current && isTerminal(current) && current.retiring) return finishRetiring(project, io);
  if (!current || isTerminal(current)) {
    throw new UsageError(
      current ? `the last rollout of ${current.service} is over (${current.phase.replace('_', ' ')}); nothing to resume` : 'no rollout has been started; nothing to resume',
      'start one with `deploy promote --to VERSION`',
    );
  }
  if (current.phase === 'paused' && current.paused?.reason === 'step') {
    io.out.note(`the rollout waits at step ${stepNumberOf(current.step)} for a manual go: run \`deploy promote --to ${current.candidate}\``);
    return ExitCode.Paused;
  }
  return driveInTerminal(project, io, opts, async (state, deps) => {
    if (!state || isTerminal(state)) throw new UsageError('the rollout ended meanwhile; nothing to resume');
    if (state.phase === 'paused') return unpause(state, 'resume', deps);
    if (state.phase === 'failed') return { ...state, phase: state.intent ? 'progressing' : 'holding' };
    return state;
  });
}

/**
 * The rollout is over but its driver died before the workload was tidied (canaries scaled down,
 * and after a rollback everything else back on stable): do that now, and answer as the rollout ended.
 */
async function finishRetiring(project: Project, io: Io): Promise<number> {
  const state = await actUnderLock(project, io, async (s, deps) => (s && isTerminal(s) ? retireWorkload(s, deps) : s));
  if (!state) throw new UsageError('no rollout has been started; nothing to resume');
  if (state.retiring) throw new OperationError(`the workload of ${state.service} could not be tidied after the rollout (${state.phase.replace('_', ' ')})`, 'fix what the error above names, then `deploy resume` again');
  io.out.result({ event: 'resume', phase: state.phase, weights: state.weights, retired: true }, `${state.service}: ${state.phase.replace('_', ' ')}, ${formatWeights(state.weights)}; its workload is tidied now`);
  return exitCodeFor(state);
}
