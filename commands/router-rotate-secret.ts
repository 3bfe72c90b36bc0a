/** `deploy router rotate-secret`: a new secret for the router's admin endpoint, loaded at once. */
import { openProject, type GlobalOptions, type Io } from '../src/cli/context.js';
import { ExitCode, UsageError } from '../src/errors.js';
import { createRouter } from '../src/providers/chosen.js';

/** Rotate, and say so (never the secret itself). */
export async function run(opts: GlobalOptions, io: Io): Promise<number> {
  const project = await openProject(opts, io.clock);
  const router = await createRouter(project, undefined, io.clock);
  if (!router.rotateSecret) throw new UsageError(`router ${router.type} has no admin secret of Cutover's to rotate`, 'only the nginx router keeps one');
  await router.preflight();
  await router.rotateSecret();
  if (io.out.format === 'json') io.stdout.write(`${JSON.stringify({ event: 'secret-rotated', router: router.type, at: new Date(io.clock()).toISOString() })}\n`);
  else io.stdout.write(`${router.type}: the admin endpoint has a new secret; the old one is refused from now on\n`);
  return ExitCode.Done;
}
