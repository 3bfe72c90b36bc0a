/**
 * The pure half of the `ingress-nginx` router: the canary Ingress's spec (the stable Ingress's
 * hosts and paths, with the backend Service replaced by the canary's) and its `canary-*`
 * annotations for a routing by role, what live annotations route, and the refusals of what
 * ingress-nginx cannot carry. No I/O here, so every layout and refusal is unit-tested.
 *
 * ingress-nginx's canary model is the limit: traffic splits between the stable Ingress and one
 * canary Ingress — two versions — and a request goes to the canary when its header matches
 * `canary-by-header-pattern`, else by `canary-weight`. So orgs can be pinned to the canary at any
 * weight, but to stable only while the canary weight is 0, and unpinned orgs follow the weight
 * per request (there is no per-org stickiness).
 */
import { UsageError } from '../../errors.js';
import { contentHash, percentScale, roleRoutes, roleVersions, servedVersions, sharePercent, type Role, type RoleRoutes } from '../kube-common.js';
import type { RouteSpec, VersionRoles } from '../router.js';

/** The ingress-nginx annotations Cutover writes on the canary Ingress. */
export const NGINX_CANARY = {
  canary: 'nginx.ingress.kubernetes.io/canary',
  weight: 'nginx.ingress.kubernetes.io/canary-weight',
  total: 'nginx.ingress.kubernetes.io/canary-weight-total',
  header: 'nginx.ingress.kubernetes.io/canary-by-header',
  pattern: 'nginx.ingress.kubernetes.io/canary-by-header-pattern',
} as const;

/** Every `canary*` annotation changes the canary's routing, so all of them are Cutover's. */
const CANARY_PREFIX = 'nginx.ingress.kubernetes.io/canary';
/** The legacy class annotation, copied from the stable Ingress so one controller sees both. */
const CLASS_ANNOTATION = 'kubernetes.io/ingress.class';

/** The sentence every refusal starts with. */
export const TWO_VERSION_LIMIT = 'ingress-nginx routes two versions at once (the stable Ingress and its canary)';

/** The limit as `deploy plan` states it for a config with orgs. */
export const ORG_LIMIT = `${TWO_VERSION_LIMIT}: orgs can be pinned to the candidate at any weight, but kept on stable (pinned, or unpinned under orgs.unpinned: stable) only while the canary weight is 0; under orgs.unpinned: weighted, unpinned orgs follow the canary weight per request`;

/**
 * Longest header pattern written. Kubernetes allows 256 KiB of annotations per object, and the
 * pattern's orgs are also in Cutover's record of the last write.
 */
export const MAX_PATTERN_CHARS = 96 * 1024;

/** An Ingress backend. */
export interface IngressBackend {
  service?: { name: string; port?: { number?: number; name?: string } };
  [field: string]: unknown;
}

/** The spec of an Ingress (networking.k8s.io/v1), as far as the canary copies it. */
export interface IngressSpec {
  ingressClassName?: string;
  defaultBackend?: IngressBackend;
  rules?: Array<{ host?: string; http?: { paths: Array<{ path?: string; pathType: string; backend: IngressBackend }> } }>;
  [field: string]: unknown;
}

/**
 * The spec by role, refusing what ingress-nginx cannot carry. Without roles only the number of
 * versions can be judged; `undefined` is then returned (empty roles refuse every served version).
 * @throws UsageError naming the limit.
 */
