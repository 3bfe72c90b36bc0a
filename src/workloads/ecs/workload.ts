/**
 * The `ecs` workload: the blue/green pair of ECS services behind the ALB, one service per target
 * group, as the seeds run it. Each version has a service of its own (`workload.services`, keyed
 * by version like `router.targetGroups`); the router shifts weight between their target groups,
 * and this module makes the candidate's service ready for it and scales down the side traffic
 * has left.
 *
 * The engine's calls, mapped onto that practice:
 * - `scaleFor(candidate, weight)`: register the candidate's task definition — the stable
 *   service's current one with the version's container on `versions.<candidate>.image`; a live
 *   revision that already is exactly that is reused — and update the candidate's service to it at
 *   the stable side's desired count, whatever the weight. A weight shift is one ALB write, so the
 *   candidate's side carries any share from its first step, and every later shift, a
 *   `promote --full` or a rollback is instant. Ready once its deployment has completed (see
 *   readiness.ts); the router then checks the target group's health before weight moves.
 * - `promote(candidate)`: nothing is rolled out again — the candidate's service already takes all
 *   traffic and becomes the stable side. It answers the same readiness and moves the mark below.
 *   The engine then makes its last write (no change on the ALB) and calls `retire`.
 * - `retire()`: once traffic has left a side, scale it to zero: after a promotion (for a
 *   blue/green, after the bake) the old stable side; after a rollback or an abort the candidate's.
 * - `restoreStable(stable)`: a rollback after the promotion began: the stable side is marked as
 *   serving again and, should it have been scaled down, put back at the pair's count.
 *
 * `retire()` is told nothing and may run in another process than the rollout's (`deploy abort`,
 * `deploy resume` of a recorded promotion), so which side goes is kept on the services: the tag
 * `cutover:stable` is `true` on the side that serves between rollouts and `false` on the other.
 * `scaleFor` marks both before its first write (the way back registered before the first
 * mutation), `promote` and `restoreStable` move the mark, and `retire` only ever scales down a
 * service marked `false` that is not the serving side, so a service Cutover has not marked is
 * never touched. Before any mark, the serving side is deploy.yaml's `stable`.
 */
import { OperationError, UsageError } from '../../errors.js';
import type { TargetReadiness } from '../../routers/router.js';
import type { Workload } from '../workload.js';
import type { EcsClient, EcsService, TaskDefinition } from './client.js';
import { EcsApiError } from './errors.js';
import { serviceReadiness } from './readiness.js';
import { imageOf, isRegistrationOf, rolesOf, shortName, versionContainer, withImage } from './task-definition.js';

/** Tag on each service of the pair: `true` on the side serving between rollouts, `false` on the other. */
export const STABLE_TAG = 'cutover:stable';

/** What the workload needs from deploy.yaml. */
export interface EcsWorkloadOptions {
  /** Cluster name or ARN. */
  cluster: string;
  /** Service name of each version. */
  services: Record<string, string>;
  /** Image of each version. */
  images: Record<string, string | undefined>;
  /** The container whose image is the version's; default: the task definition's first. */
  container?: string;
  /** How long a deployment may stay in progress before it is stuck. */
  deadlineMs: number;
  /** deploy.yaml's `stable`: the serving side before Cutover has marked any. */
  stable: string;
  clock: () => number;
}

/** The services of the pair, by version. */
type Sides = Map<string, EcsService>;

/** ECS services driven through the ECS API. */
export class EcsWorkload implements Workload {
  readonly type = 'ecs';
  /** Task definitions by ARN: a revision never changes once registered. */
  private readonly definitions = new Map<string, TaskDefinition>();

  constructor(
    private readonly opts: EcsWorkloadOptions,
    private readonly client: EcsClient,
  ) {}

  /**
   * The cluster and every service exist, can be updated and tagged, and sit behind a target
   * group; the stable side's task definition has the container.
   */
  async preflight(): Promise<void> {
    const sides = await this.read();
    for (const [version, s] of sides) {
      if (s.deploymentController !== 'ECS') {
        throw new UsageError(`ECS service ${s.name} (version ${version}) uses the ${s.deploymentController} deployment controller`, 'the ecs workload updates services with UpdateService, which needs the rolling-update (ECS) controller');
      }
      // ECS tags only services with the long ARN format (service/<cluster>/<name>), and the mark is a tag.
      if (s.arn.slice(s.arn.indexOf(':service/')).split('/').length !== 3) {
        throw new UsageError(`ECS service ${s.name} (version ${version}) has an ARN of the old format (${s.arn}), which ECS cannot tag`, 'recreate the service after opting in to the long ARN format (aws ecs put-account-setting --name serviceLongArnFormat --value enabled)');
      }
      if (s.targetGroups.length === 0) {
        throw new UsageError(`ECS service ${s.name} (version ${version}) is behind no load balancer target group`, "the router shifts traffic between target groups: give each service its version's target group");
      }
    }
    const stable = this.side(sides, this.stableVersion(sides));
    versionContainer(await this.definition(stable.taskDefinition), this.opts.container, stable.name);
  }

