/**
 * The `gateway-api` router: one HTTPRoute whose rules send pinned orgs (an Exact match on the org
 * header) and the weighted rest (`backendRefs` with weights) to the stable and canary Services.
 * Cutover creates the route when it is missing and otherwise manages only its `spec.rules` and
 * its own annotations; parentRefs, hostnames and anything else someone set are kept.
 *
 * Every write is one PUT of the object just read, with its resourceVersion: a weight step, an org
 * move and a rollback each change the rules in one generation or not at all. A 409 means someone
 * wrote in between; the route is read again and the rules recomputed on it. After a write the
 * router waits, briefly, for the Gateway controllers that report on the route to accept the new
 * generation with its backendRefs resolved, and fails when one refuses it (`Accepted=False`).
 */
import { setTimeout as delay } from 'node:timers/promises';
import { OperationError, UsageError } from '../../errors.js';
import { checkNamespace } from '../../kube/connect.js';
import { missingPermissions, requireGranted, requireService, retryOnConflict } from '../../kube/access.js';
import { explainKubeError, type KubeClient, type KubeObject } from '../../kube/client.js';
import { ACCEPT_TIMEOUT_MS, acceptance, checkRouteCapacity, decodeRules, desiredRules, gatewayWeights, rulesHash, type GatewayBackends, type HTTPRouteRule, type RouteParentStatus } from './routes.js';
import {
  differences, driftOf, liveRoleVersions, roleRoutes, roleVersions, rolesFor, ROLES, servedVersions, versionRoutes, writeAnnotations,
  type Role,
  fenceAnnotation,
  refuseStaleFence,
} from '../kube-common.js';
import type { ApplyResult, LiveRoutes, RouteSpec, Router, Verification } from '../router.js';

const GROUP = 'gateway.networking.k8s.io';

/** What the router needs to know. */
export interface GatewayApiRouterOptions extends GatewayBackends {
  httpRoute: string;
  /** Gateways the route attaches to, used only when Cutover creates it. */
  parentRefs?: Array<{ name: string; namespace?: string; sectionName?: string }>;
  hostnames?: string[];
  /** The kubernetes workload creates the canary Service on its first scale-up: preflight does not ask for it. */
  canaryServiceByWorkload?: boolean;
  /** How long a write waits for a reporting controller to accept it (default 5 s). */
  acceptTimeoutMs?: number;
  /** Interval of that wait's reads (default 250 ms). */
  acceptPollMs?: number;
}

/** An HTTPRoute as read. */
interface HTTPRoute extends KubeObject {
  spec: { parentRefs?: unknown[]; hostnames?: string[]; rules?: HTTPRouteRule[]; [field: string]: unknown };
  status?: { parents?: RouteParentStatus[] };
}

/** Router over one HTTPRoute. */
export class GatewayApiRouter implements Router {
  /** Provider name as in config. */
  readonly type = 'gateway-api';
  private readonly label: string;

  /** @param kube the cluster connection (its namespace holds the route and the Services). */
  constructor(
    private readonly options: GatewayApiRouterOptions,
    private readonly kube: KubeClient,
  ) {
    this.label = `HTTPRoute ${options.httpRoute}`;
  }

  private get path(): string {
    return `/apis/${GROUP}/v1/namespaces/${this.kube.namespace}/httproutes/${this.options.httpRoute}`;
  }

  /**
   * The namespace, the HTTPRoute API, the permissions (all missing ones named at once), the route
   * or what is needed to create it, and both Services.
   */
  async preflight(): Promise<void> {
    await checkNamespace(this.kube);
    const api = await this.kube.get<KubeObject & { resources?: Array<{ name: string }> }>(`/apis/${GROUP}/v1`).catch((e: unknown) => Promise.reject(explainKubeError(e, `reading the ${GROUP}/v1 API`)));
    if (!api?.resources?.some((r) => r.name === 'httproutes')) {
      throw new UsageError(`the cluster of context ${this.kube.context} does not serve HTTPRoutes (${GROUP}/v1): the Gateway API CRDs are not installed`, 'install the Gateway API CRDs (standard channel): https://gateway-api.sigs.k8s.io/guides/#installing-gateway-api');
    }
    const missing = await missingPermissions(this.kube, [
      { group: GROUP, resource: 'httproutes', verbs: ['get', 'update'], name: this.options.httpRoute },
      { group: GROUP, resource: 'httproutes', verbs: ['create'] },
      { group: '', resource: 'services', verbs: ['get'], name: this.options.service },
      { group: '', resource: 'services', verbs: ['get'], name: this.options.canaryService },
    ]);
    const route = missing.some((m) => m.resource === 'httproutes' && m.verbs.includes('get')) ? undefined : await this.readRoute();
    // create is needed only while the route does not exist
    requireGranted(this.kube, route ? missing.filter((m) => !m.verbs.includes('create')) : missing);
    if (!route) this.requireParentRefs();
    await requireService(this.kube, this.options.service);
    if (!this.options.canaryServiceByWorkload) await requireService(this.kube, this.options.canaryService);
  }

