/**
 * `deploy watch`: follow the rollout in the cutover console from any terminal — the driver may
 * be a `deploy promote` elsewhere, a CI job or the demo. Keys ask that driver to act, as
 * `deploy pause` and `deploy abort` do. Without a terminal (or with `--no-tui`) it is
 * `deploy status --watch`.
 */
import { openProject, type Io } from '../src/cli/context.js';
import { consoleWanted, type ConsoleOptions } from '../src/cli/tui.js';

/** Follow the rollout until `q` (the console) or until it stops (plain). */
export async function run(opts: ConsoleOptions, io: Io): Promise<number> {
  if (!consoleWanted(opts, io)) return (await import('./status.js')).run({ ...opts, watch: true }, io);
  const project = await openProject(opts, io.clock);
  const { watchWithConsole } = await import('../src/ui/console/run.js');
  return watchWithConsole(project, io, { color: io.out.color.level > 0 });
}
