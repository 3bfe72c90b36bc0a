/**
 * The routing half of the `nginx` router: the table text the admin server stores in its shared
 * dict and nginx restores from `routes.txt`. One line per fact, sorted, so equal specs give equal
 * text; the Lua side parses it with the same rules, so a table is refused before it is stored.
 */
import { ORG_PATTERN as ORG_ID_PATTERN } from '../../config/patterns.js';
import { OperationError, UsageError } from '../../errors.js';
import { checkVersionName, VERSION_PATTERN } from './config.js';
import type { LiveRoutes, RouteSpec, UnpinnedRoute } from '../router.js';

/** An org id: letters, digits and `._-`, so it can never inject config or table lines. */
/** Org ids as config allows them: one pattern for the whole project. */
export { ORG_ID_PATTERN };

/** Most orgs one table carries: the shared dict holds 16 MiB, and every worker parses the table. */
export const MAX_TABLE_ORGS = 100_000;

/**
 * Render a routing table: `generation N`, `fence N` when the writer holds a lock, `unpinned weighted` or `unpinned version V`, then
 * `weight VERSION PERCENT` and `org ORG VERSION` lines in sorted order, so equal specs give equal
 * text (an absent unpinned policy renders as `weighted`, which is what it means). Throws
 * UsageError on a bad version name, a bad org id or weights that do not sum to 100.
 */
export function renderRoutingTable(spec: RouteSpec, generation: number): string {
  if (!Number.isSafeInteger(generation) || generation < 0) throw new UsageError(`invalid generation ${generation}`);
  const weights = Object.entries(spec.weights).sort(([a], [b]) => (a < b ? -1 : 1));
  let total = 0;
  for (const [version, share] of weights) {
    checkVersionName(version);
    if (!Number.isFinite(share) || share < 0 || share > 100) {
      throw new UsageError(`weight of "${version}" must be between 0 and 100, got ${share}`);
    }
    total += share;
  }
  if (Math.abs(total - 100) > 1e-6) throw new UsageError(`weights must sum to 100, got ${total}`);
  const orgs = Object.entries(spec.orgs ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
  if (orgs.length > MAX_TABLE_ORGS) {
    throw new UsageError(`${orgs.length} pinned orgs exceed what the nginx router carries (${MAX_TABLE_ORGS})`, 'unpin orgs that follow stable anyway, or move fewer at once');
  }
  for (const [org, version] of orgs) {
    if (!ORG_ID_PATTERN.test(org)) {
      throw new UsageError(`invalid org id ${JSON.stringify(org)}: use letters, digits and . _ - (max 128)`);
    }
    checkVersionName(version);
  }
  if (spec.fence !== undefined && (!Number.isSafeInteger(spec.fence) || spec.fence < 1)) throw new UsageError(`invalid fencing token ${spec.fence}`);
  return [
    `generation ${generation}`,
    ...(spec.fence === undefined ? [] : [`fence ${spec.fence}`]),
    renderUnpinned(spec.unpinned ?? { mode: 'weighted' }),
    ...weights.map(([v, share]) => `weight ${v} ${String(share)}`),
    ...orgs.map(([org, v]) => `org ${org} ${v}`),
    '',
  ].join('\n');
}

function renderUnpinned(unpinned: UnpinnedRoute): string {
  if (unpinned.mode === 'weighted') return 'unpinned weighted';
  if (unpinned.mode !== 'version') {
    throw new UsageError(`unpinned mode must be "weighted" or "version", got ${JSON.stringify((unpinned as { mode: unknown }).mode)}`);
  }
  checkVersionName(unpinned.version);
  return `unpinned version ${unpinned.version}`;
}

/**
 * Parse a routing table text (as served by the admin server). `unpinned` is always set: a table
 * without the line (written before it existed) routes unpinned orgs by weight. Throws
 * OperationError if malformed.
 */
export function parseRoutingTable(text: string): LiveRoutes {
  const live: Required<Omit<LiveRoutes, 'roles' | 'fence' | 'drift'>> & Pick<LiveRoutes, 'fence'> = { generation: -1, weights: {}, orgs: {}, unpinned: { mode: 'weighted' } };
  let unpinnedSeen = false;
  text.split('\n').forEach((line, i) => {
    const words = line.trim().split(/\s+/).filter(Boolean);
    const bad = (why: string) => new OperationError(`routing table line ${i + 1}: ${why}: ${JSON.stringify(line)}`);
    const [kind, a = '', b = ''] = words;
    if (kind === undefined) return;
    if (kind === 'generation' && words.length === 2 && /^\d+$/.test(a)) live.generation = Number(a);
    else if (kind === 'fence' && words.length === 2 && /^\d+$/.test(a)) live.fence = Number(a);
    else if (kind === 'weight' && words.length === 3 && VERSION_PATTERN.test(a) && Number.isFinite(Number(b))) {
      live.weights[a] = Number(b);
    } else if (kind === 'org' && words.length === 3 && ORG_ID_PATTERN.test(a) && VERSION_PATTERN.test(b)) {
      live.orgs[a] = b;
    } else if (kind === 'unpinned' && ((words.length === 2 && a === 'weighted') || (words.length === 3 && a === 'version' && VERSION_PATTERN.test(b)))) {
      if (unpinnedSeen) throw bad('unpinned must appear once');
      unpinnedSeen = true;
      live.unpinned = a === 'weighted' ? { mode: 'weighted' } : { mode: 'version', version: b };
    } else throw bad('expected generation N, fence N, unpinned weighted, unpinned version VERSION, weight VERSION PERCENT or org ORG VERSION');
  });
  if (live.generation < 0) throw new OperationError('routing table has no generation line');
  return live;
}
