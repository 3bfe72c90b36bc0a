/**
 * A narrow domain client over the ECS SDK: the calls the `ecs` workload makes, in its terms
 * (a service's deployments and tags, a task definition, why tasks stopped). The workload and its
 * unit tests depend on the `EcsClient` interface only; integration tests run this class against
 * moto's ECS server, the same code path as against AWS.
 *
 * Calls go out as every AWS provider's do (src/aws/call.ts): one bounded attempt at a time,
 * transient failures retried with backoff and reported; anything else is permanent and becomes
 * an `EcsApiError` naming what the call was about.
 */
import {
  DescribeServicesCommand,
  DescribeTaskDefinitionCommand,
  DescribeTasksCommand,
  ECSClient,
  ListTasksCommand,
  RegisterTaskDefinitionCommand,
  TagResourceCommand,
  UpdateServiceCommand,
  type RegisterTaskDefinitionCommandInput,
  type Service,
  type TaskDefinition,
} from '@aws-sdk/client-ecs';
import { attemptSignal, sdkClientSettings, withRetries, type CallBounds } from '../../aws/call.js';
import { EcsApiError } from './errors.js';

export type { TaskDefinition } from '@aws-sdk/client-ecs';

/** What a task definition is registered from (the SDK's RegisterTaskDefinition input). */
export type TaskDefinitionInput = RegisterTaskDefinitionCommandInput;

/** One deployment of a service (PRIMARY is the newest; ACTIVE ones still run older tasks). */
export interface EcsDeployment {
  id: string;
  status: string;
  taskDefinition?: string;
  /** IN_PROGRESS, COMPLETED or FAILED; ECS reports it for rolling-update deployments. */
  rolloutState?: string;
  rolloutStateReason?: string;
  desiredCount: number;
  runningCount: number;
  failedTasks: number;
  createdAt?: Date;
}

/** A service as the workload reads it. */
export interface EcsService {
  name: string;
  arn: string;
  /** ACTIVE, DRAINING or INACTIVE. */
  status: string;
  taskDefinition: string;
  desiredCount: number;
  runningCount: number;
  pendingCount: number;
  /** ECS (rolling update), CODE_DEPLOY or EXTERNAL. */
  deploymentController: string;
  /** The target groups the service registers its tasks in. */
  targetGroups: string[];
  deployments: EcsDeployment[];
  /** The newest service event's message (ECS lists them newest first). */
  lastEvent?: string;
  tags: Record<string, string>;
}

/** What DescribeServices found: the services, and the names it did not find. */
export interface ServicesRead {
  services: EcsService[];
  missing: string[];
}

/** The ECS calls the workload makes. */
export interface EcsClient {
  /** The services of a cluster with their tags; fails when the cluster does not exist. */
  describeServices(cluster: string, names: string[]): Promise<ServicesRead>;
  /** A task definition by ARN, `family:revision`, or family (its latest ACTIVE revision). */
  describeTaskDefinition(taskDefinition: string): Promise<TaskDefinition>;
  /** Register a revision; returns it. */
  registerTaskDefinition(input: TaskDefinitionInput): Promise<TaskDefinition>;
  /** Set a service's task definition and desired count (one UpdateService); returns the service. */
  updateService(cluster: string, service: string, change: { taskDefinition?: string; desiredCount?: number }): Promise<EcsService>;
  /** Add or overwrite tags on a service. */
  tagService(arn: string, tags: Record<string, string>): Promise<void>;
  /** Why the service's most recently stopped tasks of `taskDefinition` stopped, newest first. */
  stoppedReasons(cluster: string, service: string, taskDefinition: string): Promise<string[]>;
}

/** Where and how to reach ECS. Credentials always come from the default provider chain. */
export interface EcsClientOptions extends CallBounds {
  /** Absent: AWS_REGION or the profile's. */
  region?: string;
  profile?: string;
  /** A compatible endpoint instead of AWS's. */
  endpointUrl?: string;
}

/** Sends one SDK command; injectable so tests can answer at the client boundary. */
export type SendFn = (command: { constructor: { name: string }; input: unknown }) => Promise<unknown>;

/** The SDK behind the `EcsClient` interface, with retries and clear errors. */
export class SdkEcsClient implements EcsClient {
  /** Logical calls per operation (a retried call counts once). */
  readonly calls: Record<string, number> = {};
  private readonly send: SendFn;

  /** @param send defaults to an SDK client built from `options` with the SDK's own retry off. */
  constructor(
    private readonly options: EcsClientOptions,
    send?: SendFn,
    private readonly onRetry?: (operation: string, error: Error, delayMs: number) => void,
  ) {
    if (send) this.send = send;
    else {
      const sdk = new ECSClient({
        ...(options.region ? { region: options.region } : {}),
        ...sdkClientSettings(options),
        ...(options.profile ? { profile: options.profile } : {}),
        ...(options.endpointUrl ? { endpoint: options.endpointUrl } : {}),
      });
      this.send = (command) => sdk.send(command as never, { abortSignal: attemptSignal(options) });
    }
  }

