/**
 * The blue/green pair of ECS services on moto's server, built through the real AWS SDK as an
 * operator would: a cluster, one task definition (an app container and a log sidecar, with an
 * execution role), and one service per version in that version's ALB target group. For the ECS
 * integration tests, next to the ALB fixture (createAlb).
 *
 * moto fixes a service's deployment at CreateService: its rolloutState is COMPLETED only when
 * MOTO_ECS_SERVICE_RUNNING (default 0) covers the desired count, and UpdateService never starts
 * a new deployment. So each service is created at zero tasks (COMPLETED) and the serving side is
 * then scaled up with UpdateService, which moto applies at once (runningCount = desiredCount).
 */
import {
  CreateClusterCommand,
  CreateServiceCommand,
  DescribeServicesCommand,
  DescribeTaskDefinitionCommand,
  ECSClient,
  ListTaskDefinitionsCommand,
  RegisterTaskDefinitionCommand,
  UpdateServiceCommand,
  type Service,
  type TaskDefinition,
} from '@aws-sdk/client-ecs';
import { REGION } from './alb.js';

/** What `createEcs` built. */
export interface EcsFixture {
  ecs: ECSClient;
  cluster: string;
  /** Service name of each version. */
  services: Record<string, string>;
  /** The task definition both services start on. */
  taskDefinitionArn: string;
  /** A service as DescribeServices reports it, tags included. */
  service(name: string): Promise<Service>;
  /** The task definition a service runs, as DescribeTaskDefinition reports it. */
  taskDefinitionOf(name: string): Promise<TaskDefinition>;
  /** Every registered revision of the family. */
  revisions(): Promise<string[]>;
}

/** The image the pair starts on. */
export const STABLE_IMAGE = 'registry.example/patient-api:1.4.0';

/** A cluster and a service per version in `targetGroups` (version → ARN); `serving` runs `count` tasks, the others none. */
export async function createEcs(endpoint: string, targetGroups: Record<string, string>, opts: { cluster?: string; serving?: string; count?: number } = {}): Promise<EcsFixture> {
  const ecs = new ECSClient({ region: REGION, endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  const cluster = opts.cluster ?? 'patient';
  await ecs.send(new CreateClusterCommand({ clusterName: cluster }));
  const td = await ecs.send(
    new RegisterTaskDefinitionCommand({
      family: 'patient-api',
      networkMode: 'awsvpc',
      requiresCompatibilities: ['FARGATE'],
      cpu: '512',
      memory: '1024',
      executionRoleArn: 'arn:aws:iam::123456789012:role/patient-api-execution',
      containerDefinitions: [
        { name: 'web', image: STABLE_IMAGE, essential: true, memory: 768, portMappings: [{ containerPort: 80 }], environment: [{ name: 'RECORDS_DB', value: 'records.internal' }] },
        { name: 'log-router', image: 'registry.example/fluent-bit:3.1', essential: false, memory: 128 },
      ],
    }),
  );
  const taskDefinitionArn = td.taskDefinition!.taskDefinitionArn!;
  const services: Record<string, string> = {};
  const sides = ['blue', 'green', 'teal'];
  for (const [i, [version, targetGroupArn]] of Object.entries(targetGroups).entries()) {
    const name = `patient-api-${sides[i] ?? version}`;
    services[version] = name;
    await ecs.send(
      new CreateServiceCommand({
        cluster,
        serviceName: name,
        taskDefinition: taskDefinitionArn,
        desiredCount: 0,
        launchType: 'FARGATE',
        loadBalancers: [{ targetGroupArn, containerName: 'web', containerPort: 80 }],
      }),
    );
  }
  const serving = opts.serving ?? Object.keys(targetGroups)[0]!;
  await ecs.send(new UpdateServiceCommand({ cluster, service: services[serving], desiredCount: opts.count ?? 2 }));
  const service = async (name: string) => (await ecs.send(new DescribeServicesCommand({ cluster, services: [name], include: ['TAGS'] }))).services![0]!;
  return {
    ecs,
    cluster,
    services,
    taskDefinitionArn,
    service,
    async taskDefinitionOf(name) {
      const { taskDefinition } = await service(name);
      return (await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: taskDefinition! }))).taskDefinition!;
    },
    async revisions() {
      return (await ecs.send(new ListTaskDefinitionsCommand({ familyPrefix: 'patient-api' }))).taskDefinitionArns ?? [];
    },
  };
}