export function ingressRoutes(spec: RouteSpec, roles: VersionRoles | undefined): RoleRoutes | undefined {
  const served = servedVersions(spec);
  if (served.length > 2) throw new UsageError(`${TWO_VERSION_LIMIT}; this spec routes to ${served.join(', ')}`, 'finish or roll back the rollout in progress first');
  if (!roles) return undefined;
  const routes = roleRoutes(spec, roles, 'ingress-nginx');
  const versions = roleVersions(roles, served);
  const canary = routes.weights.canary;
  const stablePins = Object.keys(routes.orgs).filter((o) => routes.orgs[o] === 'stable').sort();
  if (stablePins.length > 0 && (canary > 0 || routes.unpinned === 'canary')) {
    const named = `${stablePins.slice(0, 5).join(', ')}${stablePins.length > 5 ? `, … ${stablePins.length - 5} more` : ''}`;
    throw new UsageError(
      `${TWO_VERSION_LIMIT}, and a request whose org header does not match the canary's pattern falls through to the canary weight: orgs pinned to stable version ${versions.stable} (${named}) cannot be kept on it while ${canary > 0 ? `the canary takes ${canary}%` : 'unpinned orgs go to the canary'}`,
      'pin orgs to stable only while the canary weight is 0 (org waves), or use the gateway-api router',
    );
  }
  if (routes.unpinned === 'stable') {
    throw new UsageError(
      `${TWO_VERSION_LIMIT}, and an org header that matches no pin falls through to the canary weight: unpinned orgs cannot all stay on stable version ${versions.stable} while the canary takes ${canary}%`,
      'set orgs.unpinned: weighted, move orgs in org waves (canary weight 0), or use the gateway-api router',
    );
  }
  if (percentScale([canary]) === undefined) throw new UsageError(`ingress-nginx canary weights are whole numbers of canary-weight-total: a canary share of ${canary}% needs finer steps than 0.0001%`, 'use canary weights in steps of 0.0001%');
  const pattern = orgPattern(Object.keys(routes.orgs).filter((o) => routes.orgs[o] === 'canary'), routes.unpinned === 'canary');
  if (pattern.length > MAX_PATTERN_CHARS) {
    throw new UsageError(`the canary's header pattern for ${Object.keys(routes.orgs).length} pinned orgs would be ${Math.ceil(pattern.length / 1024)} KiB, over the ${MAX_PATTERN_CHARS / 1024} KiB an Ingress annotation can hold here`, 'pin fewer orgs at once, or use the nginx router');
  }
  return routes;
}

/** What the canary Ingress expresses of `routes`: pins to stable are left to the weight (0 when there are any). */
export function carriedRoutes(routes: RoleRoutes): RoleRoutes {
  const orgs = Object.fromEntries(Object.entries(routes.orgs).filter(([, role]) => role === 'canary'));
  return { weights: { ...routes.weights }, orgs, ...(routes.unpinned === 'canary' ? { unpinned: 'canary' as const } : {}) };
}

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** `^(org1|org2)$`, with `.+` as one more alternative when every org goes to the canary. */
export function orgPattern(orgs: string[], anyOrg: boolean): string {
  return `^(${[...[...orgs].sort().map(escapeRegex), ...(anyOrg ? ['.+'] : [])].join('|')})$`;
}

/** The orgs of a pattern `orgPattern` wrote; undefined for a pattern of another shape. */
export function parseOrgPattern(pattern: string): { orgs: string[]; anyOrg: boolean } | undefined {
  const m = /^\^\((.*)\)\$$/.exec(pattern);
  if (!m) return undefined;
  const parts = m[1]!.split('|');
  if (parts.some((p) => p !== '.+' && !/^(?:[A-Za-z0-9_-]|\\.)+$/.test(p))) return undefined;
  return { orgs: parts.filter((p) => p !== '.+').map((p) => p.replace(/\\(.)/g, '$1')), anyOrg: parts.includes('.+') };
}

/** The `canary-*` annotations for carried routes; `canary-weight-total` only for fractional shares. */
export function canaryAnnotations(routes: RoleRoutes, orgHeader: string): Record<string, string> {
  const scale = percentScale([routes.weights.canary]) ?? 1;
  const out: Record<string, string> = { [NGINX_CANARY.canary]: 'true', [NGINX_CANARY.weight]: String(Math.round(routes.weights.canary * scale)) };
  if (scale !== 1) out[NGINX_CANARY.total] = String(100 * scale);
  const orgs = Object.keys(routes.orgs).filter((o) => routes.orgs[o] === 'canary');
  if (orgs.length > 0 || routes.unpinned === 'canary') {
    out[NGINX_CANARY.header] = orgHeader;
    out[NGINX_CANARY.pattern] = orgPattern(orgs, routes.unpinned === 'canary');
  }
  return out;
}

