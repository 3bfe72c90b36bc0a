/**
 * The `fleet` router and workload: one rollout over several targets (regions or clusters), each
 * with its own router and workload, as one Router and one Workload to the engine — so its
 * one-intent-per-write record covers the whole fleet. The targets are the top-level `targets:`
 * section; this section says how they move together. See router.ts, workload.ts and gates.ts.
 */
import type { RouterProvider, WorkloadProvider } from '../providers/provider.js';
import { planFleet, REACHABLE_GATE } from '../../strategies/fleet.js';
import { targetNames } from './config.js';
import type { schema, workloadSchema } from './section.js';

export type { FleetSection } from './section.js';

/** How long a target may not answer before the fleet rolls back the others, by default. */
export const DEFAULT_UNREACHABLE_MS = 60_000;
/** Waves: the hold at 100% in one target before the next begins, by default. */
export const DEFAULT_BAKE_MS = 10 * 60_000;

/** The fleet's router descriptor. */
export const fleetRouter: RouterProvider<typeof schema> = {
  type: 'fleet',
  schema: () => import('./section.js').then((m) => m.schema),
  validate(section, config, issue) {
    const names = targetNames(config);
    if (names.length === 0) {
      issue(['router'], 'a fleet drives the targets listed under targets: (at least two, each with its own router)');
      return;
    }
    section.order?.forEach((n, i) => {
      if (!names.includes(n)) issue(['router', 'order', i], `no target "${n}" under targets: (${names.join(', ')})`);
    });
    if (section.order && new Set(section.order).size !== section.order.length) issue(['router', 'order'], 'names a target twice');
    config.gates?.forEach((g, i) => {
      if (g.name === REACHABLE_GATE) issue(['gates', i, 'name'], `a fleet checks its targets' routers as the gate "${REACHABLE_GATE}": name this gate otherwise`);
    });
    if (section.strategy !== 'waves') return;
    // Waves put targets on different weights at once: anything that routes orgs by those weights
    // would put one org on different versions in different regions.
    if (config.strategy?.orgWaves) issue(['router', 'strategy'], 'org waves move orgs in every target at once: use strategy: lockstep with orgWaves');
    if (config.orgs?.unpinned === 'weighted') {
      issue(['router', 'strategy'], 'waves put targets on different weights, and orgs.unpinned: weighted routes orgs by weight: an org would see different versions in different regions; use lockstep, or orgs.unpinned: stable');
    }
  },
  plan(section, config, plan) {
    const names = targetNames(config);
    return planFleet(plan, {
      strategy: section.strategy ?? 'lockstep',
      order: section.order ?? names,
      bakeMs: section.bake ?? DEFAULT_BAKE_MS,
      writeTimeoutMs: section.unreachableTimeout ?? DEFAULT_UNREACHABLE_MS,
    });
  },
  async create(section, ctx) {
    const { createFleetRouter } = await import('./build.js');
    return createFleetRouter(section, ctx);
  },
  async gates(section, ctx, router) {
    const { createFleetGates } = await import('./build.js');
    return createFleetGates(section, ctx, router);
  },
  planNote(section, config) {
    const names = targetNames(config);
    const order = section.order ?? names;
    return section.strategy === 'waves' ? `waves over ${order.join(' → ')}` : `lockstep over ${names.join(', ')}`;
  },
};

/** The fleet's workload descriptor: every target's workload, driven together. */
export const fleetWorkload: WorkloadProvider<typeof workloadSchema> = {
  type: 'fleet',
  schema: () => import('./section.js').then((m) => m.workloadSchema),
  roles: true,
  validate(_section, config, issue) {
    if (config.router.type !== 'fleet') issue(['workload', 'type'], "the fleet workload drives the workloads of a fleet's targets: use router: { type: fleet }");
    else if (!Object.values(config.targets ?? {}).some((t) => t.workload)) issue(['workload'], 'no target names a workload: give each target its workload: section');
  },
  async create(_section, ctx) {
    const { createFleetWorkload } = await import('./build.js');
    return createFleetWorkload(ctx);
  },
};
