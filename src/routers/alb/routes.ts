/**
 * The pure half of the `alb` router: percent weights to ALB weights and back, which listener
 * rules are Cutover's org rules, and the ordered writes that turn the live org rules into the
 * desired ones within ALB's quotas. No I/O here, so every layout and every refusal is unit-tested.
 *
 * ALB quotas used (Elastic Load Balancing's "Quotas for your Application Load Balancers"): 5
 * condition values per rule (not adjustable), 5 target groups per action (not adjustable), 100
 * rules per load balancer (adjustable: `router.maxRules`), priorities 1–50,000, and at most 128
 * characters per http-header value.
 */
import { UsageError } from '../../errors.js';
import type { OrgRoutes, Weights } from '../router.js';
import type { AlbRule, ForwardAction, RuleCondition } from './client.js';

/** ALB's quotas that shape a layout. */
export const ALB_LIMITS = { conditionValuesPerRule: 5, targetGroupsPerAction: 5, maxPriority: 50_000, maxWeight: 999 } as const;

/** Value that matches any org in the unpinned (catch-all) rule. Org ids can never contain `*`. */
export const ANY_ORG = '*';

/**
 * Percent weights as ALB's integer weights (0–999, relative to their sum). Whole percents are
 * written as they are; tenths are written ×10. Finer shares cannot be expressed and are refused.
 */
export function albWeights(weights: Weights): Record<string, number> {
  const entries = Object.entries(weights);
  if (entries.length > ALB_LIMITS.targetGroupsPerAction) {
    throw new UsageError(`an ALB forward action takes at most ${ALB_LIMITS.targetGroupsPerAction} target groups; the split names ${entries.length} versions`);
  }
  for (const scale of [1, 10]) {
    const scaled = entries.map(([v, w]) => [v, w * scale] as const);
    if (scaled.every(([, w]) => Math.abs(w - Math.round(w)) < 1e-6 && Math.round(w) <= ALB_LIMITS.maxWeight)) {
      return Object.fromEntries(scaled.map(([v, w]) => [v, Math.round(w)]));
    }
  }
  throw new UsageError(`ALB weights are whole numbers up to ${ALB_LIMITS.maxWeight}: a split of ${entries.map(([v, w]) => `${v} ${w}%`).join(', ')} needs finer steps than 0.1%`, 'use canary weights in steps of 0.1%');
}

/** A forward action's shares in percent, keyed by version (an unknown target group by its ARN). */
export function percentWeights(forward: ForwardAction | undefined, versionOf: (arn: string) => string | undefined): Weights {
  const groups = forward?.targetGroups ?? [];
  const total = groups.reduce((n, g) => n + g.weight, 0);
  const out: Weights = {};
  for (const g of groups) {
    const key = versionOf(g.targetGroupArn) ?? g.targetGroupArn;
    out[key] = (out[key] ?? 0) + (total > 0 ? +((g.weight / total) * 100).toFixed(6) : 0);
  }
  return out;
}

/** A Cutover-managed org rule as found live. */
export interface OrgRule {
  arn: string;
  priority: number;
  version: string;
  /** Org ids, or `[ANY_ORG]` for the catch-all rule of unpinned orgs. */
  values: string[];
}

/** How many condition values a rule's conditions use (the quota counts them all). */
export function conditionValues(conditions: RuleCondition[]): number {
  return conditions.reduce((n, c) => {
    const lists = [c.Values, c.HostHeaderConfig?.Values, c.PathPatternConfig?.Values, c.HttpHeaderConfig?.Values, c.HttpRequestMethodConfig?.Values, c.SourceIpConfig?.Values, c.QueryStringConfig?.Values];
    return n + lists.reduce((m, l) => m + (l?.length ?? 0), 0);
  }, 0);
}

/** The conditions of an org rule: the weighted route's own conditions and the org header. */
export function orgRuleConditions(base: RuleCondition[], header: string, values: string[]): RuleCondition[] {
  return [...base, { Field: 'http-header', HttpHeaderConfig: { HttpHeaderName: header, Values: values } }];
}

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * The rules that are Cutover's: every condition of the weighted route plus one http-header
 * condition on the org header, forwarding to exactly one configured target group. A hand-made
 * rule of that exact shape routes an org to a version anyway, so it is treated as a pin.
 */
