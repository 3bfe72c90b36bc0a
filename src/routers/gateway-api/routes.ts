/**
 * The pure half of the `gateway-api` router: the `spec.rules` of an HTTPRoute for a routing by
 * role, the routing that live rules express, the hash that tells a foreign edit, and the limits
 * the HTTPRoute CRD enforces. No I/O here, so every layout and refusal is unit-tested.
 *
 * Rule order matters only among equally specific matches: Gateway API ranks matches across rules
 * by specificity (path, method, then the number of header matches) and only then by list order.
 * Every rule here matches the path prefix `/`; org rules and the unpinned rule carry one header
 * match each, so list order puts pins before the unpinned rule, and the weighted rule — no header
 * match — is the fallback whatever its position. It is written last, where a reader expects it.
 *
 * Unpinned orgs under `weighted` follow the split per request: Gateway API cannot hash a header,
 * so there is no per-org stickiness as on the nginx router.
 */
import { UsageError } from '../../errors.js';
import { contentHash, percentScale, ROLES, sharePercent, type Role, type RoleRoutes } from '../kube-common.js';
import type { RouteSpec } from '../router.js';

/**
 * Limits of the HTTPRoute CRD (gateway.networking.k8s.io/v1, standard channel v1.6.3), enforced
 * by its OpenAPI schema and CEL rules: `rules` maxItems 16, `matches` maxItems 64, at most 128
 * matches across all rules, `backendRefs` maxItems 16, `weight` 0–1,000,000.
 */
export const HTTPROUTE_LIMITS = { rules: 16, matchesPerRule: 64, matchesPerRoute: 128, backendRefs: 16, maxWeight: 1_000_000 } as const;

/** How long a write waits, by default, for the controllers to accept it. */
export const ACCEPT_TIMEOUT_MS = 5_000;

/** The data plane the router is tested against with real traffic (test/integration/kube-traffic.test.ts). */
export const TESTED_WITH = 'Traefik 3.7.15 on the Gateway API v1.6.3 CRDs';

/**
 * What `deploy plan` says of this router: where Gateway API leaves room to implementations, what
 * the router writes there, and what it is tested with. `orgHeader` and `unpinned` only with orgs.
 */
export function gatewayPlanNote(orgs?: { orgHeader: string; unpinned: 'stable' | 'weighted' }): string {
  const byOrg = orgs
    ? [
        `org header ${orgs.orgHeader} matched by name in any case, by value exactly`,
        orgs.unpinned === 'weighted'
          ? 'unpinned orgs follow the split per request, not per org (Gateway API cannot hash a header)'
          : 'unpinned orgs caught by one RegularExpression match `.+` (Extended support: implementation-specific)',
      ]
    : [];
  return `gateway-api: ${[
    ...byOrg,
    'weights written as whole numbers, fractional percents scaled (finest step 0.0001%)',
    `each implementation applies a route at its own pace (Cutover waits up to ${ACCEPT_TIMEOUT_MS / 1000} s for it to report the route Accepted with its backends resolved, then goes on unconfirmed)`,
    `tested with real traffic: ${TESTED_WITH}`,
  ].join('; ')}`;
}

/** Header value of the unpinned rule: any non-empty org id. */
export const ANY_ORG_REGEX = '.+';

/** Where the router sends traffic. */
export interface GatewayBackends {
  service: string;
  canaryService: string;
  port: number;
  orgHeader: string;
}

/** An HTTPRoute match (the fields Cutover writes; others are kept as found). */
export interface HTTPRouteMatch {
  path?: { type?: string; value?: string };
  headers?: Array<{ name: string; type?: string; value: string }>;
  [field: string]: unknown;
}

/** An HTTPRoute backendRef. */
export interface BackendRef {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
  port?: number;
  weight?: number;
  [field: string]: unknown;
}

/** An HTTPRoute rule. */
export interface HTTPRouteRule {
  matches?: HTTPRouteMatch[];
  backendRefs?: BackendRef[];
  [field: string]: unknown;
}

const ROOT = { type: 'PathPrefix', value: '/' };

/**
 * Percent per role as HTTPRoute weights. Weights are integers read relative to their sum, so the
 * percents are scaled by the smallest power of ten that makes them whole (95/5 → 95 and 5,
 * 99.5/0.5 → 995 and 5, at most ×10,000 → 1,000,000, the CRD's maximum) and read back exactly.
 */
export function gatewayWeights(percent: Record<Role, number>): Record<Role, number> {
  const scale = percentScale([percent.stable, percent.canary]);
  if (scale === undefined) {
    throw new UsageError(`HTTPRoute backend weights are whole numbers up to ${HTTPROUTE_LIMITS.maxWeight}: a split of stable ${percent.stable}%, canary ${percent.canary}% needs finer steps than 0.0001%`, 'use canary weights in steps of 0.0001%');
  }
  return { stable: Math.round(percent.stable * scale), canary: Math.round(percent.canary * scale) };
}

