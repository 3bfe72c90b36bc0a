/**
 * The strategy a config names, turned into a plan. Pure apart from reading the org directory
 * file, which the org-waves plan needs.
 */
import { chosenProviders, readinessTimeoutOf } from '../src/providers/chosen.js';
import type { Config } from '../src/config/schema.js';
import type { Plan } from '../src/engine/plan.js';
import { loadOrgDirectory } from '../src/orgs/directory.js';
import { planBlueGreen } from './blue-green.js';
import { gateNames, planCanary } from './canary.js';
import { planOrgWaves } from './org-waves.js';

/** The plan of `config` (canary unless orgWaves or blueGreen is chosen); `dir` resolves orgs.file. */
export function planFor(config: Config, dir: string): Plan {
  const plan = shapedByRouter(config, gatedByWorkload(config, strategyPlan(config, dir)));
  // A workload's readiness deadline (Kubernetes: its progress deadline) bounds every wait for ready servers.
  const deadline = readinessTimeoutOf(config);
  return deadline !== undefined ? { ...plan, readinessTimeoutMs: deadline } : plan;
}

/** The steps' gates as the workload narrows them (a member's gate from its first candidate replica on). */
function gatedByWorkload(config: Config, plan: Plan): Plan {
  const workload = config.workload ? chosenProviders(config).workload : undefined;
  if (!config.workload || !workload?.gatesAt) return plan;
  const section = config.workload;
  return { ...plan, steps: plan.steps.map((step) => ({ ...step, gates: workload.gatesAt!(section, config, step) })) };
}

/** The plan as the router shapes it (a fleet: its targets in waves, and how long a write may fail). */
function shapedByRouter(config: Config, plan: Plan): Plan {
  const router = chosenProviders(config).router;
  return router.plan ? router.plan(config.router, config, plan) : plan;
}

function strategyPlan(config: Config, dir: string): Plan {
  if (config.strategy?.blueGreen) return planBlueGreen(config.strategy.blueGreen, gateNames(config));
  const waves = config.strategy?.orgWaves;
  if (waves) {
    const directory = loadOrgDirectory(config, dir);
    return planOrgWaves(waves, directory.ids, directory.groups, gateNames(config));
  }
  return planCanary(config.strategy?.canary, gateNames(config));
}

/** How often gates are checked during holds. */
export function checkIntervalOf(config: Config): number | undefined {
  return config.strategy?.orgWaves?.checkInterval ?? config.strategy?.canary?.checkInterval ?? config.strategy?.blueGreen?.checkInterval;
}
