/** `deploy plan`: the steps a rollout of this config would take. */
import { openProject, type GlobalOptions, type Io } from '../src/cli/context.js';
import { formatDuration } from '../src/config/units.js';
import { planCanary } from '../strategies/canary.js';

/** Print the plan. */
export async function run(opts: GlobalOptions, io: Io): Promise<number> {
  const { config } = openProject(opts, io.clock);
  const plan = planCanary(config.strategy?.canary);
  const lines = plan.steps.map(
    (s) => `  ${String(s.index + 1).padStart(2)}. ${String(s.weight).padStart(5)}%  hold ${s.holdMs ? formatDuration(s.holdMs) : '-'}${s.pause ? '  then pause for `deploy promote`' : ''}`,
  );
  io.out.result(
    { event: 'plan', service: config.service, strategy: plan.strategy, router: config.router.type, steps: plan.steps },
    `${config.service}: canary through ${config.router.type}, ${plan.steps.length} steps\n${lines.join('\n')}`,
  );
  return 0;
}
