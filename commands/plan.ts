/** `deploy plan`: the steps a rollout of this config would take. */
import { openProject, type GlobalOptions, type Io } from '../src/cli/context.js';
import { formatDuration } from '../src/config/units.js';
import { planFor } from '../strategies/index.js';

/** Print the plan. */
export async function run(opts: GlobalOptions, io: Io): Promise<number> {
  const project = await openProject(opts, io.clock);
  const { config } = project;
  const plan = planFor(config, project.dir);
  let noData: string[] = [];
  if (config.gates?.length) {
    const { createProvider, checkGateQueries } = await import('../src/gates/runner.js');
    const candidate = Object.keys(config.versions).find((v) => v !== config.stable) ?? config.stable;
    noData = await checkGateQueries(config, (await createProvider(config))!, config.stable, candidate);
  }
  // Stated before any rollout: specs over this limit are refused when a step would write them.
  const routerLimit = config.router.type === 'ingress-nginx' && config.orgs ? (await import('../src/routers/ingress-nginx-routes.js')).ORG_LIMIT : undefined;
  const lines = plan.steps.map(
    (s) =>
      `  ${String(s.index + 1).padStart(2)}. ${s.orgs ? `${String(s.orgs.length).padStart(5)} orgs${s.weight === 100 ? ' and all traffic' : ''}` : `${String(s.weight).padStart(5)}%`}  hold ${s.holdMs ? formatDuration(s.holdMs) : '-'}${s.gates.length ? `  gates ${s.gates.join(', ')}` : ''}${s.pause ? '  then pause for `deploy promote`' : ''}`,
  );
  io.out.result(
    { event: 'plan', service: config.service, strategy: plan.strategy, router: config.router.type, steps: plan.steps, inconclusive: plan.inconclusive, gatesWithoutData: noData, ...(routerLimit ? { routerLimit } : {}) },
    `${config.service}: ${plan.strategy} through ${config.router.type}, ${plan.steps.length} steps\n${lines.join('\n')}` +
      (routerLimit ? `\n${routerLimit}` : '') +
      (config.gates?.length ? `\ngates checked against ${config.prometheus?.url}: every query accepted${noData.length ? `; no data yet for ${noData.join(', ')}` : ''}` : ''),
  );
  return 0;
}
