/**
 * A CronJob in a release group. It has no replicas to share: its pod template switches to the
 * candidate at one moment — the promotion, or the step `switchAt` names — and back on rollback.
 * From the switch on, the Jobs it starts run the candidate, and a failed one is a failed gate:
 * `failure` names it and the engine rolls the whole group back.
 *
 * The switch is recorded on the CronJob itself (when, and the image it replaced), so a resumed
 * driver counts only the Jobs started since, and can put back an image deploy.yaml never named.
 */
import { OperationError, UsageError } from '../../errors.js';
import { missingPermissions, requireGranted, retryOnConflict, type Permission } from '../../kube/access.js';
import { explainKubeError, type KubeClient, type KubeObject } from '../../kube/client.js';
import { checkNamespace } from '../../kube/connect.js';
import type { TargetReadiness } from '../../routers/router.js';
import { VERSION_LABEL, withImage, type PodTemplate } from '../kubernetes/deployment-spec.js';
import type { MemberStatus } from '../workload.js';
import type { Member } from './member.js';
import { cronSwitched } from './shares.js';

/** When the CronJob's template last switched version. */
export const SWITCHED_AT_ANNOTATION = 'cutover.dev/switched-at';
/** The image the first switch replaced, to put back on rollback. */
export const STABLE_IMAGE_ANNOTATION = 'cutover.dev/stable-image';

/** The parts of a CronJob Cutover reads and writes. */
export interface CronJobObject extends KubeObject {
  spec: { schedule: string; jobTemplate: { metadata?: { labels?: Record<string, string> }; spec: { template: PodTemplate; [field: string]: unknown } }; [field: string]: unknown };
}

/** The parts of a Job Cutover reads. */
interface JobObject extends KubeObject {
  metadata: KubeObject['metadata'] & { ownerReferences?: { uid: string }[] };
  spec: { template: PodTemplate };
  status?: { active?: number; succeeded?: number; failed?: number; conditions?: { type: string; status: string; reason?: string; message?: string }[] };
}

/** What a CronJob member needs. */
export interface CronJobMemberOptions {
  name: string;
  kube: () => Promise<KubeClient>;
  cronJob: string;
  /** Image of each version. */
  images: Record<string, string | undefined>;
  container?: string;
  /** Weight of the step the template switches at; undefined: at promotion. */
  switchWeight?: number;
  /** On rollback, Jobs of the candidate still running are left to finish (default) or stopped. */
  runningJobs?: 'finish' | 'stop';
  clock?: () => number;
}

/** A cron member. */
export class CronJobMember implements Member {
  readonly role = 'cron' as const;
  readonly name: string;
  private ns = '';

  constructor(private readonly opts: CronJobMemberOptions) {
    this.name = opts.name;
  }

  private async client(): Promise<KubeClient> {
    const kube = await this.opts.kube();
    this.ns = kube.namespace;
    return kube;
  }

  private get path(): string {
    return `/apis/batch/v1/namespaces/${this.ns}/cronjobs/${this.opts.cronJob}`;
  }

  private async cronJob(kube: KubeClient): Promise<CronJobObject> {
    const found = await kube.get<CronJobObject>(this.path).catch((e: unknown) => Promise.reject(explainKubeError(e, `reading CronJob ${this.opts.cronJob}`)));
    if (!found) throw new UsageError(`CronJob ${this.opts.cronJob} not found in namespace ${kube.namespace} (context ${kube.context})`, `create it, or fix member ${this.name}'s cronJob in deploy.yaml`);
    return found;
  }

  async preflight(): Promise<void> {
    const kube = await this.client();
    await checkNamespace(kube);
    const cron = await this.cronJob(kube);
    const containers = cron.spec.jobTemplate.spec.template.spec.containers;
    if (this.opts.container && !containers.some((c) => c.name === this.opts.container)) {
      throw new UsageError(`CronJob ${this.opts.cronJob} has no container ${this.opts.container} (it has ${containers.map((c) => c.name).join(', ')})`, `fix member ${this.name}'s container`);
    }
    const wanted: Permission[] = [
      { group: 'batch', resource: 'cronjobs', verbs: ['get', 'update'], name: this.opts.cronJob },
      { group: 'batch', resource: 'jobs', verbs: ['list', ...(this.opts.runningJobs === 'stop' ? ['delete'] : [])] },
    ];
    requireGranted(kube, await missingPermissions(kube, wanted));
  }

  async scaleFor(candidate: string, weight: number): Promise<TargetReadiness> {
    if (!cronSwitched(weight, this.opts.switchWeight)) {
      return { ready: true, detail: `${this.name}: CronJob ${this.opts.cronJob} switches to ${candidate} at ${this.opts.switchWeight === undefined ? 'promotion' : `${this.opts.switchWeight}%`}` };
    }
    return this.promote(candidate);
  }

  /** The template on the candidate: its next Job runs it. Nothing to wait for. */
  async promote(candidate: string): Promise<TargetReadiness> {
    await this.switchTo(candidate);
    return { ready: true, detail: `${this.name}: CronJob ${this.opts.cronJob} starts its Jobs on ${candidate}` };
  }

  async restoreStable(stable: string): Promise<void> {
    await this.switchTo(stable, true);
    if (this.opts.runningJobs !== 'stop') return;
    const kube = await this.client();
    const cron = await this.cronJob(kube);
    for (const job of await this.jobs(kube, cron)) {
      if (versionOfJob(job) !== stable && (job.status?.active ?? 0) > 0 && !finished(job)) {
        await kube.delete(`/apis/batch/v1/namespaces/${this.ns}/jobs/${job.metadata.name}?propagationPolicy=Background`, job.metadata.resourceVersion).catch((e: unknown) => Promise.reject(explainKubeError(e, `stopping Job ${job.metadata.name}`)));
      }
    }
  }

