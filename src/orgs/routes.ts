/**
 * The whole route spec for one router write: the weighted split, every pinned org, the orgs a
 * wave has moved, and where unpinned orgs go. Every write carries all of it, so a weight step
 * can never drop an org's pin and an org move can never reset the split.
 */
import type { Config } from '../config/schema.js';
import type { Intent, RolloutState } from '../engine/state.js';
import type { OrgRoutes, RouteSpec, UnpinnedRoute, Weights } from '../routers/router.js';
import type { StateStore } from '../state/store.js';
import { loadRegistry, pinMap } from './registry.js';

/**
 * Unpinned orgs under `unpinned: stable` follow stable until the candidate takes all traffic;
 * under `weighted` they follow the split, sticky per org.
 */
export function unpinnedRoute(mode: 'stable' | 'weighted' | undefined, weights: Weights, stable: string, candidate?: string): UnpinnedRoute {
  if (mode === 'weighted') return { mode: 'weighted' };
  const version = candidate !== undefined && (weights[candidate] ?? 0) >= 100 ? candidate : stable;
  return { mode: 'version', version };
}

/** The spec: explicit pins win over a wave's moves. */
export function routeSpec(weights: Weights, pins: OrgRoutes, waveOrgs: string[], mode: 'stable' | 'weighted' | undefined, stable: string, candidate?: string): RouteSpec {
  const orgs: OrgRoutes = {};
  for (const org of waveOrgs) orgs[org] = candidate!;
  Object.assign(orgs, pins);
  return { weights, orgs, unpinned: unpinnedRoute(mode, weights, stable, candidate) };
}

/** The route source the engine uses when the config has orgs: it reads the registry on every write. */
export function orgRouteSource(config: Config, store: StateStore<unknown>): (state: RolloutState, intent: Intent) => Promise<RouteSpec> {
  return async (state, intent) => {
    const registry = await loadRegistry(store);
    const wave = intent.to === 'holding' ? (state.plan.steps[intent.step]?.orgs ?? []) : [];
    return routeSpec(intent.weights, pinMap(registry), wave, config.orgs?.unpinned, state.stable, state.candidate);
  };
}
