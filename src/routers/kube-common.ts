/**
 * What the two Kubernetes routers (`gateway-api`, `ingress-nginx`) share. Both route to two
 * Services — the stable one and the canary one — so a spec keyed by version is first turned into
 * routes keyed by *role* (`roleRoutes`), and what is read back is turned into versions again
 * through the roles annotation each router writes in the same object write as the routes.
 *
 * Both also write the same way: GET, compute, compare, and one PUT carrying the resourceVersion
 * just read; a 409 means someone wrote in between, so the object is read again and the write is
 * recomputed on it (`retryOnConflict` in src/kube/access.ts). A hash of what Cutover last wrote, kept in an annotation,
 * tells a foreign edit of the managed part from an unrelated one.
 */
import { createHash } from 'node:crypto';
import { LockedError, UsageError } from '../errors.js';
import { canonicalJson } from '../state/chain.js';
import type { LiveRoutes, RouteSpec, VersionRoles, Weights } from './router.js';

/** A backend role: the stable Service or the canary Service. */
export type Role = 'stable' | 'canary';

/** Both roles, stable first (the order backends are written in). */
export const ROLES: readonly Role[] = ['stable', 'canary'];

/** Annotations Cutover keeps on the objects it writes. */
export const ANNOTATIONS = {
  /** Role → version it served at the last write, e.g. `{"stable":"v1","canary":"v2"}`. */
  roles: 'cutover.dev/roles',
  /** Hash of the managed part as Cutover last wrote it. */
  hash: 'cutover.dev/managed-hash',
  /** The last written routes by role, to say what a foreign edit changed. */
  lastWritten: 'cutover.dev/last-written',
  /** The fencing token of the driver that last wrote: a write under an older one is refused. */
  fence: 'cutover.dev/fence',
} as const;

/** The routing of a spec in terms of the two Services. */
export interface RoleRoutes {
  /** Percent per role; both present, summing to 100. */
  weights: Record<Role, number>;
  /** Org → role of the version it is pinned to. */
  orgs: Record<string, Role>;
  /**
   * Role that takes every request carrying an org id that is not pinned; absent when unpinned
   * orgs follow the weighted split — or when the named role already takes 100%, where a rule of
   * its own would change nothing.
   */
  unpinned?: Role;
}

/** Role → version, as kept in the roles annotation. */
export type RoleVersions = Partial<Record<Role, string>>;

/** Role → version from a spec's version → role map (versions served by the spec win a tie). */
export function roleVersions(roles: VersionRoles, served: Iterable<string> = []): RoleVersions {
  const out: RoleVersions = {};
  for (const v of served) if (roles[v] && !out[roles[v]]) out[roles[v]] = v;
  for (const [v, role] of Object.entries(roles)) out[role] ??= v;
  return out;
}

/** Versions a spec sends traffic to: weights above 0, pins, and the unpinned policy's version. */
export function servedVersions(spec: RouteSpec): string[] {
  const out = new Set(Object.entries(spec.weights).filter(([, w]) => w > 0).map(([v]) => v));
  for (const v of Object.values(spec.orgs ?? {})) out.add(v);
  if (spec.unpinned?.mode === 'version') out.add(spec.unpinned.version);
  return [...out];
}

/**
 * The spec by role. `what` names the router in messages.
 * @throws UsageError for a served version without a role, or two served versions on one role.
 */
