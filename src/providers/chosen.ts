/**
 * The providers a deploy.yaml names, looked up in the registry, and the one place they are built
 * from: commands ask here for their router, workload and state store, never for a type by name.
 */
import type { Config } from '../config/schema.js';
import type { GateRunner } from '../engine/machine.js';
import type { RolloutState } from '../engine/state.js';
import type { Router } from '../routers/router.js';
import { DEFAULT_LEASE_MS, type StateStore } from '../state/store.js';
import type { Workload } from '../workloads/workload.js';
import type { Chosen, Platform, ProviderBase, ProviderContext, ProviderEvent } from './provider.js';
import { metricsSources, routers, states, workloads } from './registry.js';

/** The sections a config has, by kind (only `type` is needed to look a provider up). */
type Sections = { router: { type: string }; workload?: { type: string } | undefined; state?: { type: string } | undefined };

function find<P extends ProviderBase>(list: readonly P[], type: string, kind: string): P {
  const found = list.find((p) => p.type === type);
  // The schema admits only registered types, so a miss is a bug, not bad input.
  if (!found) throw new Error(`no ${kind} provider of type ${type}`);
  return found;
}

/** The router, workload (undefined without a section) and state backend (local by default) of `config`. */
export function chosenProviders(config: Sections): Chosen {
  return {
    router: find(routers, config.router.type, 'router'),
    workload: config.workload ? find(workloads, config.workload.type, 'workload') : undefined,
    state: config.state ? find(states, config.state.type, 'state') : states[0],
  };
}

/** The connections the config's providers (and its metrics source) use. */
export function platformsOf(config: Config): Set<Platform> {
  const chosen = chosenProviders(config);
  const sources = metricsSources.filter((m) => (config as Record<string, unknown>)[m.section] !== undefined);
  return new Set([chosen.router, chosen.workload, chosen.state, ...sources].flatMap((p) => p?.platforms ?? []));
}

/** The providers that use `platform`, as `router type alb`, for messages about its flags. */
export function providersOn(platform: Platform): string[] {
  const kinds = [['router', routers], ['workload', workloads], ['state', states]] as const;
  const named = kinds.flatMap(([kind, list]) => (list as readonly ProviderBase[]).filter((p) => p.platforms?.includes(platform)).map((p) => `${kind} type ${p.type}`));
  return [...named, ...metricsSources.filter((m) => m.platforms?.includes(platform)).map((m) => `${m.section}:`)];
}

/** The driver lease the state section sets, else the default. */
export function leaseOf(config: Config): number {
  const chosen = chosenProviders(config);
  return (config.state ? chosen.state.lease?.(config.state) : undefined) ?? DEFAULT_LEASE_MS;
}

/** What providers are built from: a loaded config and where it lives. */
export interface Opened {
  config: Config;
  dir: string;
  /** A fleet: the targets the command acts on (`--target`), when not all. */
  only?: string[];
}

function context(project: Opened, clock: () => number, report?: (event: ProviderEvent) => void): ProviderContext {
  return { config: project.config, dir: project.dir, leaseMs: leaseOf(project.config), clock, chosen: chosenProviders(project.config), ...(report ? { report } : {}), ...(project.only ? { only: project.only } : {}) };
}

/** The config's router. Its module (and SDK) loads only now. */
export function createRouter(project: Opened, report?: (event: ProviderEvent) => void, clock: () => number = Date.now): Promise<Router> {
  const ctx = context(project, clock, report);
  return ctx.chosen.router.create(project.config.router, ctx);
}

/**
 * The gates of a rollout through `router`: the router's own when it judges them per target (a
 * fleet), else the config's gates over its metrics; undefined when there are none.
 */
export async function createGates(project: Opened, router: Router, clock: () => number = Date.now): Promise<GateRunner | undefined> {
  const ctx = context(project, clock);
  if (ctx.chosen.router.gates) return ctx.chosen.router.gates(project.config.router, ctx, router);
  return project.config.gates?.length ? (await import('../gates/runner.js')).createGateRunner(project.config) : undefined;
}

/** The config's workload, or undefined when its versions run without one. */
export async function createWorkload(project: Opened, clock: () => number = Date.now, report?: (event: ProviderEvent) => void): Promise<Workload | undefined> {
  const ctx = context(project, clock, report);
  return project.config.workload ? ctx.chosen.workload?.create(project.config.workload, ctx) : undefined;
}

/** The config's state store (nothing is written). */
export function openStateStore(project: Opened, clock: () => number): Promise<StateStore<RolloutState>> {
  const chosen = chosenProviders(project.config);
  return chosen.state.open(project.config.state ?? { type: chosen.state.type }, { config: project.config, dir: project.dir, clock });
}

/** Whether route specs carry the version → role map (the workload runs versions behind role-named backends). */
export function usesRoles(config: Config): boolean {
  return chosenProviders(config).workload?.roles === true;
}

/** The longest wait for the candidate's servers, when the workload section sets one. */
export function readinessTimeoutOf(config: Config): number | undefined {
  const workload = chosenProviders(config).workload;
  return config.workload ? workload?.readinessTimeout?.(config.workload) : undefined;
}