  /** Refuse, without I/O, what the route can never carry: too many pins, a served version without a role, a split too fine. */
  check(spec: RouteSpec): void {
    checkRouteCapacity(spec);
    if (spec.roles && Object.keys(spec.roles).length > 0) gatewayWeights(roleRoutes(spec, spec.roles, this.label).weights);
  }

  /** Write the rules if they differ (one compare-and-swap PUT, retried on 409), then wait for acceptance. */
  async apply(spec: RouteSpec): Promise<ApplyResult> {
    this.check(spec);
    const result = await retryOnConflict(this.label, () => this.applyOnce(spec));
    if (result.written) await this.awaitAccepted(result.written);
    return result.outcome;
  }

  /** The live routing by version, through the roles annotation of the last write (empty weights without a route). */
  async read(): Promise<LiveRoutes> {
    const route = await this.readRoute();
    if (!route) return { weights: {}, orgs: {}, unpinned: { mode: 'weighted' } };
    const routes = decodeRules(route.spec.rules ?? [], this.options);
    return { ...versionRoutes(routes, liveRoleVersions(route.metadata.annotations), this.services), ...(route.metadata.generation !== undefined ? { generation: route.metadata.generation } : {}) };
  }

  /**
   * Compare the live rules with `spec`, then what the controllers say: accepted is verified, a
   * refusal is a mismatch, and with no controller reporting the data plane cannot be confirmed.
   */
  async verify(spec: RouteSpec): Promise<Verification> {
    const route = await this.readRoute();
    if (!route) return { status: 'mismatch', live: { weights: {} }, detail: `${this.label} not found in namespace ${this.kube.namespace}` };
    const versions = liveRoleVersions(route.metadata.annotations);
    const roles = rolesFor(spec, versions);
    const want = roleRoutes(spec, roles, this.label);
    const live = decodeRules(route.spec.rules ?? [], this.options);
    const served = roleVersions(roles, servedVersions(spec));
    const diff = differences(live, want, 'the spec asks');
    for (const role of ROLES) {
      if (want.weights[role] > 0 && served[role] !== versions[role]) diff.push(`the ${role} Service served ${versions[role] ?? 'an unrecorded version'} at the last write where the spec has ${served[role]}`);
    }
    const liveRoutes: LiveRoutes = { ...versionRoutes(live, versions, this.services), generation: route.metadata.generation ?? 0 };
    if (diff.length > 0) return { status: 'mismatch', live: liveRoutes, detail: `${this.label}: ${diff.join('; ')}` };
    const verdict = acceptance(route.status?.parents, route.metadata.generation ?? 0);
    if (verdict.state === 'accepted') return { status: 'verified', live: liveRoutes };
    if (verdict.state === 'rejected') return { status: 'mismatch', live: liveRoutes, detail: `${this.label} carries the routes, but ${verdict.detail}` };
    if (verdict.state === 'pending') return { status: 'unverifiable', detail: `${this.label} carries the routes; ${verdict.detail}` };
    if (verdict.state === 'unresolved') {
      return { status: 'unverifiable', detail: `${this.label} carries the routes and is accepted, but a backendRef does not resolve: ${verdict.detail}; Gateway API answers requests routed to an unresolved backend with an error (500) until it resolves` };
    }
    return { status: 'unverifiable', detail: `${this.label} carries the routes, but no Gateway controller reports on it (status.parents is empty): the data plane cannot be confirmed` };
  }

  /**
   * Rules back to one weighted rule, 100% on the Service of `fallbackVersion`. The route itself
   * stays, even if Cutover created it: a Gateway still routing by it would answer 404 without it.
   */
  async removeManaged(fallbackVersion: string): Promise<void> {
    const route = await this.readRoute();
    if (!route) return;
    const versions = liveRoleVersions(route.metadata.annotations);
    const role: Role = ROLES.find((r) => versions[r] === fallbackVersion) ?? 'stable';
    await this.apply({ weights: { [fallbackVersion]: 100 }, orgs: {}, unpinned: { mode: 'weighted' }, roles: { [fallbackVersion]: role } });
  }

  private get services(): Record<Role, string> {
    return { stable: this.options.service, canary: this.options.canaryService };
  }

