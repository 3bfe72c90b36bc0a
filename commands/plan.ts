/** `deploy plan`: the steps a rollout of this config would take, and what each step's gates need. */
import { chosenProviders } from '../src/providers/chosen.js';
import { openProject, type GlobalOptions, type Io } from '../src/cli/context.js';
import type { Config } from '../src/config/schema.js';
import { formatDuration } from '../src/config/units.js';
import { formatShares } from '../src/ui/plain.js';
import { numberedSteps, stepNumberOf } from '../src/engine/plan.js';
import type { StepMargin } from '../src/gates/runner.js';
import { metricsSources } from '../src/providers/registry.js';
import { planFor } from '../strategies/index.js';

const count = (n: number) => Math.round(n).toLocaleString('en-US');
const points = (x: number) => `${+(x * 100).toFixed(x >= 0.01 ? 2 : 3)}`;

/** Print the plan. */
export async function run(opts: GlobalOptions, io: Io): Promise<number> {
  const project = await openProject(opts, io.clock);
  const { config } = project;
  let plan = planFor(config, project.dir);
  let noData: string[] = [];
  let margins: StepMargin[] = [];
  let offline: string | undefined;
  if (config.gates?.length) {
    const { createProvider, checkGateQueries, measureTraffic, stepMargins, PrometheusUnreachable } = await import('../src/gates/runner.js');
    const provider = (await createProvider(config))!;
    const candidate = Object.keys(config.versions).find((v) => v !== config.stable) ?? config.stable;
    try {
      noData = await checkGateQueries(config, provider, config.stable, candidate);
      const traffic = await measureTraffic(config, provider, config.stable, io.clock());
      if (traffic) plan = { ...plan, traffic };
    } catch (e) {
      // The plan is still the plan without Prometheus; only its checks and its traffic wait for it.
      if (!(e instanceof PrometheusUnreachable)) throw e;
      offline = e.message;
    }
    margins = stepMargins(config, plan);
  }
  // Stated before any rollout: specs over this limit are refused when a step would write them.
  const routerLimit = chosenProviders(config).router.planNote?.(config.router, config);
  const short = margins.filter((m) => m.requestsExpected !== undefined && m.requestsExpected < m.requestsNeeded);
  const lines = plan.steps.map((s) => {
    const head = `  ${String(stepNumberOf(s.index)).padStart(2)}. ${s.orgs ? `${String(s.orgs.length).padStart(5)} orgs${s.weight === 100 ? ' and all traffic' : ''}` : s.targets ? formatShares(s.targets) : `${String(s.weight).padStart(5)}%`}  hold ${s.holdMs ? formatDuration(s.holdMs) : '-'}${s.gates.length ? `  gates ${s.gates.join(', ')}` : ''}${s.pause ? '  then pause for `deploy promote`' : ''}`;
    const notes = margins
      .filter((m) => m.step === stepNumberOf(s.index))
      .map((m) => `        ${m.gate}: rules out +${points(m.margin)} points${m.written ? ' (as written)' : ''}, ~${count(m.requestsNeeded)} candidate requests needed${m.requestsExpected !== undefined ? `, ~${count(m.requestsExpected)} expected by the hold's end` : ''}`);
    return [head, ...notes].join('\n');
  });
  const traffic = plan.traffic
    ? `traffic of ${config.stable} over the last ${formatDuration(plan.traffic.windowSeconds * 1000)}: ${+plan.traffic.requestsPerSecond.toFixed(1)} req/s, ${+(plan.traffic.errorRate * 100).toFixed(3)}% errors; margins derived from it`
    : margins.length
      ? `${offline ? 'no traffic read' : `no traffic of ${config.stable} in Prometheus yet`}: default margins, requests needed at a 0.5% baseline`
      : '';
  const warnings = [
    ...(config.gates?.length ? [] : ['warning: no gates: nothing will roll back by itself; add gates: to deploy.yaml (`deploy init` writes an example)']),
    ...short.map(
      (m) =>
        `warning: step ${m.step} cannot rule out +${points(m.margin)} points in its hold at today's traffic (~${count(m.requestsNeeded)} candidate requests needed, ~${count(m.requestsExpected!)} expected): it will hold past ${formatDuration(plan.steps[m.step - 1]!.holdMs)}, then ${plan.inconclusive.action} after ${formatDuration(plan.inconclusive.afterMs)} more`,
    ),
  ];
  io.out.result(
    { event: 'plan', service: config.service, strategy: plan.strategy, router: config.router.type, steps: numberedSteps(plan.steps), inconclusive: plan.inconclusive, gatesWithoutData: noData, ...(offline ? { gatesNotChecked: offline } : {}), margins, ...(plan.traffic ? { traffic: plan.traffic } : {}), warnings, ...(routerLimit ? { routerLimit } : {}) },
    `${config.service}: ${plan.strategy} through ${config.router.type}, ${plan.steps.length} steps\n${lines.join('\n')}` +
      (routerLimit ? `\n${routerLimit}` : '') +
      (config.gates?.length && !offline ? `\ngates checked against ${describeSource(config)}: every query accepted${noData.length ? `; no data yet for ${noData.join(', ')}` : ''}` : '') +
      (offline ? `\ngate queries not checked: ${offline}; \`deploy promote\` checks them before anything moves` : '') +
      (traffic ? `\n${traffic}` : '') +
      (warnings.length ? `\n${warnings.join('\n')}` : ''),
  );
  return 0;
}

/** How the plan names the config's metrics source: `Prometheus at http://…`. */
function describeSource(config: Config): string {
  const source = metricsSources.find((m) => (config as Record<string, unknown>)[m.section] !== undefined);
  return source ? source.describe((config as Record<string, unknown>)[source.section] as never) : 'no metrics source';
}
