/** `deploy iam-policy`: the least-privilege IAM policy the configured router needs, as JSON. */
import { openProject, type GlobalOptions, type Io } from '../src/cli/context.js';
import { ExitCode, UsageError } from '../src/errors.js';
import { albIamPolicy } from '../src/routers/alb-policy.js';

/** Print the policy document (always JSON, for `aws iam create-policy --policy-document`). */
export async function run(opts: GlobalOptions, io: Io): Promise<number> {
  const { config, path } = await openProject(opts, io.clock);
  if (config.router.type !== 'alb') {
    throw new UsageError(`router ${config.router.type} in ${path} calls no AWS API, so it needs no IAM policy`, 'only router type alb does');
  }
  const policy = albIamPolicy(config.router, config);
  io.stdout.write(`${JSON.stringify(policy, null, io.out.format === 'json' ? 0 : 2)}\n`);
  return ExitCode.Done;
}
