/**
 * Building a fleet from deploy.yaml: each target's router, workload and gate runner from the
 * registry's provider for its type, given the config as that target sees it (config.ts). Loaded
 * only when a fleet is driven, so it may import the registry the descriptors cannot.
 */
import type { Config } from '../config/schema.js';
import type { GateRunner } from '../engine/machine.js';
import type { ProviderContext } from '../providers/provider.js';
import { chosenProviders } from '../providers/chosen.js';
import type { Router } from '../routers/router.js';
import type { Workload } from '../workloads/workload.js';
import { targetConfig, targetNames } from './config.js';
import { FleetGates } from './gates.js';
import { DEFAULT_UNREACHABLE_MS, type FleetSection } from './index.js';
import { FleetRouter } from './router.js';
import { FleetWorkload } from './workload.js';

/** The context one target's providers are built with: its config, its providers, its events named. */
function targetContext(ctx: ProviderContext, name: string): ProviderContext {
  const config = targetConfig(ctx.config as Config, name);
  const report = ctx.report;
  return {
    config,
    dir: ctx.dir,
    leaseMs: ctx.leaseMs,
    clock: ctx.clock,
    chosen: chosenProviders(config),
    ...(report ? { report: (e) => report({ ...e, provider: `${name}/${e.provider}` }) } : {}),
  };
}

/** The fleet's router: one router per target, built by its own provider. */
export async function createFleetRouter(section: FleetSection, ctx: ProviderContext): Promise<FleetRouter> {
  const targets = await Promise.all(
    targetNames(ctx.config).map(async (name) => {
      const tctx = targetContext(ctx, name);
      return { name, router: await tctx.chosen.router.create(tctx.config.router, tctx) };
    }),
  );
  return new FleetRouter(targets, { clock: ctx.clock, ...(ctx.only ? { only: ctx.only } : {}), ...(section.activationLead !== undefined ? { minActivationLeadMs: section.activationLead } : {}) });
}

/** The fleet's workload: the targets that name one. */
export async function createFleetWorkload(ctx: ProviderContext): Promise<Workload | undefined> {
  const targets = [];
  for (const name of targetNames(ctx.config)) {
    const tctx = targetContext(ctx, name);
    const section = tctx.config.workload;
    const workload = section ? await tctx.chosen.workload?.create(section, tctx) : undefined;
    if (workload) targets.push({ name, workload });
  }
  return targets.length ? new FleetWorkload(targets) : undefined;
}

/** The fleet's gates: each target's runner over its own metrics, and the look at each target's router. */
export async function createFleetGates(section: FleetSection, ctx: ProviderContext, router: Router): Promise<GateRunner> {
  if (!(router instanceof FleetRouter)) throw new Error('fleet gates need the fleet router');
  const config = ctx.config as Config;
  const { createGateRunner } = await import('../gates/runner.js');
  const targets = await Promise.all(
    targetNames(config).map(async (name) => ({ name, runner: config.gates?.length ? await createGateRunner(targetConfig(config, name)) : undefined })),
  );
  return new FleetGates(targets, router, section.unreachableTimeout ?? DEFAULT_UNREACHABLE_MS);
}
