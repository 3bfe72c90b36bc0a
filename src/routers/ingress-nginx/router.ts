/**
 * The `ingress-nginx` router: the user's stable Ingress stays as it is, and Cutover manages its
 * canary twin `<ingress>-canary` — the same hosts and paths sent to the canary Service, with
 * `canary-weight` for the split and `canary-by-header(-pattern)` for orgs pinned to the canary.
 * The twin is created on the first apply and re-synced whenever the stable Ingress's paths change.
 *
 * Every write is one PUT of the canary Ingress just read, with its resourceVersion (a POST when it
 * does not exist yet): weights, pins and the paths change together or not at all. A 409 means
 * someone wrote in between; both Ingresses are read again and the write recomputed.
 *
 * What ingress-nginx cannot carry is refused before any write (`ingressRoutes`): two versions at
 * most, and pins to stable only while the canary weight is 0.
 */
import { OperationError, UsageError } from '../../errors.js';
import { checkNamespace } from '../../kube/connect.js';
import { missingPermissions, requireGranted, requireService, retryOnConflict } from '../../kube/access.js';
import { explainKubeError, type KubeClient, type KubeObject } from '../../kube/client.js';
import {
  differences, driftOf, liveRoleVersions, roleVersions, rolesFor, ROLES, servedVersions, versionRoutes, writeAnnotations,
  type Role,
  fenceAnnotation,
  refuseStaleFence,
} from '../kube-common.js';
import { canaryAnnotations, canaryHash, canaryIngressSpec, carriedRoutes, classAnnotation, decodeCanaryAnnotations, ingressRoutes, managedAnnotations, type IngressSpec } from './routes.js';
import type { ApplyResult, LiveRoutes, RouteSpec, Router, Verification } from '../router.js';

const GROUP = 'networking.k8s.io';

/** What the router needs to know. */
export interface IngressNginxRouterOptions {
  /** The stable Ingress (the user's); the canary one is `<ingress>-canary`. */
  ingress: string;
  service: string;
  canaryService: string;
  orgHeader: string;
  /** The kubernetes workload creates the canary Service on its first scale-up: preflight does not ask for it. */
  canaryServiceByWorkload?: boolean;
}

/** An Ingress as read. */
interface Ingress extends KubeObject {
  spec: IngressSpec;
}

/** Router over a stable Ingress and its canary twin. */
export class IngressNginxRouter implements Router {
  /** Provider name as in config. */
  readonly type = 'ingress-nginx';

  /** @param kube the cluster connection (its namespace holds the Ingresses and the Services). */
  constructor(
    private readonly options: IngressNginxRouterOptions,
    private readonly kube: KubeClient,
  ) {}

  private get canaryName(): string {
    return `${this.options.ingress}-canary`;
  }

  private pathOf(name: string): string {
    return `/apis/${GROUP}/v1/namespaces/${this.kube.namespace}/ingresses/${name}`;
  }

  /** The namespace, the permissions (all missing ones named at once), the stable Ingress and both Services. */
  async preflight(): Promise<void> {
    await checkNamespace(this.kube);
    const missing = await missingPermissions(this.kube, [
      { group: GROUP, resource: 'ingresses', verbs: ['get'], name: this.options.ingress },
      { group: GROUP, resource: 'ingresses', verbs: ['get', 'update'], name: this.canaryName },
      { group: GROUP, resource: 'ingresses', verbs: ['create'] },
      { group: '', resource: 'services', verbs: ['get'], name: this.options.service },
      { group: '', resource: 'services', verbs: ['get'], name: this.options.canaryService },
    ]);
    const canary = missing.some((m) => m.name === this.canaryName && m.verbs.includes('get')) ? undefined : await this.readIngress(this.canaryName);
    // create is needed only while the canary Ingress does not exist
    requireGranted(this.kube, canary ? missing.filter((m) => !m.verbs.includes('create')) : missing);
    const stable = await this.readStable();
    canaryIngressSpec(stable.spec, this.options.ingress, this.options.service, this.options.canaryService);
    await requireService(this.kube, this.options.service);
    if (!this.options.canaryServiceByWorkload) await requireService(this.kube, this.options.canaryService);
  }

  /** Refuse, without I/O, what ingress-nginx can never carry (see `ingressRoutes`). */
  check(spec: RouteSpec): void {
    ingressRoutes(spec, spec.roles && Object.keys(spec.roles).length > 0 ? spec.roles : undefined);
  }

  /** Write the canary Ingress if it differs (one compare-and-swap write, retried on 409), read back. */
  async apply(spec: RouteSpec): Promise<ApplyResult> {
    this.check(spec);
    return retryOnConflict(`Ingress ${this.canaryName}`, () => this.applyOnce(spec));
  }

  /**
   * The live routing by version. Pins to stable are not visible: the canary Ingress carries them
   * as its weight of 0, which sends every org not in its pattern to stable. Without a canary
   * Ingress the weights are empty: all traffic is on the stable Ingress, whose version only the
   * engine's record knows.
   */
  async read(): Promise<LiveRoutes> {
    const canary = await this.readIngress(this.canaryName);
    if (!canary) return { weights: {}, orgs: {}, unpinned: { mode: 'weighted' } };
    const routes = decodeCanaryAnnotations(canary.metadata.annotations, this.options.orgHeader);
    return { ...versionRoutes(routes, liveRoleVersions(canary.metadata.annotations), this.services), generation: canary.metadata.generation ?? 0 };
  }