/** Matches the rules take: one per pinned org, the unpinned rule's and the weighted rule's. */
export function matchesNeeded(orgCount: number, unpinnedRule: boolean): number {
  return orgCount + (unpinnedRule ? 1 : 0) + 1;
}

/**
 * Refuse a spec whose rules the CRD would reject: too many pinned orgs. Needs no roles, so the
 * engine can ask before anything is recorded.
 */
export function checkRouteCapacity(spec: RouteSpec): void {
  const orgCount = Object.keys(spec.orgs ?? {}).length;
  const unpinned = spec.unpinned?.mode === 'version' && Math.abs((spec.weights[spec.unpinned.version] ?? 0) - 100) > 1e-6;
  if (matchesNeeded(orgCount, unpinned) <= HTTPROUTE_LIMITS.matchesPerRoute) return;
  const fit = HTTPROUTE_LIMITS.matchesPerRoute - matchesNeeded(0, unpinned);
  throw new UsageError(
    `an HTTPRoute holds at most ${HTTPROUTE_LIMITS.matchesPerRoute} matches across its rules (${HTTPROUTE_LIMITS.matchesPerRule} per rule): ${fit} pinned orgs fit beside the weighted rule${unpinned ? ' and the rule for unpinned orgs' : ''}, and this spec pins ${orgCount}`,
    'pin fewer orgs at once (unpinned orgs follow orgs.unpinned), or use the nginx router, which has no such limit',
  );
}

/**
 * The rules for `routes`: org rules (64 orgs each), the unpinned rule, then the weighted rule —
 * the stable Service always, the canary Service while it has weight or a version (`canaryAssigned`).
 */
export function desiredRules(routes: RoleRoutes, b: GatewayBackends, canaryAssigned = true): HTTPRouteRule[] {
  const ref = (role: Role, weight: number): BackendRef => ({ group: '', kind: 'Service', name: role === 'stable' ? b.service : b.canaryService, port: b.port, weight });
  const header = (type: string, value: string): HTTPRouteMatch => ({ path: { ...ROOT }, headers: [{ name: b.orgHeader, type, value }] });
  const rules: HTTPRouteRule[] = [];
  for (const role of ROLES) {
    const orgs = Object.keys(routes.orgs).filter((o) => routes.orgs[o] === role).sort();
    for (let i = 0; i < orgs.length; i += HTTPROUTE_LIMITS.matchesPerRule) {
      rules.push({ matches: orgs.slice(i, i + HTTPROUTE_LIMITS.matchesPerRule).map((o) => header('Exact', o)), backendRefs: [ref(role, 1)] });
    }
  }
  // RegularExpression header matches are implementation-specific in Gateway API (Extended
  // support): `.+` is read alike by RE2, PCRE and ECMAScript engines, the dialects in use.
  if (routes.unpinned) rules.push({ matches: [header('RegularExpression', ANY_ORG_REGEX)], backendRefs: [ref(routes.unpinned, 1)] });
  const w = gatewayWeights(routes.weights);
  // With no version in it, the canary Service is left out: a controller reports ResolvedRefs=False
  // for a Service that does not exist (yet, or any more), whatever its weight.
  const canary = w.canary > 0 || canaryAssigned;
  rules.push({ matches: [{ path: { ...ROOT } }], backendRefs: [ref('stable', w.stable), ...(canary ? [ref('canary', w.canary)] : [])] });
  if (rules.length > HTTPROUTE_LIMITS.rules) throw new UsageError(`an HTTPRoute holds at most ${HTTPROUTE_LIMITS.rules} rules; these routes need ${rules.length}`, 'pin fewer orgs');
  return rules;
}

/**
 * Rules with the CRD's defaults filled in (a match with no path matches prefix `/`, a header
 * match is Exact, a backendRef is a core Service of weight 1), so rules written with or without
 * them compare and hash alike.
 */
export function normaliseRules(rules: HTTPRouteRule[]): HTTPRouteRule[] {
  return rules.map((rule) => ({
    ...rule,
    matches: (rule.matches ?? [{}]).map((m) => ({
      ...m,
      path: { type: m.path?.type ?? ROOT.type, value: m.path?.value ?? ROOT.value },
      ...(m.headers ? { headers: m.headers.map((h) => ({ ...h, type: h.type ?? 'Exact' })) } : {}),
    })),
    ...(rule.backendRefs ? { backendRefs: rule.backendRefs.map((r) => ({ ...r, group: r.group ?? '', kind: r.kind ?? 'Service', weight: r.weight ?? 1 })) } : {}),
  }));
}

/** Hash of the managed part (`spec.rules`), equal for rules equal after defaulting. */
export function rulesHash(rules: HTTPRouteRule[]): string {
  return contentHash(normaliseRules(rules));
}