export function managedOrgRules(rules: AlbRule[], base: RuleCondition[], header: string, versionOf: (arn: string) => string | undefined): OrgRule[] {
  const out: OrgRule[] = [];
  for (const rule of rules) {
    if (rule.priority === 'default' || rule.conditions.length !== base.length + 1) continue;
    const orgCondition = rule.conditions.find((c) => c.Field === 'http-header' && c.HttpHeaderConfig?.HttpHeaderName?.toLowerCase() === header.toLowerCase());
    if (!orgCondition) continue;
    const rest = rule.conditions.filter((c) => c !== orgCondition);
    if (!sameJson(normalise(rest), normalise(base))) continue;
    const forward = rule.actions.length === 1 ? rule.actions[0]?.forward : undefined;
    const version = forward?.targetGroups.length === 1 ? versionOf(forward.targetGroups[0]!.targetGroupArn) : undefined;
    if (!version) continue;
    out.push({ arn: rule.arn, priority: rule.priority, version, values: [...(orgCondition.HttpHeaderConfig?.Values ?? [])] });
  }
  return out;
}

/** Conditions compared by what they match, whatever optional fields the API echoes. */
function normalise(conditions: RuleCondition[]): unknown[] {
  return conditions
    .map((c) => ({ f: c.Field, h: c.HttpHeaderConfig?.HttpHeaderName?.toLowerCase(), v: [...(c.HostHeaderConfig?.Values ?? c.PathPatternConfig?.Values ?? c.HttpHeaderConfig?.Values ?? c.Values ?? [])].sort() }))
    .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

/** The routing org rules express: pins, and where unpinned orgs go (`undefined`: by weight). */
export function liveOrgRoutes(rules: OrgRule[]): { orgs: OrgRoutes; unpinnedVersion: string | undefined } {
  const orgs: OrgRoutes = {};
  let unpinnedVersion: string | undefined;
  // The lowest priority number wins on ALB, so the first rule naming an org is its route.
  for (const r of [...rules].sort((a, b) => a.priority - b.priority)) {
    for (const v of r.values) {
      if (v === ANY_ORG) unpinnedVersion ??= r.version;
      else if (!(v in orgs)) orgs[v] = r.version;
    }
  }
  return { orgs, unpinnedVersion };
}

/** One write of an org-rule change, in the order it must be made. */
export type RuleWrite =
  | { kind: 'create'; priority: number; version: string; values: string[] }
  | { kind: 'conditions'; arn: string; priority: number; version: string; values: string[] }
  | { kind: 'retarget'; arn: string; priority: number; version: string }
  | { kind: 'delete'; arn: string; priority: number };

/** Where new org rules may go and how many rules the load balancer may hold. */
export interface RuleRoom {
  /** Free priorities for new org rules, above (lower than) the weighted route's. */
  freePriorities: number[];
  /** Priority of the weighted route (50,001 for the default action). */
  weightedPriority: number;
  /** Rules on the listener now, the default rule not counted. */
  rulesNow: number;
  maxRules: number;
  /** Org values one rule can carry after the weighted route's own condition values. */
  valuesPerRule: number;
}

/**
 * The writes from `live` org rules to `orgs` and `unpinned`. Phase one only adds: new pins go
 * into free room of rules of their version or into new rules, and the catch-all is created or
 * re-pointed. Phase two only removes. An org that moves is thus matched by its old rule until
 * the call that makes its new rule win, and by its new rule from then on: it switches version
 * exactly once and never falls through to the weighted default on the way.
 * @throws UsageError before any write when the layout would exceed a quota or the free priorities.
 */
export function planOrgRules(live: OrgRule[], orgs: OrgRoutes, unpinnedVersion: string | undefined, room: RuleRoom): RuleWrite[] {
  checkOrgIds(orgs);
  const adds: RuleWrite[] = [];
  const removes: RuleWrite[] = [];
  const pins = live.filter((r) => !r.values.includes(ANY_ORG));
  const catchAll = live.filter((r) => r.values.includes(ANY_ORG)).sort((a, b) => a.priority - b.priority);
  const placed = new Set<string>();
  const content = new Map<OrgRule, string[]>();
  for (const r of pins) {
    const keep = r.values.filter((o) => orgs[o] === r.version && !placed.has(o));
    keep.forEach((o) => placed.add(o));
    content.set(r, keep);
  }
  const k = room.valuesPerRule;
  const pending = Object.keys(orgs).filter((o) => !placed.has(o)).sort();
  if (pending.length > 0 && k < 1) {
    throw new UsageError(`the weighted rule's conditions use all ${ALB_LIMITS.conditionValuesPerRule} condition values ALB allows per rule, leaving none for the org header`, 'route by a rule with fewer condition values, or by the listener default action');
  }
  const free = [...room.freePriorities];
  let created = 0;
  // The catch-all must come after every pin rule, so it takes the highest free priority first.
  const catchAllAt = unpinnedVersion !== undefined && catchAll.length === 0 ? catchAllPriority(free) : undefined;
  if (unpinnedVersion !== undefined && catchAll.length === 0 && catchAllAt === undefined) throw noRoom(room, 'free priorities', Object.keys(orgs).length);
  for (const version of [...new Set(pending.map((o) => orgs[o]!))].sort()) {
    const queue = pending.filter((o) => orgs[o] === version);
    for (const r of pins.filter((p) => p.version === version)) {
      // In phase one a rule still holds the orgs phase two removes, so only true spare room counts.
      const spare = k - r.values.length;
      if (spare <= 0 || queue.length === 0) continue;
      const added = queue.splice(0, spare);
      content.set(r, [...content.get(r)!, ...added]);
      adds.push({ kind: 'conditions', arn: r.arn, priority: r.priority, version, values: [...r.values, ...added] });
    }
    for (let i = 0; i < queue.length; i += k) {
      const priority = free.shift();
      if (priority === undefined) throw noRoom(room, 'free priorities', Object.keys(orgs).length);
      adds.push({ kind: 'create', priority, version, values: queue.slice(i, i + k) });
      created += 1;
    }
  }
  if (unpinnedVersion !== undefined) {
    const [first] = catchAll;
    if (!first) {
      adds.push({ kind: 'create', priority: catchAllAt!, version: unpinnedVersion, values: [ANY_ORG] });
      created += 1;
    } else if (first.version !== unpinnedVersion) {
      adds.push({ kind: 'retarget', arn: first.arn, priority: first.priority, version: unpinnedVersion });
    }
  }
  if (room.rulesNow + created > room.maxRules) throw noRoom(room, 'rules', Object.keys(orgs).length, room.rulesNow + created);
  for (const r of pins) {
    const final = content.get(r)!;
    const phaseOne = adds.find((a) => a.kind === 'conditions' && a.arn === r.arn);
    if (final.length === 0) removes.push({ kind: 'delete', arn: r.arn, priority: r.priority });
    else if (!sameJson(final, phaseOne?.kind === 'conditions' ? phaseOne.values : r.values)) {
      removes.push({ kind: 'conditions', arn: r.arn, priority: r.priority, version: r.version, values: final });
    }
  }
  for (const r of catchAll.slice(unpinnedVersion === undefined ? 0 : 1)) removes.push({ kind: 'delete', arn: r.arn, priority: r.priority });
  return [...adds, ...removes];
}

/** The catch-all goes last among org rules: just above the weighted route, when that is free. */
function catchAllPriority(free: number[]): number | undefined {
  const best = Math.max(...free, -1);
  if (best < 0) return undefined;
  free.splice(free.indexOf(best), 1);
  return best;
}

/** Org ids that differ only in case are one value to ALB, which matches headers case-insensitively. */
function checkOrgIds(orgs: OrgRoutes): void {
  const seen = new Map<string, string>();
  for (const [org, version] of Object.entries(orgs)) {
    const key = org.toLowerCase();
    const other = seen.get(key);
    if (other !== undefined && orgs[other] !== version) {
      throw new UsageError(`orgs ${other} and ${org} differ only in case, which ALB's header match does not see, but are pinned to different versions`, 'pin both to one version');
    }
    seen.set(key, org);
  }
}

function noRoom(room: RuleRoom, what: 'rules' | 'free priorities', orgCount: number, needed?: number): UsageError {
  const perRule = room.valuesPerRule;
  if (what === 'rules') {
    return new UsageError(
      `${orgCount} pinned orgs need ${needed} listener rules at ${perRule} orgs per rule, over the load balancer's ${room.maxRules}-rule quota`,
      'pin fewer orgs (unpinned orgs follow the catch-all), or raise the quota and set router.maxRules',
    );
  }
  return new UsageError(
    `no free rule priority left for ${orgCount} pinned orgs between the nearest other rule and the weighted route (priority ${room.weightedPriority > ALB_LIMITS.maxPriority ? 'default' : room.weightedPriority})`,
    'leave free priorities just above the weighted rule, or pin fewer orgs',
  );
}
