/**
 * Orgs by version for the console's `o` view: the same rule `deploy orgs list` applies — an
 * explicit pin wins, then the current wave of an org-waves rollout, then the unpinned rule.
 */
import { unpinnedRoute } from '../../orgs/routes.js';
import type { Share } from './types.js';

/** What the console reads about orgs: the directory's ids and the registry's pins. */
export interface OrgSource {
  ids: string[];
  /** Org → version of the committed pins. */
  pins: Record<string, string>;
  /** `orgs.unpinned` of the config. */
  unpinned: 'stable' | 'weighted' | undefined;
  /** Orgs the current step of an org-waves rollout has moved (empty otherwise). */
  wave: string[];
}

/** How many orgs one version serves, and why. */
export interface OrgCount {
  version: string;
  count: number;
  pinned: number;
  wave: number;
  unpinned: number;
}

/** Orgs by version. */
export interface OrgsView {
  total: number;
  /** Most orgs first. */
  byVersion: OrgCount[];
  /** Unpinned orgs that follow the weighted split, sticky per org (`unpinned: weighted`). */
  bySplit: number;
  /** Where unpinned orgs go when they follow one version. */
  unpinnedTo?: string;
}

/** Count orgs by the version that serves them, given the rollout's live split. */
export function countOrgs(source: OrgSource, rollout: { weights: Share[]; stable?: string; candidate?: string; phase: string }): OrgsView {
  const weights = Object.fromEntries(rollout.weights.map((s) => [s.version, s.percent]));
  const stable = rollout.stable ?? rollout.weights.find((s) => s.percent >= 100)?.version ?? '?';
  const active = rollout.phase === 'holding' || rollout.phase === 'paused' || rollout.phase === 'progressing';
  const route = unpinnedRoute(source.unpinned, weights, stable, active ? rollout.candidate : undefined);
  const wave = new Set(active ? source.wave : []);
  const counts = new Map<string, OrgCount>();
  const bump = (version: string, why: 'pinned' | 'wave' | 'unpinned') => {
    const c = counts.get(version) ?? { version, count: 0, pinned: 0, wave: 0, unpinned: 0 };
    c.count += 1;
    c[why] += 1;
    counts.set(version, c);
  };
  let bySplit = 0;
  const ids = new Set([...source.ids, ...Object.keys(source.pins)]);
  for (const id of ids) {
    const pin = source.pins[id];
    if (pin) bump(pin, 'pinned');
    else if (wave.has(id) && rollout.candidate) bump(rollout.candidate, 'wave');
    else if (route.mode === 'version') bump(route.version, 'unpinned');
    else bySplit += 1;
  }
  return {
    total: ids.size,
    byVersion: [...counts.values()].sort((a, b) => b.count - a.count || a.version.localeCompare(b.version)),
    bySplit,
    ...(route.mode === 'version' ? { unpinnedTo: route.version } : {}),
  };
}
