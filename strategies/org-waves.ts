/**
 * The org-waves strategy: whole organizations move to the candidate in waves — a pilot group,
 * then a share of all orgs, then everyone — with holds and gates between. Pure: the directory of
 * orgs comes in, a plan goes out. Each step lists every org on the candidate so far, so a step is
 * one router write and a rollback moves the whole wave back at once.
 */
import type { InconclusivePolicy, Plan, PlanStep } from '../src/engine/plan.js';
import { DEFAULT_HOLD_MS, DEFAULT_INCONCLUSIVE_MS } from './canary.js';

/** A wave as written in deploy.yaml (durations in ms, share as a fraction). */
export interface WaveSpec {
  group?: string | undefined;
  share?: number | undefined;
  all?: true | undefined;
  hold?: number | undefined;
  pause?: boolean | undefined;
}

/** `strategy.orgWaves` as validated. */
export interface OrgWavesSpec {
  waves: WaveSpec[];
  inconclusive?: { after?: number | undefined; action?: InconclusivePolicy['action'] | undefined } | undefined;
}

/** FNV-1a: a stable hash, so "25% of orgs" names the same orgs on every machine and run. */
export function orgHash(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** Build the plan over `orgIds` (every known org) and `groups`. A last `all` wave is added if missing. */
export function planOrgWaves(spec: OrgWavesSpec, orgIds: string[], groups: Record<string, string[]>, gates: string[] = []): Plan {
  const byHash = [...orgIds].sort((a, b) => orgHash(a) - orgHash(b) || (a < b ? -1 : 1));
  const waves = spec.waves.at(-1)?.all ? spec.waves : [...spec.waves, { all: true as const, hold: 0 }];
  const moved = new Set<string>();
  const steps: PlanStep[] = waves.map((w, index) => {
    if (w.group !== undefined) (groups[w.group] ?? []).forEach((o) => moved.add(o));
    if (w.share !== undefined) byHash.slice(0, Math.ceil(w.share * byHash.length)).forEach((o) => moved.add(o));
    if (w.all) orgIds.forEach((o) => moved.add(o));
    const holdMs = w.hold ?? (w.all ? 0 : DEFAULT_HOLD_MS);
    return { index, weight: w.all ? 100 : 0, holdMs, pause: w.pause ?? false, gates: holdMs > 0 ? gates : [], orgs: [...moved].sort() };
  });
  return {
    strategy: 'org-waves',
    steps,
    inconclusive: { afterMs: spec.inconclusive?.after ?? DEFAULT_INCONCLUSIVE_MS, action: spec.inconclusive?.action ?? 'pause' },
  };
}
