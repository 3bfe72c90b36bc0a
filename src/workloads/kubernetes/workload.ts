/**
 * The `kubernetes` workload: the stable Deployment serves the stable version, a canary Deployment
 * (`<deployment>-canary`, derived from it) runs the candidate, scaled at each step in proportion
 * to the traffic weight. A promotion gives the stable Deployment the canary's pod template and
 * waits for it to roll out; afterwards the canary is scaled to zero. Every write is a
 * compare-and-swap on the resourceVersion just read, so an edit by someone else is re-read,
 * never overwritten.
 */
import { OperationError, UsageError } from '../../errors.js';
import { missingPermissions, requireGranted, retryOnConflict, type Permission } from '../../kube/access.js';
import { explainKubeError, KubeApiError, type KubeClient, type KubeObject } from '../../kube/client.js';
import { checkNamespace } from '../../kube/connect.js';
import type { TargetReadiness } from '../../routers/router.js';
import {
  canaryDeployment,
  canaryReplicas,
  promotedTemplate,
  rolloutStatus,
  versionOf,
  withImage,
  ROLE_LABEL,
  type DeploymentObject,
} from './deployment-spec.js';
import type { MemberStatus, Workload } from '../workload.js';

/** What the workload needs from deploy.yaml. */
export interface KubeWorkloadOptions {
  kube: () => Promise<KubeClient>;
  deployment: string;
  canaryDeployment: string;
  /** Image of each version. */
  images: Record<string, string | undefined>;
  container?: string;
  /** Replicas at 100%; default: the stable Deployment's. */
  replicas?: number;
  /** The stable Service; when given, its canary twin is created if missing. */
  service?: string;
  canaryService?: string;
}

/** Deployments driven through the Kubernetes API. */
export class KubernetesWorkload implements Workload {
  readonly type = 'kubernetes';
  /** The namespace of the connection, known once connected. */
  private ns = '';

  constructor(private readonly opts: KubeWorkloadOptions) {}

  private path(name: string): string {
    return `/apis/apps/v1/namespaces/${this.ns}/deployments/${name}`;
  }

  private async client(): Promise<KubeClient> {
    const kube = await this.opts.kube();
    this.ns = kube.namespace;
    return kube;
  }

  /** Read a Deployment; a missing stable Deployment is the user's to fix (exit 2). */
  private async deployment(kube: KubeClient, name: string): Promise<DeploymentObject | undefined> {
    try {
      return await kube.get<DeploymentObject>(this.path(name));
    } catch (e) {
      throw explainKubeError(e, `reading Deployment ${name} in namespace ${kube.namespace}`);
    }
  }

  private async stable(kube: KubeClient): Promise<DeploymentObject> {
    const d = await this.deployment(kube, this.opts.deployment);
    if (!d) throw new UsageError(`Deployment ${this.opts.deployment} not found in namespace ${kube.namespace} (context ${kube.context})`, 'create it, or fix workload.deployment / kubernetes.namespace in deploy.yaml');
    return d;
  }

  async preflight(): Promise<void> {
    const kube = await this.client();
    await checkNamespace(kube);
    const stable = await this.stable(kube);
    if (this.opts.container && !stable.spec.template.spec.containers.some((c) => c.name === this.opts.container)) {
      throw new UsageError(`Deployment ${this.opts.deployment} has no container ${this.opts.container} (it has ${stable.spec.template.spec.containers.map((c) => c.name).join(', ')})`, 'fix workload.container');
    }
    const wanted: Permission[] = [
      { group: 'apps', resource: 'deployments', verbs: ['update'], name: this.opts.deployment },
      { group: 'apps', resource: 'deployments', verbs: ['create'] },
      { group: 'apps', resource: 'deployments', verbs: ['get', 'update'], name: this.opts.canaryDeployment },
    ];
    if (this.opts.service && this.opts.canaryService) {
      wanted.push({ group: '', resource: 'services', verbs: ['get'], name: this.opts.canaryService }, { group: '', resource: 'services', verbs: ['create'] });
    }
    requireGranted(kube, await missingPermissions(kube, wanted));
  }

  async scaleFor(candidate: string, weight: number): Promise<TargetReadiness> {
    return this.scaleCanary(candidate, (stable) => canaryReplicas(this.opts.replicas ?? stable.spec.replicas ?? 1, weight));
  }

  /**
   * Run `candidate` in the canary Deployment at the replicas `replicasOf` derives from the stable
   * Deployment just read (made from it when missing), and answer whether they are ready. A
   * release group's consumers use this with their own share of replicas; `scaleFor` with the
   * traffic weight's.
   */
  async scaleCanary(candidate: string, replicasOf: (stable: DeploymentObject) => number): Promise<TargetReadiness> {
    const kube = await this.client();
    const image = this.opts.images[candidate];
    if (!image) throw new UsageError(`version ${candidate} has no image in deploy.yaml`, `add versions.${candidate}.image`);
    await this.ensureCanaryService(kube);
    return retryOnConflict(`Deployment ${this.opts.canaryDeployment}`, async () => {
      const stable = await this.stable(kube);
      const replicas = replicasOf(stable);
      const live = await this.deployment(kube, this.opts.canaryDeployment);
      const desired = canaryDeployment(stable, this.opts.canaryDeployment, image, candidate, replicas, this.opts.container);
      if (!live) return rolloutStatus(await kube.create<DeploymentObject>(`/apis/apps/v1/namespaces/${kube.namespace}/deployments`, desired), replicas);
      if (live.metadata.labels?.[ROLE_LABEL] !== 'canary') {
        throw new UsageError(`Deployment ${this.opts.canaryDeployment} exists and is not a canary Cutover made`, 'remove it or name another with workload.canaryDeployment');
      }
      const sameTemplate = versionOf(live) === candidate && live.spec.template.spec.containers.some((c) => c.image === image);
      if (sameTemplate && live.spec.replicas === replicas) return rolloutStatus(live, replicas);
      const next = { ...live, spec: { ...live.spec, replicas, ...(sameTemplate ? {} : { template: desired.spec.template }) } };
      return rolloutStatus(await kube.replace(this.path(this.opts.canaryDeployment), next), replicas);
    });
  }