/** What live rules route, as far as they are in Cutover's shape; `foreign` counts the rules that are not. */
export function decodeRules(rules: HTTPRouteRule[], b: GatewayBackends): RoleRoutes & { foreign: number } {
  const roleOf = (r: BackendRef): Role | undefined =>
    r.group === '' && r.kind === 'Service' && !r.namespace && r.port === b.port ? (r.name === b.service ? 'stable' : r.name === b.canaryService ? 'canary' : undefined) : undefined;
  const isRoot = (m: HTTPRouteMatch) => m.path?.type === ROOT.type && m.path.value === ROOT.value && Object.keys(m).every((k) => k === 'path' || k === 'headers');
  const orgs: Record<string, Role> = {};
  const raw: Record<Role, number> = { stable: 0, canary: 0 };
  let unpinned: Role | undefined;
  let weighted = false;
  let foreign = 0;
  for (const rule of normaliseRules(rules)) {
    const refs = rule.backendRefs ?? [];
    const matches = rule.matches ?? [];
    const plain = Object.keys(rule).every((k) => k === 'matches' || k === 'backendRefs');
    const byHeader = matches.length > 0 && matches.every((m) => isRoot(m) && m.headers?.length === 1 && m.headers[0]!.name.toLowerCase() === b.orgHeader.toLowerCase());
    const role = refs.length === 1 ? roleOf(refs[0]!) : undefined;
    if (plain && byHeader && role) {
      for (const m of matches) {
        const h = m.headers![0]!;
        if (h.type === 'Exact') orgs[h.value] ??= role;
        else if (h.type === 'RegularExpression' && h.value === ANY_ORG_REGEX) unpinned ??= role;
      }
      continue;
    }
    const catchAll = matches.length === 1 && isRoot(matches[0]!) && !matches[0]!.headers;
    if (plain && catchAll && !weighted && refs.length > 0 && refs.every((r) => roleOf(r))) {
      for (const r of refs) raw[roleOf(r)!] += r.weight ?? 1;
      weighted = true;
      continue;
    }
    foreign += 1;
  }
  const total = raw.stable + raw.canary;
  const weights = { stable: sharePercent(raw.stable, total), canary: sharePercent(raw.canary, total) };
  return { weights, orgs, ...(unpinned ? { unpinned } : {}), foreign };
}

/** One entry of an HTTPRoute's `status.parents`: what one controller says about one parent. */
export interface RouteParentStatus {
  parentRef: { name: string; namespace?: string; sectionName?: string };
  controllerName: string;
  conditions?: Array<{ type: string; status: string; reason?: string; message?: string; observedGeneration?: number }>;
}

/** What the controllers say about a generation of the route. */
export type Acceptance =
  | { state: 'unreported' }
  | { state: 'accepted' }
  | { state: 'pending'; detail: string }
  | { state: 'unresolved'; detail: string }
  | { state: 'rejected'; detail: string };

/**
 * The controllers' verdict on `generation`. Only `Accepted=False` is a refusal: the controller
 * will not serve the route. `ResolvedRefs=False` on an accepted route means a backendRef does not
 * resolve yet — a controller reports it for a Service it has not seen, or whose EndpointSlices it
 * has not seen (Traefik: "endpointslices not found"), which is what every write just after a new
 * Service looks like, and it turns True by itself moments later. So it is `unresolved`, to wait
 * out, not a refusal. Accepted when every controller reports `Accepted=True` for the generation
 * and none `ResolvedRefs=False`; pending while some still report on an older generation;
 * unreported when no controller reports at all.
 */
export function acceptance(parents: RouteParentStatus[] | undefined, generation: number): Acceptance {
  if (!parents?.length) return { state: 'unreported' };
  const current = (p: RouteParentStatus, type: string) => p.conditions?.find((c) => c.type === type && (c.observedGeneration ?? 0) >= generation);
  const says = (p: RouteParentStatus, type: string) => {
    const c = current(p, type)!;
    return `${p.controllerName} (parent ${p.parentRef.namespace ? `${p.parentRef.namespace}/` : ''}${p.parentRef.name}) reports ${type}=False, reason ${c.reason ?? 'unknown'}: ${c.message ?? ''}`.trimEnd();
  };
  const refused = parents.find((p) => current(p, 'Accepted')?.status === 'False');
  if (refused) return { state: 'rejected', detail: says(refused, 'Accepted') };
  const waiting = parents.filter((p) => current(p, 'Accepted')?.status !== 'True');
  if (waiting.length > 0) {
    const seen = (p: RouteParentStatus) => Math.max(0, ...(p.conditions ?? []).map((c) => c.observedGeneration ?? 0));
    return { state: 'pending', detail: waiting.map((p) => `${p.controllerName} has not accepted generation ${generation} yet (it reports on generation ${seen(p)})`).join('; ') };
  }
  const unresolved = parents.filter((p) => current(p, 'ResolvedRefs')?.status === 'False');
  if (unresolved.length > 0) return { state: 'unresolved', detail: unresolved.map((p) => says(p, 'ResolvedRefs')).join('; ') };
  return { state: 'accepted' };
}