  /** Compare the canary Ingress with `spec` and with the stable Ingress's current paths. */
  async verify(spec: RouteSpec): Promise<Verification> {
    const [stable, canary] = await Promise.all([this.readStable(), this.readIngress(this.canaryName)]);
    if (!canary) return { status: 'mismatch', live: { weights: {} }, detail: `Ingress ${this.canaryName} not found in namespace ${this.kube.namespace}` };
    const versions = liveRoleVersions(canary.metadata.annotations);
    const roles = rolesFor(spec, versions);
    const want = carriedRoutes(ingressRoutes(spec, roles)!);
    const live = decodeCanaryAnnotations(canary.metadata.annotations, this.options.orgHeader);
    const diff = differences(live, want, 'the spec asks');
    const served = roleVersions(roles, servedVersions(spec));
    for (const role of ROLES) {
      if (want.weights[role] > 0 && served[role] !== versions[role]) diff.push(`the ${role} Service served ${versions[role] ?? 'an unrecorded version'} at the last write where the spec has ${served[role]}`);
    }
    const desiredSpec = canaryIngressSpec(stable.spec, this.options.ingress, this.options.service, this.options.canaryService);
    if (canaryHash(desiredSpec, {}) !== canaryHash(canary.spec, {})) diff.push(`its hosts and paths no longer mirror Ingress ${this.options.ingress}'s`);
    const liveRoutes: LiveRoutes = { ...versionRoutes(live, versions, this.services), generation: canary.metadata.generation ?? 0 };
    if (diff.length > 0) return { status: 'mismatch', live: liveRoutes, detail: `Ingress ${this.canaryName}: ${diff.join('; ')}` };
    return { status: 'verified', live: liveRoutes };
  }

  /**
   * Delete the canary Ingress (Cutover created it), leaving all traffic on the stable Ingress.
   * Only when `fallbackVersion` runs in the canary Service is the canary kept, at weight 100.
   */
  async removeManaged(fallbackVersion: string): Promise<void> {
    await retryOnConflict(`Ingress ${this.canaryName}`, async () => {
      const canary = await this.readIngress(this.canaryName);
      if (!canary) return;
      const versions = liveRoleVersions(canary.metadata.annotations);
      if (versions.canary === fallbackVersion && versions.stable !== fallbackVersion) {
        await this.applyOnce({ weights: { [fallbackVersion]: 100 }, orgs: {}, unpinned: { mode: 'weighted' }, roles: { [fallbackVersion]: 'canary' } });
        return;
      }
      await this.kube.delete(this.pathOf(this.canaryName), canary.metadata.resourceVersion);
    });
  }

  private get services(): Record<Role, string> {
    return { stable: this.options.service, canary: this.options.canaryService };
  }

  private async readIngress(name: string): Promise<Ingress | undefined> {
    return this.kube.get<Ingress>(this.pathOf(name)).catch((e: unknown) => Promise.reject(explainKubeError(e, `reading Ingress ${name}`)));
  }

  private async readStable(): Promise<Ingress> {
    const stable = await this.readIngress(this.options.ingress);
    if (!stable) {
      throw new UsageError(`Ingress ${this.options.ingress} not found in namespace ${this.kube.namespace}: the ingress-nginx router needs the stable Ingress (its paths sent to Service ${this.options.service})`, 'create it, or fix router.ingress in deploy.yaml');
    }
    return stable;
  }

  /** One read of both Ingresses, compute, compare and (when different) compare-and-swap write. */
  private async applyOnce(spec: RouteSpec): Promise<ApplyResult> {
    const [stable, canary] = await Promise.all([this.readStable(), this.readIngress(this.canaryName)]);
    refuseStaleFence(`Ingress ${this.canaryName}`, canary?.metadata.annotations, spec.fence);
    const roles = rolesFor(spec, liveRoleVersions(canary?.metadata.annotations));
    const routes = ingressRoutes(spec, roles)!;
    const carried = carriedRoutes(routes);
    const desiredSpec = canaryIngressSpec(stable.spec, this.options.ingress, this.options.service, this.options.canaryService);
    const routing = { ...classAnnotation(stable.metadata.annotations), ...canaryAnnotations(carried, this.options.orgHeader) };
    const hash = canaryHash(desiredSpec, routing);
    const own = writeAnnotations(roleVersions(roles, servedVersions(spec)), hash, carried);
    if (!canary) {
      const created = await this.kube.create<Ingress>(this.pathOf('').slice(0, -1), {
        apiVersion: `${GROUP}/v1`,
        kind: 'Ingress',
        metadata: { name: this.canaryName, labels: { 'app.kubernetes.io/managed-by': 'cutover' }, annotations: { ...routing, ...own, ...fenceAnnotation(undefined, spec.fence) } },
        spec: desiredSpec,
      });
      return { changed: true, generation: created.metadata.generation ?? 1 };
    }
    const annotations = canary.metadata.annotations ?? {};
    const liveHash = canaryHash(canary.spec, annotations);
    const generation = canary.metadata.generation ?? 0;
    if (liveHash === hash && Object.entries(own).every(([k, v]) => annotations[k] === v)) return { changed: false, generation };
    const drift = liveHash === hash ? undefined : driftOf(`Ingress ${this.canaryName}`, annotations, liveHash, decodeCanaryAnnotations(annotations, this.options.orgHeader));
    const managed = managedAnnotations(annotations);
    const kept = Object.fromEntries(Object.entries(annotations).filter(([k]) => !(k in managed)));
    const written = await this.kube.replace<Ingress>(this.pathOf(this.canaryName), { ...canary, metadata: { ...canary.metadata, annotations: { ...kept, ...routing, ...own, ...fenceAnnotation(annotations, spec.fence) } }, spec: desiredSpec });
    if (canaryHash(written.spec, written.metadata.annotations) !== hash) {
      throw new OperationError(`Ingress ${this.canaryName} does not read back as written (an admission webhook may rewrite it)`, '`deploy resume` writes it again');
    }
    return { changed: true, generation: written.metadata.generation ?? generation, ...(drift ? { drift } : {}) };
  }
}