/** What live `canary-*` annotations route (an Ingress not marked canary takes no traffic as one). */
export function decodeCanaryAnnotations(annotations: Record<string, string> | undefined, orgHeader: string): RoleRoutes {
  const a = annotations ?? {};
  if (a[NGINX_CANARY.canary] !== 'true') return { weights: { stable: 100, canary: 0 }, orgs: {} };
  const total = Number.parseInt(a[NGINX_CANARY.total] ?? '', 10) || 100;
  const weight = Math.min(Math.max(Number.parseInt(a[NGINX_CANARY.weight] ?? '', 10) || 0, 0), total);
  const canary = sharePercent(weight, total);
  const weights = { stable: +(100 - canary).toFixed(6), canary };
  const pattern = a[NGINX_CANARY.header]?.toLowerCase() === orgHeader.toLowerCase() ? a[NGINX_CANARY.pattern] : undefined;
  const byOrg = pattern ? parseOrgPattern(pattern) : undefined;
  const orgs: Record<string, Role> = Object.fromEntries((byOrg?.orgs ?? []).map((o) => [o, 'canary' as const]));
  return { weights, orgs, ...(byOrg?.anyOrg && canary < 100 ? { unpinned: 'canary' as const } : {}) };
}

/**
 * The canary Ingress's spec: the stable Ingress's class, and its rules and default backend that
 * go to `service`, sent to `canaryService` instead (same port). Paths to other Services are left
 * out: ingress-nginx would otherwise split them too.
 * @throws UsageError when nothing in the stable Ingress goes to `service`.
 */
export function canaryIngressSpec(stable: IngressSpec, ingress: string, service: string, canaryService: string): IngressSpec {
  const swap = (b: IngressBackend | undefined): IngressBackend | undefined => (b?.service?.name === service ? { ...b, service: { ...b.service, name: canaryService } } : undefined);
  const rules = (stable.rules ?? []).flatMap((rule) => {
    const paths = (rule.http?.paths ?? []).flatMap((p) => {
      const backend = swap(p.backend);
      return backend ? [{ ...p, backend }] : [];
    });
    return paths.length > 0 ? [{ ...rule, http: { ...rule.http, paths } }] : [];
  });
  const defaultBackend = swap(stable.defaultBackend);
  if (rules.length === 0 && !defaultBackend) {
    throw new UsageError(`Ingress ${ingress} sends nothing to Service ${service}: none of its paths, nor its default backend, has it as backend`, `point the Ingress's paths at Service ${service}, or fix router.service`);
  }
  // The API server drops an empty rules list, so one is never written: the twin must read back as written.
  return { ...(stable.ingressClassName ? { ingressClassName: stable.ingressClassName } : {}), ...(defaultBackend ? { defaultBackend } : {}), ...(rules.length > 0 ? { rules } : {}) };
}

/** The annotations Cutover owns on the canary Ingress: every `canary*` one and the class. */
export function managedAnnotations(annotations: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(annotations ?? {}).filter(([k]) => k.startsWith(CANARY_PREFIX) || k === CLASS_ANNOTATION));
}

/** The class annotation of the stable Ingress, to copy. */
export function classAnnotation(stable: Record<string, string> | undefined): Record<string, string> {
  const cls = stable?.[CLASS_ANNOTATION];
  return cls ? { [CLASS_ANNOTATION]: cls } : {};
}

/** Hash of the managed part of the canary Ingress: its spec and its managed annotations. */
export function canaryHash(spec: IngressSpec, annotations: Record<string, string> | undefined): string {
  return contentHash({ spec, annotations: managedAnnotations(annotations) });
}