  /** DescribeServices, ten names a call (the API's most), tags included. */
  async describeServices(cluster: string, names: string[]): Promise<ServicesRead> {
    const read: ServicesRead = { services: [], missing: [] };
    for (let i = 0; i < names.length; i += 10) {
      const page = names.slice(i, i + 10);
      const out = (await this.call(new DescribeServicesCommand({ cluster, services: page, include: ['TAGS'] }), cluster)) as { services?: Service[]; failures?: { arn?: string; reason?: string }[] };
      read.services.push(...(out.services ?? []).map(toService));
      const found = new Set(read.services.map((s) => s.name));
      read.missing.push(...page.filter((n) => !found.has(n)));
    }
    return read;
  }

  async describeTaskDefinition(taskDefinition: string): Promise<TaskDefinition> {
    const out = (await this.call(new DescribeTaskDefinitionCommand({ taskDefinition }), taskDefinition)) as { taskDefinition?: TaskDefinition };
    if (!out.taskDefinition?.taskDefinitionArn) throw new EcsApiError('InvalidResponse', taskDefinition, 'DescribeTaskDefinition', 'the endpoint returned no task definition');
    return out.taskDefinition;
  }

  async registerTaskDefinition(input: TaskDefinitionInput): Promise<TaskDefinition> {
    const out = (await this.call(new RegisterTaskDefinitionCommand(input), input.family ?? '?')) as { taskDefinition?: TaskDefinition };
    if (!out.taskDefinition?.taskDefinitionArn) throw new EcsApiError('InvalidResponse', input.family ?? '?', 'RegisterTaskDefinition', 'the endpoint returned no task definition');
    return out.taskDefinition;
  }

  async updateService(cluster: string, service: string, change: { taskDefinition?: string; desiredCount?: number }): Promise<EcsService> {
    const out = (await this.call(new UpdateServiceCommand({ cluster, service, ...change }), service)) as { service?: Service };
    if (!out.service) throw new EcsApiError('InvalidResponse', service, 'UpdateService', 'the endpoint returned no service');
    // UpdateService answers without tags; they are not the workload's to forget.
    return toService(out.service);
  }

  async tagService(arn: string, tags: Record<string, string>): Promise<void> {
    await this.call(new TagResourceCommand({ resourceArn: arn, tags: Object.entries(tags).map(([key, value]) => ({ key, value })) }), arn);
  }

  async stoppedReasons(cluster: string, service: string, taskDefinition: string): Promise<string[]> {
    const listed = (await this.call(new ListTasksCommand({ cluster, serviceName: service, desiredStatus: 'STOPPED', maxResults: 20 }), service)) as { taskArns?: string[] };
    if (!listed.taskArns?.length) return [];
    const out = (await this.call(new DescribeTasksCommand({ cluster, tasks: listed.taskArns }), service)) as {
      tasks?: { taskDefinitionArn?: string; stoppedReason?: string; stoppedAt?: Date; containers?: { name?: string; reason?: string; exitCode?: number }[] }[];
    };
    return (out.tasks ?? [])
      .filter((t) => t.taskDefinitionArn === taskDefinition && t.stoppedReason)
      .sort((a, b) => (b.stoppedAt?.getTime() ?? 0) - (a.stoppedAt?.getTime() ?? 0))
      .map((t) => {
        const container = t.containers?.find((c) => c.reason || (c.exitCode !== undefined && c.exitCode !== 0));
        const why = container ? ` (${container.name}: ${container.reason ?? `exit ${container.exitCode}`})` : '';
        return `${t.stoppedReason}${why}`;
      });
  }

  /** Send with retries for transient failures; permanent ones become EcsApiError naming `resource`. */
  private async call(command: { constructor: { name: string }; input: unknown }, resource: string): Promise<unknown> {
    const operation = command.constructor.name.replace(/Command$/, '');
    this.calls[operation] = (this.calls[operation] ?? 0) + 1;
    try {
      return await withRetries(() => this.send(command), this.options, (error, delayMs) => this.onRetry?.(operation, error, delayMs));
    } catch (e) {
      throw EcsApiError.from(e, resource, operation);
    }
  }
}

/** The service in the workload's terms. */
function toService(s: Service): EcsService {
  const events = s.events ?? [];
  return {
    name: s.serviceName ?? '',
    arn: s.serviceArn ?? '',
    status: s.status ?? 'ACTIVE',
    taskDefinition: s.taskDefinition ?? '',
    desiredCount: s.desiredCount ?? 0,
    runningCount: s.runningCount ?? 0,
    pendingCount: s.pendingCount ?? 0,
    deploymentController: s.deploymentController?.type ?? 'ECS',
    targetGroups: (s.loadBalancers ?? []).flatMap((lb) => (lb.targetGroupArn ? [lb.targetGroupArn] : [])),
    deployments: (s.deployments ?? []).map((d) => ({
      id: d.id ?? '?',
      status: d.status ?? 'PRIMARY',
      ...(d.taskDefinition ? { taskDefinition: d.taskDefinition } : {}),
      ...(d.rolloutState ? { rolloutState: d.rolloutState } : {}),
      ...(d.rolloutStateReason ? { rolloutStateReason: d.rolloutStateReason } : {}),
      desiredCount: d.desiredCount ?? 0,
      runningCount: d.runningCount ?? 0,
      failedTasks: d.failedTasks ?? 0,
      ...(d.createdAt ? { createdAt: d.createdAt } : {}),
    })),
    ...(events[0]?.message ? { lastEvent: events[0].message } : {}),
    tags: Object.fromEntries((s.tags ?? []).map((t) => [t.key ?? '', t.value ?? ''])),
  };
}
