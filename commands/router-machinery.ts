/** `deploy router status` and `deploy router stop`: the router's own machinery, where Cutover runs it (nginx). */
import { confirm } from '../src/cli/confirm.js';
import { openProject, type GlobalOptions, type Io } from '../src/cli/context.js';
import { ExitCode, UsageError } from '../src/errors.js';
import { createRouter } from '../src/providers/chosen.js';

/** Options of router stop. */
export interface StopOptions extends GlobalOptions {
  yes?: boolean;
}

async function routerOf(opts: GlobalOptions, io: Io) {
  const project = await openProject(opts, io.clock);
  const router = await createRouter(project, undefined, io.clock);
  if (!router.machinery || !router.stopMachinery) {
    throw new UsageError(`router ${router.type} runs nothing of Cutover's own: its data plane is managed elsewhere`, 'only the nginx router starts and manages an nginx');
  }
  return { project, router: router as typeof router & Required<Pick<typeof router, 'machinery' | 'stopMachinery'>> };
}

/** Print whether it runs and what it serves. */
export async function status(opts: GlobalOptions, io: Io): Promise<number> {
  const { router } = await routerOf(opts, io);
  const { running, facts } = await router.machinery();
  const text = [`${router.type}: ${running ? 'running' : 'not running (the next deploy starts it)'}`, ...Object.entries(facts).map(([k, v]) => `  ${k.padEnd(8)} ${v}`)].join('\n');
  io.out.result({ event: 'router', type: router.type, running, ...facts }, `${text}\n`);
  return ExitCode.Done;
}

/** Stop it, after asking when a rollout is under way. */
export async function stop(opts: StopOptions, io: Io): Promise<number> {
  const { project, router } = await routerOf(opts, io);
  const state = await project.store.load();
  const active = state && !['promoted', 'rolled_back', 'aborted'].includes(state.phase);
  const question = `stop ${router.type}? every request through it fails until the next deploy starts it${active ? ` — and rollout ${state!.rolloutId} is ${state!.phase}` : ''}`;
  if (!(await confirm(question, opts.yes, io))) {
    io.out.result({ event: 'router', type: router.type, stopped: false }, 'nothing stopped\n');
    return ExitCode.BadInput;
  }
  await router.stopMachinery();
  io.out.result({ event: 'router', type: router.type, stopped: true }, `${router.type} stopped; \`deploy promote\`, \`resume\` or \`abort\` starts it again\n`);
  return ExitCode.Done;
}