  /** The template never runs a canary: nothing to scale down. */
  async retire(): Promise<void> {}

  async failure(candidate: string): Promise<string | undefined> {
    const kube = await this.client();
    const cron = await this.cronJob(kube);
    if (templateVersion(cron) !== candidate) return undefined;
    const since = Date.parse(cron.metadata.annotations?.[SWITCHED_AT_ANNOTATION] ?? '');
    // creationTimestamp has whole seconds: a Job of the switch's own second counts.
    const failed = (await this.jobs(kube, cron)).find((j) => versionOfJob(j) === candidate && !(Date.parse(j.metadata.creationTimestamp ?? '') < Math.floor(since / 1000) * 1000) && failedCondition(j));
    if (!failed) return undefined;
    const c = failedCondition(failed)!;
    return `${this.name}: Job ${failed.metadata.name} of ${candidate} (CronJob ${this.opts.cronJob}) failed: ${c.reason ?? 'Failed'}${c.message ? ` (${c.message})` : ''}`;
  }

  async describe(): Promise<MemberStatus> {
    const kube = await this.client();
    const cron = await this.cronJob(kube);
    const counts = new Map<string, { running: number; succeeded: number; failed: number }>();
    for (const job of await this.jobs(kube, cron)) {
      const v = versionOfJob(job) ?? 'unknown';
      const c = counts.get(v) ?? { running: 0, succeeded: 0, failed: 0 };
      if (failedCondition(job)) c.failed += 1;
      else if (finished(job)) c.succeeded += 1;
      else c.running += 1;
      counts.set(v, c);
    }
    const jobs = [...counts].map(([v, c]) => `${v} ${[c.running && `${c.running} running`, c.succeeded && `${c.succeeded} succeeded`, c.failed && `${c.failed} failed`].filter(Boolean).join(', ')}`);
    const since = cron.metadata.annotations?.[SWITCHED_AT_ANNOTATION];
    return {
      name: this.name,
      role: this.role,
      versions: [],
      detail: `CronJob ${this.opts.cronJob} starts ${templateVersion(cron) ?? 'its template'}${since ? ` (since ${since.slice(11, 19)})` : ''}; Jobs: ${jobs.join(' · ') || 'none'}`,
    };
  }

  /**
   * Give the template `version`'s image (and label), recording when; idempotent. Back to stable
   * (`restore`), the image comes from deploy.yaml or, failing that, from what the switch replaced.
   */
  private async switchTo(version: string, restore = false): Promise<void> {
    const kube = await this.client();
    await retryOnConflict(`CronJob ${this.opts.cronJob}`, async () => {
      const cron = await this.cronJob(kube);
      const template = cron.spec.jobTemplate.spec.template;
      const annotations = { ...cron.metadata.annotations };
      if (restore && templateVersion(cron) === undefined && !annotations[STABLE_IMAGE_ANNOTATION]) return;
      const image = this.opts.images[version] ?? (restore ? annotations[STABLE_IMAGE_ANNOTATION] : undefined);
      if (!image) throw new OperationError(`cannot put CronJob ${this.opts.cronJob} on ${version}: no image for it`, `add versions.${version}.image (or member ${this.name}'s image) to deploy.yaml`);
      const current = this.imageOf(template);
      if (templateVersion(cron) === version && current === image) return;
      if (restore) delete annotations[STABLE_IMAGE_ANNOTATION];
      else annotations[STABLE_IMAGE_ANNOTATION] ??= current ?? '';
      annotations[SWITCHED_AT_ANNOTATION] = new Date((this.opts.clock ?? Date.now)()).toISOString();
      const jobTemplate = {
        ...cron.spec.jobTemplate,
        // On the Job as well as its pods, so Jobs can be listed by version.
        metadata: { ...cron.spec.jobTemplate.metadata, labels: { ...cron.spec.jobTemplate.metadata?.labels, [VERSION_LABEL]: version } },
        spec: { ...cron.spec.jobTemplate.spec, template: withImage(template, image, version, this.opts.container) },
      };
      await kube.replace(this.path, { ...cron, metadata: { ...cron.metadata, annotations }, spec: { ...cron.spec, jobTemplate } });
    });
  }

  private imageOf(template: PodTemplate): string | undefined {
    const containers = template.spec.containers;
    return (this.opts.container ? containers.find((c) => c.name === this.opts.container) : containers[0])?.image;
  }

  /** The CronJob's Jobs (owned by it), oldest first. */
  private async jobs(kube: KubeClient, cron: CronJobObject): Promise<JobObject[]> {
    const list = await kube.read<{ items: JobObject[] }>(`/apis/batch/v1/namespaces/${this.ns}/jobs`).catch((e: unknown) => Promise.reject(explainKubeError(e, `listing the Jobs of CronJob ${this.opts.cronJob}`)));
    return list.items
      .filter((j) => j.metadata.ownerReferences?.some((o) => o.uid === cron.metadata.uid))
      .sort((a, b) => Date.parse(a.metadata.creationTimestamp ?? '') - Date.parse(b.metadata.creationTimestamp ?? ''));
  }
}

/** The version the CronJob's next Job runs, by label. */
function templateVersion(cron: CronJobObject): string | undefined {
  return cron.spec.jobTemplate.spec.template.metadata?.labels?.[VERSION_LABEL];
}

function versionOfJob(job: JobObject): string | undefined {
  return job.spec.template.metadata?.labels?.[VERSION_LABEL];
}

function failedCondition(job: JobObject) {
  return job.status?.conditions?.find((c) => c.type === 'Failed' && c.status === 'True');
}

function finished(job: JobObject): boolean {
  return job.status?.conditions?.some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True') === true;
}