  private async readRoute(): Promise<HTTPRoute | undefined> {
    return this.kube.get<HTTPRoute>(this.path).catch((e: unknown) => Promise.reject(explainKubeError(e, `reading ${this.label}`)));
  }

  private requireParentRefs(): void {
    if (!this.options.parentRefs?.length) {
      throw new UsageError(`${this.label} not found in namespace ${this.kube.namespace}, and Cutover can create it only with router.parentRefs`, 'add router.parentRefs (the Gateway the route attaches to, e.g. [{name: public-gateway, namespace: gateways}]) to deploy.yaml, or create the HTTPRoute yourself');
    }
  }

  /** One read, compute, compare and (when different) compare-and-swap write. */
  private async applyOnce(spec: RouteSpec): Promise<{ outcome: ApplyResult; written?: HTTPRoute }> {
    const route = await this.readRoute();
    refuseStaleFence(this.label, route?.metadata.annotations, spec.fence);
    const roles = rolesFor(spec, liveRoleVersions(route?.metadata.annotations));
    const routes = roleRoutes(spec, roles, this.label);
    const versions = roleVersions(roles, servedVersions(spec));
    const rules = desiredRules(routes, this.options, versions.canary !== undefined);
    const hash = rulesHash(rules);
    const annotations = writeAnnotations(versions, hash, routes);
    if (!route) {
      this.requireParentRefs();
      const created = await this.kube.create<HTTPRoute>(this.path.slice(0, this.path.lastIndexOf('/')), {
        apiVersion: `${GROUP}/v1`,
        kind: 'HTTPRoute',
        metadata: { name: this.options.httpRoute, labels: { 'app.kubernetes.io/managed-by': 'cutover' }, annotations: { ...annotations, ...fenceAnnotation(undefined, spec.fence) } },
        spec: { parentRefs: this.options.parentRefs, ...(this.options.hostnames?.length ? { hostnames: this.options.hostnames } : {}), rules },
      });
      return { outcome: { changed: true, generation: created.metadata.generation ?? 1 }, written: created };
    }
    const liveRules = route.spec.rules ?? [];
    const liveHash = rulesHash(liveRules);
    const generation = route.metadata.generation ?? 0;
    const own = route.metadata.annotations ?? {};
    if (liveHash === hash && Object.entries(annotations).every(([k, v]) => own[k] === v)) return { outcome: { changed: false, generation } };
    const decoded = decodeRules(liveRules, this.options);
    const drift = liveHash === hash ? undefined : driftOf(`${this.label}`, own, liveHash, decoded, decoded.foreign > 0 ? [`${decoded.foreign} rule(s) Cutover did not write`] : []);
    const written = await this.kube.replace<HTTPRoute>(this.path, { ...route, metadata: { ...route.metadata, annotations: { ...own, ...annotations, ...fenceAnnotation(own, spec.fence) } }, spec: { ...route.spec, rules } });
    const back = decodeRules(written.spec.rules ?? [], this.options);
    const off = differences(back, routes, 'Cutover wrote');
    if (off.length > 0 || back.foreign > 0) throw new OperationError(`${this.label} does not read back as written (an admission webhook may rewrite it): ${off.join('; ') || `${back.foreign} foreign rule(s)`}`, '`deploy resume` writes it again');
    return { outcome: { changed: true, generation: written.metadata.generation ?? generation, ...(drift ? { drift } : {}) }, written };
  }

  /**
   * Wait until every controller that reports on the route accepted the written generation with
   * its backendRefs resolved. A refusal (`Accepted=False`) fails the apply; unresolved refs, no
   * controller reporting, or none done within the timeout do not (`verify` then says the data
   * plane is unconfirmed, naming what does not resolve): a ref to a Service the controller has
   * not seen yet resolves on its own, and a write must not fail for racing it.
   */
  private async awaitAccepted(written: HTTPRoute): Promise<void> {
    const generation = written.metadata.generation ?? 0;
    const deadline = Date.now() + (this.options.acceptTimeoutMs ?? ACCEPT_TIMEOUT_MS);
    let route: HTTPRoute | undefined = written;
    for (;;) {
      const verdict = acceptance(route?.status?.parents, generation);
      if (verdict.state === 'rejected') {
        throw new OperationError(`${this.label} generation ${generation} was not accepted: ${verdict.detail}`, `kubectl describe httproute ${this.options.httpRoute} -n ${this.kube.namespace} shows every condition; fix the route or the Gateway, then \`deploy resume\``);
      }
      if ((verdict.state !== 'pending' && verdict.state !== 'unresolved') || Date.now() >= deadline) return;
      await delay(this.options.acceptPollMs ?? 250);
      route = await this.readRoute();
    }
  }
}
