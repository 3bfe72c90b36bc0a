/**
 * The org registry: which org is pinned to which version, since when and by whom, kept in the
 * state backend beside the rollout (`orgs.json` locally). A move records its intent before the
 * router write and commits after it, like a rollout step, so a crash never loses a move.
 */
import type { OrgRoutes } from '../routers/router.js';
import type { StateStore } from '../state/store.js';

/** One pin. */
export interface OrgPin {
  version: string;
  since: string;
  by: string;
  /** Router generation that made it live. */
  generation?: number;
  /** Routers that switch at one instant (a fleet): when it went live, by their clocks. */
  activatedAt?: string;
}

/** A move in flight: the whole pin map it writes. */
export interface OrgMoveIntent {
  pins: Record<string, string>;
  reason: string;
  at: string;
  by: string;
}

/** What orgs.json holds. */
export interface OrgRegistry {
  schema: 1;
  pins: Record<string, OrgPin>;
  intent?: OrgMoveIntent;
}

/** Shallow check of a loaded registry. */
export function validateRegistry(value: unknown): OrgRegistry {
  const r = value as Partial<OrgRegistry> | null;
  if (!r || typeof r !== 'object' || r.schema !== 1 || !r.pins || typeof r.pins !== 'object') throw new Error('expected { schema: 1, pins: {…} }');
  for (const [org, pin] of Object.entries(r.pins)) {
    if (!pin || typeof pin.version !== 'string') throw new Error(`pin of ${org} has no version`);
  }
  return r as OrgRegistry;
}

/** The registry, empty when none was written yet. */
export async function loadRegistry(store: StateStore<unknown>): Promise<OrgRegistry> {
  return (await store.loadDoc('orgs', validateRegistry)) ?? { schema: 1, pins: {} };
}

/** Save the registry atomically. */
export function saveRegistry(store: StateStore<unknown>, registry: OrgRegistry): Promise<void> {
  return store.saveDoc('orgs', registry);
}

/** Org → version of the committed pins. */
export function pinMap(registry: OrgRegistry): OrgRoutes {
  return Object.fromEntries(Object.entries(registry.pins).map(([org, pin]) => [org, pin.version]));
}