export function roleRoutes(spec: RouteSpec, roles: VersionRoles, what: string): RoleRoutes {
  const served = servedVersions(spec);
  const byRole = new Map<Role, string>();
  for (const v of served) {
    const role = roles[v];
    if (!role) {
      const known = Object.entries(roles).map(([ver, r]) => `${ver}: ${r}`).join(', ') || 'none';
      throw new UsageError(`${what} routes to the stable and the canary Service, and version ${v} runs in neither (roles: ${known})`, `roll out ${v} first, or move its orgs and weight to a version that runs`);
    }
    const other = byRole.get(role);
    if (other !== undefined) throw new UsageError(`${what} cannot send traffic to both ${other} and ${v}: both would be served by the ${role} Service`);
    byRole.set(role, v);
  }
  const weights: Record<Role, number> = { stable: 0, canary: 0 };
  for (const [v, w] of Object.entries(spec.weights)) if (w > 0) weights[roles[v]!] += w;
  const total = weights.stable + weights.canary;
  if (Math.abs(total - 100) > 1e-6) throw new UsageError(`${what}: the weights of a split must sum to 100 (got ${total})`);
  const orgs: Record<string, Role> = {};
  for (const [org, v] of Object.entries(spec.orgs ?? {})) orgs[org] = roles[v]!;
  const out: RoleRoutes = { weights, orgs };
  if (spec.unpinned?.mode === 'version') {
    const role = roles[spec.unpinned.version]!;
    if (Math.abs(weights[role] - 100) > 1e-6) out.unpinned = role;
  }
  return out;
}

/** Routes by role back into versions; a role with no known version is keyed by its Service's name. */
export function versionRoutes(routes: RoleRoutes, versions: RoleVersions, services: Record<Role, string>): LiveRoutes {
  const key = (role: Role) => versions[role] ?? services[role];
  const weights: Weights = {};
  for (const role of ROLES) {
    if (routes.weights[role] > 0 || versions[role] !== undefined) weights[key(role)] = (weights[key(role)] ?? 0) + routes.weights[role];
  }
  const orgs = Object.fromEntries(Object.entries(routes.orgs).map(([org, role]) => [org, key(role)]));
  const roles: VersionRoles = {};
  for (const role of ROLES) if (versions[role] !== undefined) roles[versions[role]] = role;
  return { weights, orgs, unpinned: routes.unpinned ? { mode: 'version', version: key(routes.unpinned) } : { mode: 'weighted' }, roles };
}

/**
 * The smallest power of ten (1 … 10,000) that makes every percent a whole number: 95/5 is
 * written as 95 and 5, 99.5/0.5 as 995 and 5. Undefined when a share is finer than 0.0001%.
 */
export function percentScale(percents: number[]): number | undefined {
  for (const scale of [1, 10, 100, 1000, 10_000]) {
    if (percents.every((p) => Math.abs(p * scale - Math.round(p * scale)) < 1e-6)) return scale;
  }
  return undefined;
}

/** A share of a whole as percent, to six decimals (what integer weights read back as). */
export function sharePercent(part: number, total: number): number {
  return total > 0 ? +((part / total) * 100).toFixed(6) : 0;
}

/** Short content hash of a value's canonical JSON. */
export function contentHash(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex').slice(0, 16);
}

/** Two role routings are equal when weights, pins and the unpinned role are. */
export function sameRoleRoutes(a: RoleRoutes, b: RoleRoutes): boolean {
  return differences(a, b, '').length === 0;
}

const formatWeights = (w: Record<Role, number>) => `{stable: ${w.stable}, canary: ${w.canary}}`;

/**
 * What differs between `live` and `reference`, each item ending in `where <label> …`, e.g.
 * `weights {stable: 50, canary: 50} where Cutover last wrote {stable: 95, canary: 5}`.
 */
export function differences(live: RoleRoutes, reference: RoleRoutes, label: string): string[] {
  const out: string[] = [];
  if (ROLES.some((r) => Math.abs(live.weights[r] - reference.weights[r]) > 1e-6)) out.push(`weights ${formatWeights(live.weights)} where ${label} ${formatWeights(reference.weights)}`);
  const orgs = [...new Set([...Object.keys(live.orgs), ...Object.keys(reference.orgs)])].filter((o) => live.orgs[o] !== reference.orgs[o]).sort();
  if (orgs.length > 0) {
    const side = (m: Record<string, Role>) => `{${orgs.slice(0, 5).map((o) => `${o}: ${m[o] ?? 'by weight'}`).join(', ')}${orgs.length > 5 ? `, … ${orgs.length - 5} more` : ''}}`;
    out.push(`orgs ${side(live.orgs)} where ${label} ${side(reference.orgs)}`);
  }
  if (live.unpinned !== reference.unpinned) out.push(`unpinned orgs ${live.unpinned ?? 'by weight'} where ${label} ${reference.unpinned ?? 'by weight'}`);
  return out;
}

