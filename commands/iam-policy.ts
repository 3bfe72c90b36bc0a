/** `deploy iam-policy`: the least-privilege IAM policy the configured providers need, as JSON. */
import type { PolicyDocument, PolicyStatement } from '../src/aws/iam.js';
import { openProject, type GlobalOptions, type Io } from '../src/cli/context.js';
import { ExitCode, UsageError } from '../src/errors.js';
import { chosenProviders } from '../src/providers/chosen.js';
import { metricsSources } from '../src/providers/registry.js';

/** Print the policy document (always JSON, for `aws iam create-policy --policy-document`). */
export async function run(opts: GlobalOptions, io: Io): Promise<number> {
  const { config, path } = await openProject(opts, io.clock);
  const chosen = chosenProviders(config);
  const statements: PolicyStatement[] = [
    ...(chosen.router.iam?.(config.router, config) ?? []),
    ...(config.workload ? (chosen.workload?.iam?.(config.workload, config) ?? []) : []),
    ...(config.state ? (chosen.state.iam?.(config.state, config) ?? []) : []),
    ...metricsSources.flatMap((m) => {
      const section = (config as Record<string, unknown>)[m.section];
      return section === undefined ? [] : (m.iam?.(section as never, config) ?? []);
    }),
  ];
  if (statements.length === 0) {
    throw new UsageError(`${path} uses no provider that calls an AWS API (router ${config.router.type}), so it needs no IAM policy`, 'the AWS providers do: router alb, workload ecs, state s3, metrics cloudwatch');
  }
  const policy: PolicyDocument = { Version: '2012-10-17', Statement: statements };
  io.stdout.write(`${JSON.stringify(policy, null, io.out.format === 'json' ? 0 : 2)}\n`);
  return ExitCode.Done;
}