  async promote(candidate: string): Promise<TargetReadiness> {
    const kube = await this.client();
    return retryOnConflict(`Deployment ${this.opts.deployment}`, async () => {
      const stable = await this.stable(kube);
      if (versionOf(stable) === candidate) return rolloutStatus(stable, stable.spec.replicas ?? 1);
      const canary = await this.deployment(kube, this.opts.canaryDeployment);
      if (!canary || versionOf(canary) !== candidate) {
        throw new OperationError(`cannot promote ${candidate}: Deployment ${this.opts.canaryDeployment} does not run it`, 'run `deploy status`; the canary was changed outside Cutover');
      }
      const written = await kube.replace(this.path(this.opts.deployment), { ...stable, spec: { ...stable.spec, template: promotedTemplate(stable, canary) } });
      return rolloutStatus(written, written.spec.replicas ?? 1);
    });
  }

  async restoreStable(stableVersion: string): Promise<void> {
    const image = this.opts.images[stableVersion];
    const kube = await this.client();
    await retryOnConflict(`Deployment ${this.opts.deployment}`, async () => {
      const stable = await this.stable(kube);
      if (versionOf(stable) === stableVersion || versionOf(stable) === undefined) return;
      if (!image) throw new OperationError(`cannot put Deployment ${this.opts.deployment} back on ${stableVersion}: no image for it in deploy.yaml`, `add versions.${stableVersion}.image, then \`kubectl rollout undo deployment/${this.opts.deployment}\``);
      await kube.replace(this.path(this.opts.deployment), { ...stable, spec: { ...stable.spec, template: withImage(stable.spec.template, image, stableVersion, this.opts.container) } });
    });
  }

  async retire(): Promise<void> {
    const kube = await this.client();
    await retryOnConflict(`Deployment ${this.opts.canaryDeployment}`, async () => {
      const canary = await this.deployment(kube, this.opts.canaryDeployment);
      if (canary && canary.spec.replicas !== 0) await kube.replace(this.path(this.opts.canaryDeployment), { ...canary, spec: { ...canary.spec, replicas: 0 } });
    });
  }

  async describe(): Promise<MemberStatus[]> {
    const kube = await this.client();
    const [stable, canary] = await Promise.all([this.stable(kube), this.deployment(kube, this.opts.canaryDeployment)]);
    const byVersion = new Map<string, { ready: number; desired: number }>();
    for (const d of [stable, canary]) {
      if (!d || (d !== stable && !d.spec.replicas && !d.status?.readyReplicas)) continue;
      const version = this.versionRun(d);
      const seen = byVersion.get(version) ?? { ready: 0, desired: 0 };
      byVersion.set(version, { ready: seen.ready + (d.status?.readyReplicas ?? 0), desired: seen.desired + (d.spec.replicas ?? 0) });
    }
    return [{ name: this.opts.deployment, versions: [...byVersion].map(([version, n]) => ({ version, ...n })) }];
  }

  /** The version a Deployment runs: its label, else the version whose image it has, else the image. */
  private versionRun(d: DeploymentObject): string {
    const labelled = versionOf(d);
    if (labelled) return labelled;
    const containers = d.spec.template.spec.containers;
    const image = (this.opts.container ? containers.find((c) => c.name === this.opts.container) : containers[0])?.image;
    return Object.entries(this.opts.images).find(([, i]) => i !== undefined && i === image)?.[0] ?? image ?? 'unknown';
  }

  /** The canary Service: a twin of the stable one selecting only canary pods; made when missing. */
  private async ensureCanaryService(kube: KubeClient): Promise<void> {
    const { service, canaryService } = this.opts;
    if (!service || !canaryService) return;
    const base = `/api/v1/namespaces/${kube.namespace}/services`;
    try {
      if (await kube.get(`${base}/${canaryService}`)) return;
      const stable = await kube.get<KubeObject & { spec: { selector?: Record<string, string>; ports?: unknown[]; type?: string } }>(`${base}/${service}`);
      if (!stable) throw new UsageError(`Service ${service} not found in namespace ${kube.namespace}`, 'create it, or fix router.service');
      const deployment = await this.stable(kube);
      const keys = new Set(Object.keys(deployment.spec.selector.matchLabels ?? {}));
      const selector = Object.fromEntries(Object.entries(stable.spec.selector ?? {}).map(([k, v]) => [k, keys.has(k) ? `${v}-canary`.slice(0, 63) : v]));
      await kube.create(base, {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: canaryService, labels: { 'app.kubernetes.io/managed-by': 'cutover', [ROLE_LABEL]: 'canary' } },
        spec: { selector, ports: stable.spec.ports ?? [], ...(stable.spec.type && stable.spec.type !== 'ClusterIP' ? { type: stable.spec.type } : {}) },
      });
    } catch (e) {
      if (e instanceof KubeApiError && e.conflict) return;
      throw e instanceof UsageError ? e : explainKubeError(e, `creating Service ${canaryService}`);
    }
  }
}
