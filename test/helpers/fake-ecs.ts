/**
 * An in-memory ECS behind the workload's `EcsClient` interface, for unit tests: services with
 * deployments as AWS reports them (an UpdateService that changes the task definition starts a new
 * PRIMARY deployment IN_PROGRESS and leaves the old one ACTIVE until `settle`), task definitions
 * with revisions, tags, and stopped tasks. This is the behaviour moto lacks (it completes every
 * deployment at once), put at the client boundary.
 */
import type { EcsClient, EcsDeployment, EcsService, ServicesRead, TaskDefinition, TaskDefinitionInput } from '../../src/workloads/ecs/client.js';
import { EcsApiError } from '../../src/workloads/ecs/errors.js';

const ARN = 'arn:aws:ecs:eu-west-1:123456789012';

/** The task definition both services start on: web (the app) and a log sidecar. */
export function stableDefinition(image = 'registry.example/patient-api:1.4.0'): TaskDefinitionInput {
  return {
    family: 'patient-api',
    executionRoleArn: 'arn:aws:iam::123456789012:role/patient-api-execution',
    networkMode: 'awsvpc',
    cpu: '512',
    memory: '1024',
    containerDefinitions: [
      { name: 'web', image, essential: true, portMappings: [{ containerPort: 80 }] },
      { name: 'log-router', image: 'registry.example/fluent-bit:3.1', essential: false },
    ],
  };
}

/** ECS in memory; every call is logged as `Operation target`. */
export class FakeEcs implements EcsClient {
  readonly log: string[] = [];
  readonly services = new Map<string, EcsService>();
  readonly definitions = new Map<string, TaskDefinition>();
  /** Why the service's tasks stopped, by service name. */
  readonly stopped = new Map<string, string[]>();
  /** Set: the next call of this operation fails with this error. */
  failNext?: { operation: string; error: Error };
  private clock: () => number;

  constructor(clock: () => number = Date.now) {
    this.clock = clock;
  }

  /** A cluster `patient` with blue (running `count` tasks) and green (none), both on revision 1. */
  static pair(clock?: () => number, count = 3): FakeEcs {
    const ecs = new FakeEcs(clock);
    const td = ecs.register(stableDefinition());
    for (const [name, desired] of [['patient-api-blue', count], ['patient-api-green', 0]] as const) {
      ecs.services.set(name, {
        name,
        arn: `${ARN}:service/patient/${name}`,
        status: 'ACTIVE',
        taskDefinition: td.taskDefinitionArn!,
        desiredCount: desired,
        runningCount: desired,
        pendingCount: 0,
        deploymentController: 'ECS',
        targetGroups: [`arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/${name}/1`],
        deployments: [deployment(td.taskDefinitionArn!, desired, desired, 'COMPLETED', new Date(ecs.clock()))],
        tags: {},
      });
    }
    return ecs;
  }

  /** Finish every deployment of `name`: the PRIMARY one runs all its tasks, the older ones are gone. */
  settle(name: string): void {
    const s = this.services.get(name)!;
    const primary = s.deployments.find((d) => d.status === 'PRIMARY')!;
    s.deployments = [{ ...primary, runningCount: primary.desiredCount, rolloutState: 'COMPLETED' }];
    s.runningCount = s.desiredCount;
    s.pendingCount = 0;
  }

  /** Fail the PRIMARY deployment of `name`, as ECS's circuit breaker does. */
  fail(name: string, reason: string): void {
    const primary = this.services.get(name)!.deployments.find((d) => d.status === 'PRIMARY')!;
    Object.assign(primary, { rolloutState: 'FAILED', rolloutStateReason: reason });
  }

  tagsOf(name: string): string | undefined {
    return this.services.get(name)!.tags['cutover:stable'];
  }

  async describeServices(cluster: string, names: string[]): Promise<ServicesRead> {
    this.called('DescribeServices', cluster);
    if (cluster !== 'patient') throw new EcsApiError('ClusterNotFoundException', cluster, 'DescribeServices', 'Cluster not found.');
    return {
      services: names.flatMap((n) => (this.services.has(n) ? [structuredClone(this.services.get(n)!)] : [])),
      missing: names.filter((n) => !this.services.has(n)),
    };
  }

  async describeTaskDefinition(name: string): Promise<TaskDefinition> {
    this.called('DescribeTaskDefinition', name);
    const latest = [...this.definitions.values()].filter((d) => d.family === name).at(-1);
    const td = this.definitions.get(name) ?? latest;
    if (!td) throw new EcsApiError('ClientException', name, 'DescribeTaskDefinition', 'Unable to describe task definition.');
    return structuredClone(td);
  }

  async registerTaskDefinition(input: TaskDefinitionInput): Promise<TaskDefinition> {
    this.called('RegisterTaskDefinition', input.family!);
    return structuredClone(this.register(input));
  }

  async updateService(_cluster: string, name: string, change: { taskDefinition?: string; desiredCount?: number }): Promise<EcsService> {
    this.called('UpdateService', `${name}${change.taskDefinition ? ` ${change.taskDefinition.split('/').pop()}` : ''}${change.desiredCount !== undefined ? ` ×${change.desiredCount}` : ''}`);
    const s = this.services.get(name)!;
    if (change.desiredCount !== undefined) s.desiredCount = change.desiredCount;
    if (change.taskDefinition && change.taskDefinition !== s.taskDefinition) {
      s.taskDefinition = change.taskDefinition;
      s.deployments = [deployment(change.taskDefinition, s.desiredCount, 0, 'IN_PROGRESS', new Date(this.clock())), ...s.deployments.map((d) => ({ ...d, status: 'ACTIVE' }))];
    } else {
      const primary = s.deployments.find((d) => d.status === 'PRIMARY')!;
      primary.desiredCount = s.desiredCount;
      // A scale-down takes effect at once here; a scale-up waits for `settle`.
      if (s.desiredCount < s.runningCount) s.runningCount = primary.runningCount = s.desiredCount;
    }
    return { ...structuredClone(s), tags: {} };
  }

  async tagService(arn: string, tags: Record<string, string>): Promise<void> {
    const s = [...this.services.values()].find((x) => x.arn === arn)!;
    this.called('TagResource', `${s.name} ${Object.entries(tags).map(([k, v]) => `${k}=${v}`).join(',')}`);
    Object.assign(s.tags, tags);
  }

  async stoppedReasons(_cluster: string, service: string): Promise<string[]> {
    this.called('StoppedReasons', service);
    return this.stopped.get(service) ?? [];
  }

  private register(input: TaskDefinitionInput): TaskDefinition {
    const revision = [...this.definitions.values()].filter((d) => d.family === input.family).length + 1;
    const td = { ...structuredClone(input), revision, status: 'ACTIVE', taskDefinitionArn: `${ARN}:task-definition/${input.family}:${revision}` } as TaskDefinition;
    this.definitions.set(td.taskDefinitionArn!, td);
    return td;
  }

  private called(operation: string, target: string): void {
    this.log.push(`${operation} ${target}`);
    if (this.failNext?.operation === operation) {
      const { error } = this.failNext;
      delete this.failNext;
      throw error;
    }
  }
}

function deployment(taskDefinition: string, desired: number, running: number, rolloutState: string, createdAt: Date): EcsDeployment {
  return { id: `ecs-svc/${Math.floor(createdAt.getTime() / 1000)}`, status: 'PRIMARY', taskDefinition, rolloutState, desiredCount: desired, runningCount: running, failedTasks: 0, createdAt };
}
