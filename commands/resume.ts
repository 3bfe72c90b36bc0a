/**
 * `deploy resume`: carry on from the last recorded step — after a killed driver, a lost CI
 * runner, an operator's pause, or a failed write.
 */
import { openProject, type Io } from '../src/cli/context.js';
import { driveInTerminal, type ConsoleOptions } from '../src/cli/tui.js';
import { unpause } from '../src/engine/machine.js';
import { isTerminal } from '../src/engine/state.js';
import { ExitCode, UsageError } from '../src/errors.js';

/** Resume driving. */
export async function run(opts: ConsoleOptions, io: Io): Promise<number> {
  const project = await openProject(opts, io.clock);
  const current = await project.store.load();
  if (!current || isTerminal(current)) {
    throw new UsageError(
      current ? `the last rollout of ${current.service} is over (${current.phase.replace('_', ' ')}); nothing to resume` : 'no rollout has been started; nothing to resume',
      'start one with `deploy promote --to VERSION`',
    );
  }
  if (current.phase === 'paused' && current.paused?.reason === 'step') {
    io.out.note(`the rollout waits at step ${current.step + 1} for a manual go: run \`deploy promote --to ${current.candidate}\``);
    return ExitCode.Paused;
  }
  return driveInTerminal(project, io, opts, async (state, deps) => {
    if (!state || isTerminal(state)) throw new UsageError('the rollout ended meanwhile; nothing to resume');
    if (state.phase === 'paused') return unpause(state, 'resume', deps);
    if (state.phase === 'failed') return { ...state, phase: state.intent ? 'progressing' : 'holding' };
    return state;
  });
}