  async scaleFor(candidate: string, _weight: number): Promise<TargetReadiness> {
    const image = this.opts.images[candidate];
    if (!image) throw new UsageError(`version ${candidate} has no image in deploy.yaml`, `add versions.${candidate}.image`);
    const sides = await this.read();
    const stableVersion = this.stableVersion(sides);
    const target = this.side(sides, candidate);
    if (stableVersion === candidate) {
      const why = target.tags[STABLE_TAG] === 'true' ? `tagged ${STABLE_TAG}=true` : `deploy.yaml's stable, and no side is tagged ${STABLE_TAG} yet`;
      throw new UsageError(`ECS service ${target.name} of ${candidate} is the serving side (${why})`, `roll ${candidate} out on the other service of the pair: fix workload.services (or stable) in deploy.yaml`);
    }
    const stable = this.side(sides, stableVersion);
    const taskDefinition = await this.candidateDefinition(stable, target, image);
    const count = Math.max(1, stable.desiredCount);
    await this.mark(sides, stableVersion);
    // More tasks than stable's (an autoscaler's) are left as they are; fewer are raised.
    const done = target.taskDefinition === taskDefinition && target.desiredCount >= count;
    const live = done ? target : await this.client.updateService(this.opts.cluster, target.name, { taskDefinition, desiredCount: count });
    return this.readiness(live, taskDefinition, count);
  }

  async promote(candidate: string): Promise<TargetReadiness> {
    const sides = await this.read();
    const target = this.side(sides, candidate);
    const td = await this.definition(target.taskDefinition);
    const image = this.opts.images[candidate];
    const container = versionContainer(td, this.opts.container, target.name);
    if (!image || imageOf(td, container) !== image) {
      throw new OperationError(`cannot promote ${candidate}: ECS service ${target.name} runs ${imageOf(td, container) ?? 'no image'} in ${container}, not ${image ?? "the version's image"}`, 'run `deploy status`; the service was changed outside Cutover');
    }
    // Alone, the candidate's side must run as many tasks as either side does.
    const count = Math.max(1, ...[...sides.values()].map((s) => s.desiredCount));
    const live = target.desiredCount >= count ? target : await this.client.updateService(this.opts.cluster, target.name, { desiredCount: count });
    const answer = await this.readiness(live, target.taskDefinition, count);
    // The mark moves only once the candidate's side can carry everything alone.
    if (answer.ready) await this.mark(sides, candidate);
    return answer;
  }

  async restoreStable(stable: string): Promise<void> {
    const sides = await this.read();
    const side = this.side(sides, stable);
    await this.mark(sides, stable);
    if (side.desiredCount > 0) return;
    const count = Math.max(1, ...[...sides.values()].map((s) => s.desiredCount));
    await this.client.updateService(this.opts.cluster, side.name, { desiredCount: count });
  }

  async retire(): Promise<void> {
    const sides = await this.read();
    const serving = this.stableVersion(sides);
    for (const [version, s] of sides) {
      if (version !== serving && s.tags[STABLE_TAG] === 'false' && s.desiredCount > 0) await this.client.updateService(this.opts.cluster, s.name, { desiredCount: 0 });
    }
  }

  /**
   * The candidate's task definition: the candidate's service's current one or the family's
   * latest when either already is the derivation (a retried step, a resumed driver), else a new
   * revision.
   */
  private async candidateDefinition(stable: EcsService, target: EcsService, image: string): Promise<string> {
    const source = await this.definition(stable.taskDefinition);
    const wanted = withImage(source, versionContainer(source, this.opts.container, stable.name), image);
    const current = target.taskDefinition ? await this.definition(target.taskDefinition) : undefined;
    if (current && isRegistrationOf(current, wanted)) return current.taskDefinitionArn!;
    const latest = await this.client.describeTaskDefinition(source.family ?? '');
    if (isRegistrationOf(latest, wanted)) return this.keep(latest).taskDefinitionArn!;
    try {
      return this.keep(await this.client.registerTaskDefinition(wanted)).taskDefinitionArn!;
    } catch (e) {
      const roles = rolesOf(wanted);
      if (e instanceof EcsApiError && e.accessDenied && roles.length) {
        throw new UsageError(e.message, `registering ${shortName(source.taskDefinitionArn ?? '')}'s copy passes ${roles.join(' and ')} to ECS: list ${roles.length > 1 ? 'them' : 'it'} under workload.passRoles and apply \`deploy iam-policy\` again`);
      }
      throw e;
    }
  }

