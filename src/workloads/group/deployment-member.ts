/**
 * A Deployment in a release group. Its canary Deployment is the kubernetes workload's (that code
 * is used, not copied): the traffic member is exactly today's workload; a consumer or a worker
 * has no weight, so its canary takes its share of the member's replicas (shares.ts) and its
 * stable Deployment gives up as many, the count it had kept in an annotation on it so that a
 * resumed driver still knows the member's size.
 */
import { UsageError } from '../../errors.js';
import { retryOnConflict } from '../../kube/access.js';
import { explainKubeError } from '../../kube/client.js';
import type { TargetReadiness } from '../../routers/router.js';
import { rolloutStatus, type DeploymentObject } from '../kubernetes/deployment-spec.js';
import { KubernetesWorkload, type KubeWorkloadOptions } from '../kubernetes/workload.js';
import type { MemberStatus } from '../workload.js';
import { named, type Member } from './member.js';
import { queueShare, type MemberShare } from './shares.js';

/** The stable Deployment's replicas before a group scaled it down, kept on it meanwhile. */
export const REPLICAS_ANNOTATION = 'cutover.dev/replicas';

/** What a Deployment member needs. */
export interface DeploymentMemberOptions extends KubeWorkloadOptions {
  name: string;
  role: 'traffic' | 'consumer' | 'worker';
  /** Consumers and workers: the weight of the first step with a candidate replica (default 25). */
  firstCandidateWeight?: number;
}

/** A traffic, consumer or worker member. */
export class DeploymentMember implements Member {
  readonly name: string;
  readonly role: DeploymentMemberOptions['role'];
  private readonly deployments: KubernetesWorkload;

  constructor(private readonly opts: DeploymentMemberOptions) {
    this.name = opts.name;
    this.role = opts.role;
    this.deployments = new KubernetesWorkload(opts);
  }

  preflight(): Promise<void> {
    return this.deployments.preflight();
  }

  async scaleFor(candidate: string, weight: number): Promise<TargetReadiness> {
    if (this.role === 'traffic') return named(this, await this.deployments.scaleFor(candidate, weight));
    let share: MemberShare = { candidate: 0, stable: 0 };
    const canary = await this.deployments.scaleCanary(candidate, (stable) => {
      share = queueShare(this.size(stable), weight, this.opts.firstCandidateWeight);
      return share.candidate;
    });
    // The stable side gives up its replicas only once the candidate's are ready, so the member never runs short.
    if (!canary.ready) return named(this, canary);
    const stable = await this.scaleStable(share.stable);
    return named(this, { ...stable, detail: `${canary.detail}; ${stable.detail}` });
  }

  async promote(candidate: string): Promise<TargetReadiness> {
    const promoted = await this.deployments.promote(candidate);
    if (this.role === 'traffic' || !promoted.ready) return named(this, promoted);
    // The stable Deployment runs the candidate now; it gets its whole size back.
    return named(this, await this.scaleStable());
  }

  async restoreStable(stable: string): Promise<void> {
    await this.deployments.restoreStable(stable);
    if (this.role !== 'traffic') await this.scaleStable();
    await this.deployments.retire();
  }

  async retire(): Promise<void> {
    if (this.role !== 'traffic') await this.scaleStable();
    await this.deployments.retire();
  }

  async describe(): Promise<MemberStatus> {
    const [status] = await this.deployments.describe();
    return { ...status!, name: this.name, role: this.role };
  }

  /** The member's size: from deploy.yaml, else what the stable Deployment had before it was scaled down. */
  private size(stable: DeploymentObject): number {
    const kept = Number(stable.metadata.annotations?.[REPLICAS_ANNOTATION]);
    return this.opts.replicas ?? (Number.isInteger(kept) && kept > 0 ? kept : (stable.spec.replicas ?? 1));
  }

  /** Scale the stable Deployment to `replicas` (default: its whole size) and answer whether it has. */
  private async scaleStable(replicas?: number): Promise<TargetReadiness> {
    const kube = await this.opts.kube();
    const path = `/apis/apps/v1/namespaces/${kube.namespace}/deployments/${this.opts.deployment}`;
    return retryOnConflict(`Deployment ${this.opts.deployment}`, async () => {
      const stable = await kube.get<DeploymentObject>(path).catch((e: unknown) => Promise.reject(explainKubeError(e, `reading Deployment ${this.opts.deployment}`)));
      if (!stable) throw new UsageError(`Deployment ${this.opts.deployment} not found in namespace ${kube.namespace}`, `create it, or fix member ${this.name} in deploy.yaml`);
      const size = this.size(stable);
      const want = replicas ?? size;
      const annotations = { ...stable.metadata.annotations };
      if (want < size) annotations[REPLICAS_ANNOTATION] = String(size);
      else delete annotations[REPLICAS_ANNOTATION];
      const same = stable.spec.replicas === want && stable.metadata.annotations?.[REPLICAS_ANNOTATION] === annotations[REPLICAS_ANNOTATION];
      const live = same ? stable : await kube.replace(path, { ...stable, metadata: { ...stable.metadata, annotations }, spec: { ...stable.spec, replicas: want } });
      const answer = rolloutStatus(live, want);
      const extra = (live.status?.replicas ?? 0) - want;
      return answer.ready && extra > 0 ? { ready: false, detail: `${extra} more pods of ${this.opts.deployment} still to stop` } : answer;
    });
  }
}
