/**
 * Moving orgs between versions: all named orgs change in one router write (one generation),
 * read back before it counts. If the write or its read-back fails, the previous routing is
 * written again and nothing is recorded as moved. Exported for the commands and the console.
 */
import { usesRoles } from '../providers/chosen.js';
import type { Project } from '../cli/context.js';
import { commitIntent, type EngineDeps } from '../engine/machine.js';
import { isTerminal, servingVersion, versionRoles, type RolloutState } from '../engine/state.js';
import { OperationError, UsageError } from '../errors.js';
import type { OrgRoutes, RouteSpec } from '../routers/router.js';
import { loadRegistry, pinMap, saveRegistry, type OrgRegistry } from './registry.js';
import { routeSpec } from './routes.js';

/** What a move asks: these orgs to `version` (`undefined` unpins them). */
export interface OrgMove {
  orgs: string[];
  version: string | undefined;
  reason: string;
}

/** The result of a move. */
export interface OrgMoveResult {
  moved: string[];
  unchanged: string[];
  generation?: number;
  /** A fleet that switched every target at one instant: that instant. */
  activatedAt?: string;
}

/** The spec to write for `pins`, given the rollout (if any) in progress. */
function specFor(project: Project, state: RolloutState | undefined, pins: OrgRoutes): RouteSpec {
  const { config } = project;
  if (!state || isTerminal(state)) {
    const stable = state ? servingVersion(state) : config.stable;
    const spec = routeSpec({ [stable]: 100 }, pins, [], config.orgs?.unpinned, stable);
    return usesRoles(config) ? { ...spec, roles: { [stable]: 'stable' } } : spec;
  }
  const wave = state.phase === 'holding' || state.phase === 'paused' ? (state.plan.steps[state.step]?.orgs ?? []) : [];
  const spec = routeSpec(state.weights, pins, wave, config.orgs?.unpinned, state.stable, state.candidate);
  // With a workload the backends are the stable and canary Services (see RouteSpec.roles).
  return usesRoles(config) ? { ...spec, roles: versionRoles(state) } : spec;
}

/**
 * Apply a move under the lock the caller holds. A rollout write left in flight by a crash (an
 * abort killed right after its router write, say) is finished first, so a move never writes the
 * routing it was leaving; so is a move left half-done (its intent recorded).
 */
export async function moveOrgs(project: Project, deps: EngineDeps, move: OrgMove): Promise<OrgMoveResult> {
  const { router, actor } = deps;
  const now = () => new Date(deps.clock()).toISOString();
  let state = await project.store.load();
  if (state?.intent) state = await commitIntent(state, deps);
  let registry = await loadRegistry(project.store);
  if (registry.intent) registry = await commit(project, deps, state, registry, registry.intent.pins, 'finished an interrupted move', now(), actor.owner);

  const before = pinMap(registry);
  const after: OrgRoutes = { ...before };
  for (const org of move.orgs) {
    if (move.version === undefined) delete after[org];
    else after[org] = move.version;
  }
  const moved = move.orgs.filter((o) => before[o] !== after[o]);
  if (moved.length === 0) return { moved: [], unchanged: move.orgs };
  // The router refuses what it could never carry before anything is recorded (exit 2).
  router.check?.(specFor(project, state, after));
  registry = await commit(project, deps, state, registry, after, move.reason, now(), actor.owner, moved, move.version);
  const pin = registry.pins[moved[0]!];
  return { moved, unchanged: move.orgs.filter((o) => !moved.includes(o)), ...(pin?.generation !== undefined ? { generation: pin.generation } : {}), ...(pin?.activatedAt ? { activatedAt: pin.activatedAt } : {}) };
}

/** Record the intent, write, verify, commit — or put the previous routing back and throw. */
async function commit(
  project: Project,
  deps: Pick<EngineDeps, 'router' | 'fence'>,
  state: RolloutState | undefined,
  registry: OrgRegistry,
  pins: OrgRoutes,
  reason: string,
  at: string,
  by: string,
  moved: string[] = Object.keys(pins),
  version?: string,
): Promise<OrgRegistry> {
  const { router } = deps;
  const previous = specFor(project, state, pinMap(registry));
  await saveRegistry(project.store, { ...registry, intent: { pins, reason, at, by } });
  let generation: number | undefined;
  let activatedAt: string | undefined;
  let fence: number | undefined;
  try {
    fence = await deps.fence?.();
    const applied = await router.apply({ ...specFor(project, state, pins), ...(fence === undefined ? {} : { fence }) });
    generation = applied.generation;
    if (applied.activatedAt !== undefined) activatedAt = new Date(applied.activatedAt).toISOString();
  } catch (e) {
    // A router refuses a layout past its limits before writing (exit 2), which is not a failed move.
    if (e instanceof UsageError) {
      await saveRegistry(project.store, registry);
      throw e;
    }
    const reverted = await router.apply({ ...previous, ...(fence === undefined ? {} : { fence }) }).then(
      () => true,
      () => false,
    );
    if (reverted) {
      await saveRegistry(project.store, registry);
      throw new OperationError(`org move failed, nothing moved: ${(e as Error).message}`, 'the previous routing was written again; `deploy orgs list` shows the pins');
    }
    // Neither the move nor its undoing is known to be live: the intent stays recorded (the next
    // orgs command finishes the move), and what is live is read, never assumed.
    const live = await router.read().catch(() => undefined);
    const onNew = live ? moved.filter((org) => (live.orgs ?? {})[org] === pins[org]).length : undefined;
    throw new OperationError(
      `org move failed, and so did writing the previous routing back: ${onNew === undefined ? 'what is live could not be read' : `${onNew} of ${moved.length} orgs are live on the new routing`} (${(e as Error).message})`,
      'the move stays recorded: the next `deploy orgs` command finishes it once the router answers',
    );
  }
  const next: OrgRegistry = { schema: 1, pins: {} };
  for (const [org, v] of Object.entries(pins)) {
    const old = registry.pins[org];
    next.pins[org] = old && old.version === v ? old : { version: v, since: at, by, ...(generation !== undefined ? { generation } : {}), ...(activatedAt ? { activatedAt } : {}) };
  }
  await project.store.audit.append({
    actor: by,
    action: 'orgs.moved',
    ...(state ? { rolloutId: state.rolloutId } : {}),
    detail: { orgs: moved, to: version ?? null, generation, ...(activatedAt ? { activatedAt } : {}), reason, pinned: Object.keys(pins).length },
  });
  await saveRegistry(project.store, next);
  return next;
}