/**
 * The drift report of an object whose managed part no longer hashes to what Cutover last wrote,
 * or undefined when it does (or Cutover never wrote it). `live` is the managed part decoded;
 * `extra` names changes the decoding cannot show (a rule of another shape).
 */
export function driftOf(object: string, annotations: Record<string, string> | undefined, managedHash: string, live: RoleRoutes, extra: string[] = []): string | undefined {
  const written = annotations?.[ANNOTATIONS.hash];
  if (written === undefined || written === managedHash) return undefined;
  let last: RoleRoutes | undefined;
  try {
    last = JSON.parse(annotations?.[ANNOTATIONS.lastWritten] ?? '') as RoleRoutes;
  } catch {
    // unreadable: the hash alone says something changed
  }
  const diff = [...(last?.weights ? differences(live, { ...last, orgs: last.orgs ?? {} }, 'Cutover last wrote') : []), ...extra];
  return `${object} was edited outside Cutover: ${diff.length > 0 ? diff.join('; ') : 'its managed fields changed in ways that do not alter the split (Cutover rewrote them)'}`;
}

/** The annotations recording a write: the roles served, the managed hash and the routes. */
export function writeAnnotations(versions: RoleVersions, managedHash: string, routes: RoleRoutes): Record<string, string> {
  return { [ANNOTATIONS.roles]: canonicalJson(versions), [ANNOTATIONS.hash]: managedHash, [ANNOTATIONS.lastWritten]: canonicalJson(routes) };
}

/** The roles annotation of a live object (role → version); empty when absent or unreadable. */
export function liveRoleVersions(annotations: Record<string, string> | undefined): RoleVersions {
  try {
    const parsed = JSON.parse(annotations?.[ANNOTATIONS.roles] ?? '{}') as Record<string, unknown>;
    return Object.fromEntries(ROLES.filter((r) => typeof parsed[r] === 'string').map((r) => [r, parsed[r] as string]));
  } catch {
    return {};
  }
}

/** The spec's roles, else the roles the object was last written with (role → version turned around). */
export function rolesFor(spec: RouteSpec, live: RoleVersions): VersionRoles {
  if (spec.roles && Object.keys(spec.roles).length > 0) return spec.roles;
  const out: VersionRoles = {};
  for (const role of ROLES) if (live[role] !== undefined) out[live[role]] = role;
  return out;
}

/**
 * Refuse a write under a fencing token older than the one the object was last written under.
 * The write that follows carries the resourceVersion this check read, so a newer holder writing
 * in between makes it fail with 409 and the check runs again on what that holder wrote.
 */
export function refuseStaleFence(object: string, annotations: Record<string, string> | undefined, fence: number | undefined): void {
  const live = Number(annotations?.[ANNOTATIONS.fence]);
  if (fence === undefined || !Number.isSafeInteger(live) || fence >= live) return;
  throw new LockedError(
    `lock lost: ${object} was last written under fencing token ${live}, newer than this driver's ${fence}; nothing was written`,
    'another driver now drives this rollout: stop here and run `deploy status` to see where it stands',
  );
}

/** The fence annotation a write carries: the writer's token, never lowering a live one. */
export function fenceAnnotation(annotations: Record<string, string> | undefined, fence: number | undefined): Record<string, string> {
  if (fence === undefined) return {};
  const live = Number(annotations?.[ANNOTATIONS.fence]);
  return { [ANNOTATIONS.fence]: String(Number.isSafeInteger(live) ? Math.max(live, fence) : fence) };
}
