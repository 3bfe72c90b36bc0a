/**
 * `deploy orgs list|move|pin|unpin`: organizations and the version each one uses. A move of any
 * number of orgs is one router write, all or nothing; it takes the driver lock (exit 5 while a
 * rollout is being driven).
 */
import { openProject, type GlobalOptions, type Io } from '../src/cli/context.js';
import { actUnderLock } from '../src/cli/drive.js';
import { isTerminal, servingVersion } from '../src/engine/state.js';
import { ExitCode, UsageError } from '../src/errors.js';
import { loadOrgDirectory, selectOrgs } from '../src/orgs/directory.js';
import { moveOrgs } from '../src/orgs/move.js';
import { loadRegistry } from '../src/orgs/registry.js';
import { unpinnedRoute } from '../src/orgs/routes.js';
import { currentActor } from '../src/state/actor.js';

/** Options of the orgs subcommands. */
export interface OrgsOptions extends GlobalOptions {
  to?: string;
  group?: string;
  all?: boolean;
  reason?: string;
}

async function open(opts: OrgsOptions, io: Io) {
  const project = await openProject(opts, io.clock);
  if (!project.config.orgs) throw new UsageError(`${project.path} has no orgs: section`, 'add orgs: with file, list or groups');
  return { project, directory: loadOrgDirectory(project.config, project.dir) };
}

/** `deploy orgs list`: every org, its version, since when and by whom. */
export async function list(opts: OrgsOptions, io: Io): Promise<number> {
  const { project, directory } = await open(opts, io);
  const registry = await loadRegistry(project.store);
  const state = await project.store.load();
  const active = state && !isTerminal(state) ? state : undefined;
  const stable = state ? (active ? state.stable : servingVersion(state)) : project.config.stable;
  const unpinned = unpinnedRoute(project.config.orgs?.unpinned, active?.weights ?? { [stable]: 100 }, stable, active?.candidate);
  const wave = new Set(active?.plan.steps[active.step]?.orgs ?? []);
  const ids = [...new Set([...directory.ids, ...Object.keys(registry.pins)])].sort();
  const groupsOf = (id: string) => Object.entries(directory.groups).filter(([, m]) => m.includes(id)).map(([g]) => g);
  const rows = ids.map((id) => {
    const pin = registry.pins[id];
    if (pin) return { org: id, version: pin.version, pinned: true, since: pin.since, by: pin.by, groups: groupsOf(id) };
    if (wave.has(id)) return { org: id, version: active!.candidate, pinned: false, wave: true, since: active!.holdStartedAt ?? null, by: active!.startedBy, groups: groupsOf(id) };
    return { org: id, version: unpinned.mode === 'version' ? unpinned.version : 'weighted', pinned: false, since: null, by: null, groups: groupsOf(id) };
  });
  if (io.out.format === 'json') {
    for (const r of rows) io.out.result({ event: 'org', ...r }, '');
    return ExitCode.Done;
  }
  const c = io.out.color;
  const lines = rows.map((r) => `${r.org.padEnd(24)} ${c.cyan(r.version.padEnd(10))} ${r.pinned ? `pinned since ${r.since} by ${r.by}` : 'wave' in r ? 'moved by the rollout in progress' : c.dim(`follows ${project.config.orgs?.unpinned === 'weighted' ? 'the weighted split' : 'stable'}`)}${r.groups.length ? c.dim(`  [${r.groups.join(', ')}]`) : ''}`);
  io.out.result({}, lines.join('\n') || 'no orgs');
  if (registry.intent) io.out.note(c.yellow(`a move recorded at ${registry.intent.at} by ${registry.intent.by} was not finished; the next orgs command finishes it`));
  return ExitCode.Done;
}

async function apply(opts: OrgsOptions, io: Io, ids: string[], version: string | undefined, verb: string): Promise<number> {
  const { project, directory } = await open(opts, io);
  const orgs = selectOrgs(directory, { ids, ...(opts.group !== undefined ? { group: opts.group } : {}), ...(opts.all ? { all: true } : {}) });
  if (version !== undefined && !(version in project.config.versions)) {
    throw new UsageError(`--to ${version}: unknown version of ${project.config.service} (known: ${Object.keys(project.config.versions).join(', ')})`);
  }
  const reason = opts.reason ?? `${verb} by ${currentActor().owner}`;
  const result = await actUnderLock(project, io, (_state, deps) => moveOrgs(project, deps, { orgs, version, reason }));
  const at = new Date(io.clock()).toISOString();
  io.out.result(
    { event: 'orgs', at, action: verb, to: version ?? null, moved: result.moved, unchanged: result.unchanged.length, generation: result.generation ?? null, ...(result.activatedAt ? { activatedAt: result.activatedAt } : {}) },
    result.moved.length
      ? `${verb === 'unpin' ? 'unpinned' : `moved to ${version}`}: ${result.moved.length} org${result.moved.length > 1 ? 's' : ''}${result.moved.length <= 10 ? ` (${result.moved.join(', ')})` : ''} in one write${result.generation !== undefined ? `, generation ${result.generation}` : ''}${result.unchanged.length ? `; ${result.unchanged.length} already there` : ''}`
      : `nothing to change: ${result.unchanged.length} org${result.unchanged.length === 1 ? ' is' : 's are'} already there`,
  );
  return ExitCode.Done;
}

/** `deploy orgs move ORG… | --group G | --all --to VERSION`. */
export async function move(opts: OrgsOptions, io: Io, args: string[]): Promise<number> {
  if (!opts.to) throw new UsageError('orgs move needs --to VERSION');
  const selectors = [args.length > 0 && 'org ids', opts.group !== undefined && '--group', opts.all && '--all'].filter(Boolean);
  if (selectors.length > 1) throw new UsageError(`orgs move takes one of org ids, --group G or --all; got ${selectors.join(' and ')}`, 'name the orgs one way');
  return apply(opts, io, args, opts.to, 'move');
}

/** `deploy orgs pin ORG… --to VERSION`: the same write as move, for named orgs. */
export async function pin(opts: OrgsOptions, io: Io, args: string[]): Promise<number> {
  if (!opts.to) throw new UsageError('orgs pin needs --to VERSION');
  if (opts.group || opts.all) throw new UsageError('orgs pin takes org ids; use orgs move for --group or --all');
  return apply(opts, io, args, opts.to, 'pin');
}

/** `deploy orgs unpin ORG…`: the orgs follow the default again. */
export async function unpin(opts: OrgsOptions, io: Io, args: string[]): Promise<number> {
  return apply(opts, io, args, undefined, 'unpin');
}
