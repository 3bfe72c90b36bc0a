/**
 * Whether a command opens the cutover console, and driving through it. The console needs a
 * person at a terminal: stdout and stdin TTYs, text output, no CI. Everything else — scripts, CI
 * logs, `--output json`, `--no-tui` — gets the plain renderers. ink and React are imported only
 * once the console is chosen, so other commands start without them.
 */
import type { EngineDeps } from '../engine/machine.js';
import type { RolloutState } from '../engine/state.js';
import type { GlobalOptions, Io, Project } from './context.js';
import { driveUnderLock } from './drive.js';

/** Options of the commands that can open the console. */
export interface ConsoleOptions extends GlobalOptions {
  /** False with `--no-tui`. */
  tui?: boolean;
}

/** CI as ink itself reads it: set, and not `0` or `false`. */
function inCi(env: NodeJS.ProcessEnv): boolean {
  return [env.CI, env.CONTINUOUS_INTEGRATION].some((v) => v !== undefined && v !== '0' && v !== 'false');
}

/** True when this run should open the console rather than print plain lines. */
export function consoleWanted(opts: ConsoleOptions, io: Pick<Io, 'stdout' | 'stdin' | 'env'>): boolean {
  return opts.tui !== false && opts.output === 'text' && Boolean(io.stdout.isTTY) && Boolean(io.stdin.isTTY) && !inCi(io.env);
}

/** Drive under the lock: in the console when wanted, else with the plain or JSON output. */
export async function driveInTerminal(
  project: Project,
  io: Io,
  opts: ConsoleOptions,
  firstMove: (state: RolloutState | undefined, deps: EngineDeps) => Promise<RolloutState>,
): Promise<number> {
  if (!consoleWanted(opts, io)) return driveUnderLock(project, io, firstMove);
  const { driveWithConsole } = await import('../ui/console/run.js');
  // The output's colour already weighs --no-color, NO_COLOR and the terminal.
  return driveWithConsole(project, io, firstMove, { color: io.out.color.level > 0 });
}