  /** Mark `serving`'s side `true` and every other side `false`, writing only tags that differ. */
  private async mark(sides: Sides, serving: string): Promise<void> {
    // The sides leaving first, the serving one last: a crash between the writes leaves no side
    // marked `true` (deploy.yaml's `stable` then stands in, and `retire` spares it), never two.
    // The engine calls the same mark again (a resumed promotion, a rollback's restoreStable)
    // before it ever calls `retire`.
    const order = [...sides.entries()].sort(([a], [b]) => (a === serving ? 1 : b === serving ? -1 : 0));
    for (const [version, s] of order) {
      const value = version === serving ? 'true' : 'false';
      if (s.tags[STABLE_TAG] === value) continue;
      await this.client.tagService(s.arn, { [STABLE_TAG]: value });
      s.tags[STABLE_TAG] = value;
    }
  }

  /** The readiness of `service`, with why its tasks stopped when its deployment struggles. */
  private async readiness(service: EcsService, taskDefinition: string, count: number): Promise<TargetReadiness> {
    const wanted = { taskDefinition, count, deadlineMs: this.opts.deadlineMs, now: this.opts.clock() };
    const first = serviceReadiness(service, wanted);
    const primary = service.deployments.find((d) => d.status === 'PRIMARY');
    if (first.ready || !(first.stuck || (primary?.failedTasks ?? 0) > 0)) return first;
    const stopped = await this.client.stoppedReasons(this.opts.cluster, service.name, taskDefinition).catch(() => []);
    return serviceReadiness(service, wanted, stopped);
  }

  /** The version whose side serves: the one marked `true`, else deploy.yaml's `stable`. */
  private stableVersion(sides: Sides): string {
    const marked = [...sides.entries()].filter(([, s]) => s.tags[STABLE_TAG] === 'true').map(([v]) => v);
    if (marked.length > 1) {
      const names = marked.map((v) => sides.get(v)!.name);
      throw new OperationError(`ECS services ${names.join(' and ')} are both tagged ${STABLE_TAG}=true`, `tag the one that does not serve ${STABLE_TAG}=false (aws ecs tag-resource), then run the command again`);
    }
    return marked[0] ?? this.opts.stable;
  }

  private side(sides: Sides, version: string): EcsService {
    const s = sides.get(version);
    if (!s) throw new UsageError(`version ${version} has no ECS service under workload.services`, `add ${version}: <service name> there`);
    return s;
  }

  /** Every service of the pair, read in one DescribeServices; missing ones are the user's to fix. */
  private async read(): Promise<Sides> {
    const { cluster, services } = this.opts;
    let read;
    try {
      read = await this.client.describeServices(cluster, [...new Set(Object.values(services))]);
    } catch (e) {
      if (e instanceof EcsApiError && /ClusterNotFound/.test(e.code)) throw new UsageError(`ECS cluster ${cluster} not found`, e.hint);
      if (e instanceof EcsApiError && e.accessDenied) throw new UsageError(e.message, e.hint);
      throw e;
    }
    const byName = new Map(read.services.map((s) => [s.name, s]));
    const sides: Sides = new Map();
    for (const [version, name] of Object.entries(services)) {
      const s = byName.get(name);
      if (!s || s.status === 'INACTIVE') {
        throw new UsageError(`ECS service ${name} (version ${version}) not found in cluster ${cluster}`, 'check workload.services in deploy.yaml; `aws ecs list-services --cluster …` lists the names');
      }
      if (s.status !== 'ACTIVE') throw new UsageError(`ECS service ${name} (version ${version}) is ${s.status}`, 'it is being deleted: name a service that is ACTIVE');
      sides.set(version, s);
    }
    return sides;
  }

  /** A task definition, described once. */
  private async definition(arn: string): Promise<TaskDefinition> {
    return this.definitions.get(arn) ?? this.keep(await this.client.describeTaskDefinition(arn), arn);
  }

  /** Remember `td` by its ARN (and by the name it was asked for). */
  private keep(td: TaskDefinition, as?: string): TaskDefinition {
    this.definitions.set(td.taskDefinitionArn!, td);
    if (as) this.definitions.set(as, td);
    return td;
  }
}
