/**
 * The `ecs` workload section of deploy.yaml — its rules across sections, `deploy iam-policy`
 * built from it, the region it calls — and the ECS domain client's error handling with the SDK's
 * `send` replaced.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/parse.js';
import { readinessTimeoutOf } from '../../src/providers/chosen.js';
import { SdkEcsClient, type SendFn } from '../../src/workloads/ecs/client.js';
import { ecsRegion } from '../../src/workloads/ecs/config.js';
import { EcsApiError } from '../../src/workloads/ecs/errors.js';
import { isRegistrationOf, withImage } from '../../src/workloads/ecs/task-definition.js';
import { planFor } from '../../strategies/index.js';
import { runCli } from '../helpers/cli.js';
import { LISTENER, TG } from '../helpers/fake-alb.js';
import { stableDefinition } from '../helpers/fake-ecs.js';

const yaml = (workload: string, versions = '  v1: { image: registry.example/patient-api:1.4.0 }\n  v2: { image: registry.example/patient-api:1.5.0 }\n', rest = '') => `service: patient-api
stable: v1
versions:
${versions}router:
  type: alb
  listenerArn: ${LISTENER}
  targetGroups: { v1: ${TG.v1}, v2: ${TG.v2} }
workload:
  type: ecs
${workload}${rest}`;
const pair = '  cluster: patient\n  services: { v1: patient-api-blue, v2: patient-api-green }\n';
const problem = (text: string) => {
  try {
    parseConfig(text, 'deploy.yaml');
  } catch (e) {
    return (e as Error).message;
  }
  return 'parsed';
};

describe('ecs config', () => {
  let dir: string | undefined;
  afterEach(() => dir && rmSync(dir, { recursive: true, force: true }));

  it('parses the pair; the deadline bounds the wait, else blueGreen.healthTimeout, else the default', () => {
    const config = parseConfig(yaml(`${pair}  container: web\n  deadline: 10m\n`), 'deploy.yaml');
    expect(config.workload).toEqual({ type: 'ecs', cluster: 'patient', services: { v1: 'patient-api-blue', v2: 'patient-api-green' }, container: 'web', deadline: 600_000 });
    expect(readinessTimeoutOf(config)).toBe(600_000);
    expect(planFor(config, '.').readinessTimeoutMs).toBe(600_000);
    const blueGreen = parseConfig(yaml(pair, undefined, 'strategy:\n  blueGreen:\n    healthTimeout: 2m\n'), 'deploy.yaml');
    expect(planFor(blueGreen, '.').readinessTimeoutMs).toBe(120_000);
  });

  it('names what is missing: a version\'s service, a version\'s image, a service shared by two versions', () => {
    expect(problem(yaml('  cluster: patient\n  services: { v1: patient-api-blue }\n'))).toMatch(/workload\.services.*needs the ECS service of version v2/);
    expect(problem(yaml(pair, '  v1: {}\n  v2: {}\n'))).toMatch(/versions\.v2\.image.*the ecs workload needs the image of every version it can roll out/);
    expect(problem(yaml(pair, '  v1: {}\n  v2: {}\n'))).not.toMatch(/versions\.v1\.image/);
    expect(problem(yaml('  cluster: patient\n  services: { v1: patient-api-blue, v2: patient-api-blue }\n'))).toMatch(/workload\.services\.v2.*is v1's service too: each version needs its own/);
    expect(problem(yaml('  cluster: patient\n  services: { v1: a, v2: b, v3: c }\n'))).toMatch(/workload\.services\.v3.*is not a version listed under versions:/);
    expect(problem(yaml('  cluster: arn:aws:ecs:eu-west-1:123:cluster/patient\n  services: { v1: a, v2: b }\n'))).toMatch(/must be an ECS cluster name or ARN/);
  });

  it('`deploy iam-policy`: service calls on the named services, task definitions on *, PassRole only on the roles listed', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'cutover-ecs-iam-'));
    const file = path.join(dir, 'deploy.yaml');
    const role = 'arn:aws:iam::123456789012:role/patient-api-execution';
    writeFileSync(file, yaml(`  cluster: arn:aws:ecs:eu-west-1:123456789012:cluster/patient\n  services: { v1: patient-api-blue, v2: patient-api-green }\n  passRoles: [${role}]\n`));
    const run = await runCli(['iam-policy', '-f', file]);
    expect(run.code, run.stderr).toBe(0);
    const services = ['blue', 'green'].map((s) => `arn:aws:ecs:eu-west-1:123456789012:service/patient/patient-api-${s}`);
    expect(JSON.parse(run.stdout).Statement.filter((s: { Sid: string }) => s.Sid.startsWith('Ecs'))).toEqual([
      { Sid: 'EcsReadAndUpdateServices', Effect: 'Allow', Action: ['ecs:DescribeServices', 'ecs:UpdateService'], Resource: services },
      { Sid: 'EcsMarkServingSide', Effect: 'Allow', Action: ['ecs:TagResource'], Resource: services },
      { Sid: 'EcsCandidateTaskDefinition', Effect: 'Allow', Action: ['ecs:DescribeTaskDefinition', 'ecs:RegisterTaskDefinition'], Resource: '*' },
      { Sid: 'EcsListStoppedTasks', Effect: 'Allow', Action: ['ecs:ListTasks'], Resource: '*', Condition: { ArnLike: { 'ecs:cluster': 'arn:aws:ecs:eu-west-1:123456789012:cluster/patient' } } },
      { Sid: 'EcsDescribeStoppedTasks', Effect: 'Allow', Action: ['ecs:DescribeTasks'], Resource: ['arn:aws:ecs:eu-west-1:123456789012:task/patient/*'] },
      { Sid: 'EcsPassTaskRoles', Effect: 'Allow', Action: ['iam:PassRole'], Resource: [role], Condition: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } } },
    ]);
    // A cluster by name: the services' ARNs in any account, in aws.region when it is set.
    writeFileSync(file, yaml(pair, undefined, 'aws:\n  region: eu-west-1\n'));
    const statements = JSON.parse((await runCli(['iam-policy', '-f', file])).stdout).Statement as { Sid: string; Resource: unknown }[];
    expect(statements.find((s) => s.Sid === 'EcsReadAndUpdateServices')!.Resource).toEqual(['arn:aws:ecs:eu-west-1:*:service/patient/patient-api-blue', 'arn:aws:ecs:eu-west-1:*:service/patient/patient-api-green']);
    expect(statements.some((s) => s.Sid === 'EcsPassTaskRoles')).toBe(false);
  });

  it('calls the cluster ARN\'s region, and refuses another one naming where it came from', () => {
    const arn = 'arn:aws:ecs:eu-west-1:123456789012:cluster/patient';
    expect(ecsRegion(arn, undefined, {})).toBe('eu-west-1');
    expect(ecsRegion('patient', undefined, { AWS_REGION: 'eu-central-1' })).toBe('eu-central-1');
    expect(ecsRegion('patient', undefined, {})).toBeUndefined();
    expect(() => ecsRegion(arn, { region: 'us-east-1' }, {})).toThrow('aws.region is us-east-1, but the cluster arn:aws:ecs:eu-west-1:123456789012:cluster/patient is in eu-west-1');
  });

  it('a derived task definition equals its registration, whatever the API leaves out when empty', () => {
    const source = { ...stableDefinition(), taskDefinitionArn: 'arn:td/patient-api:1', revision: 1, volumes: [], placementConstraints: [] };
    const wanted = withImage(source, 'web', 'registry.example/patient-api:1.5.0');
    expect(wanted.containerDefinitions!.map((c) => c.image)).toEqual(['registry.example/patient-api:1.5.0', 'registry.example/fluent-bit:3.1']);
    expect(isRegistrationOf({ ...wanted, taskDefinitionArn: 'arn:td/patient-api:2', revision: 2, status: 'ACTIVE' } as never, wanted)).toBe(true);
    expect(isRegistrationOf(source, wanted)).toBe(false);
    expect(isRegistrationOf({ ...wanted, memory: '2048' } as never, wanted)).toBe(false);
  });
});

describe('ECS domain client', () => {
  const sdkError = (name: string, status: number) => Object.assign(new Error(`${name} happened`), { name, $fault: status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: status } });
  const answering = (errors: Error[], answer: unknown): SendFn & { sent: string[] } => {
    const send = Object.assign(async (command: { constructor: { name: string } }) => {
      send.sent.push(command.constructor.name);
      const e = errors.shift();
      if (e) throw e;
      return answer;
    }, { sent: [] as string[] });
    return send;
  };

  it('retries throttling and reports each retry, then reads the services and the names it did not find', async () => {
    const retries: string[] = [];
    const send = answering([sdkError('ThrottlingException', 400)], { services: [{ serviceName: 'patient-api-blue', serviceArn: 'arn:blue', taskDefinition: 'arn:td/patient-api:1', desiredCount: 2, runningCount: 2, tags: [{ key: 'cutover:stable', value: 'true' }], loadBalancers: [{ targetGroupArn: 'tg-blue' }] }], failures: [{ arn: 'arn:green', reason: 'MISSING' }] });
    const client = new SdkEcsClient({ region: 'eu-west-1', minDelayMs: 1, maxDelayMs: 2 }, send, (op) => retries.push(op));
    const read = await client.describeServices('patient', ['patient-api-blue', 'patient-api-green']);
    expect(retries).toEqual(['DescribeServices']);
    expect(read.missing).toEqual(['patient-api-green']);
    expect(read.services[0]).toMatchObject({ name: 'patient-api-blue', desiredCount: 2, targetGroups: ['tg-blue'], tags: { 'cutover:stable': 'true' }, deploymentController: 'ECS', deployments: [] });
  });

  it('does not retry a missing cluster and names it with a hint', async () => {
    const send = answering([sdkError('ClusterNotFoundException', 400)], {});
    const error = (await new SdkEcsClient({ region: 'eu-west-1', minDelayMs: 1 }, send).describeServices('records', ['a']).catch((e: unknown) => e)) as EcsApiError;
    expect(send.sent).toEqual(['DescribeServicesCommand']);
    expect([error.message, error.notFound]).toEqual(['ECS DescribeServices on records: ClusterNotFoundException: ClusterNotFoundException happened', true]);
    expect(error.hint).toMatch(/workload\.cluster/);
  });
});
