/**
 * The README's "AWS without Kubernetes" example, run as written against one moto server: the
 * block is read from README.md, its ARNs, cluster, services and bucket pointed at resources made
 * here, its holds shortened, and `deploy promote` drives ECS + ALB with state in S3 and a gate on
 * CloudWatch. Then the same with the candidate's 5XX counts written: rolled back, blue serving.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CloudWatchClient, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startMoto, type MotoProcess } from '../../src/sandbox/moto-process.js';
import { createAlb, REGION, useEmulatorCredentials, type AlbFixture } from '../helpers/alb.js';
import { runCli } from '../helpers/cli.js';
import { createEcs, type EcsFixture } from '../helpers/ecs.js';

const MINUTE = 60_000;
let moto: MotoProcess;
let alb: AlbFixture;
let ecs: EcsFixture;
let dir: string;

beforeAll(async () => {
  useEmulatorCredentials();
  moto = await startMoto();
}, 60_000);
afterAll(async () => {
  await moto?.stop();
});
beforeEach(async () => {
  await moto.reset();
  alb = await createAlb(moto.url);
  ecs = await createEcs(moto.url, alb.targetGroups, { serving: 'v1', count: 2 });
  const s3 = new S3Client({ region: REGION, endpoint: moto.url, forcePathStyle: true });
  await s3.send(new CreateBucketCommand({ Bucket: 'acme-cutover-state' }));
  dir = mkdtempSync(path.join(tmpdir(), 'cutover-aws-example-'));
  return () => rmSync(dir, { recursive: true, force: true });
});

/** The README's example, pointed at this moto's resources, its holds cut to fractions of a second. */
function readmeExample(): string {
  const readme = readFileSync(path.resolve(import.meta.dirname, '../../README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## AWS without Kubernetes'));
  const yaml = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
  if (!yaml) throw new Error('README.md has no yaml block under "AWS without Kubernetes"');
  const file = path.join(dir, 'deploy.yaml');
  const pointed = yaml
    .replace(/listenerArn: \S+/, `listenerArn: ${alb.listenerArn}`)
    .replace(/v1: arn:\S+/, `v1: ${alb.targetGroups.v1}`)
    .replace(/v2: arn:\S+/, `v2: ${alb.targetGroups.v2}`)
    .replace(/cluster: \S+/, `cluster: ${ecs.cluster}`)
    .replace(/services: \{ v1: \S+, v2: \S+ \}/, `services: { v1: ${ecs.services.v1}, v2: ${ecs.services.v2} }`)
    .replace('blueGreen: { steps: 2, stepHold: 5m, bake: 30m }', 'blueGreen: { steps: 2, stepHold: 300ms, bake: 500ms, checkInterval: 100ms }');
  expect(pointed).not.toBe(yaml);
  writeFileSync(file, pointed);
  return file;
}

/** A few minutes of the ALB's metrics for both target groups around now (5XX per 60,000 requests). */
async function traffic(candidate5xx: number): Promise<void> {
  const cw = new CloudWatchClient({ region: REGION, endpoint: moto.url });
  const tail = (arn: string) => arn.split(':').at(-1)!;
  const loadBalancer = tail(alb.listenerArn).replace(/^listener\//, '').split('/').slice(0, 3).join('/');
  for (let i = -3; i <= 3; i++) {
    const Timestamp = new Date(Math.floor(Date.now() / MINUTE) * MINUTE + i * MINUTE + 5_000);
    for (const [version, errors] of [['v1', 30], ['v2', candidate5xx]] as const) {
      const Dimensions = [{ Name: 'LoadBalancer', Value: loadBalancer }, { Name: 'TargetGroup', Value: tail(alb.targetGroups[version]!) }];
      await cw.send(new PutMetricDataCommand({ Namespace: 'AWS/ApplicationELB', MetricData: [
        { MetricName: 'RequestCount', Dimensions, Timestamp, Value: 60_000, Unit: 'Count' },
        { MetricName: 'HTTPCode_Target_5XX_Count', Dimensions, Timestamp, Value: errors, Unit: 'Count' },
      ] }));
    }
  }
}

const flags = () => ['--region', REGION, '--endpoint-url', moto.url];

describe("the README's AWS example on moto", () => {
  it('releases v2 onto the green service, shifts the ALB in two steps, bakes, retires blue; state and audit in S3', async () => {
    const file = readmeExample();
    await traffic(30);
    const run = await runCli(['promote', '--to', 'v2', '-y', '-f', file, '-o', 'json', ...flags()]);
    expect(run.code, run.stderr).toBe(0);
    const steps = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.event === 'step');
    expect(steps.map((e) => e.weights)).toEqual([{ v1: 50, v2: 50 }, { v1: 0, v2: 100 }]);
    expect(await alb.listenerWeights()).toEqual({ v1: 0, v2: 100 });
    expect((await ecs.taskDefinitionOf(ecs.services.v2!)).containerDefinitions!.find((c) => c.name === 'web')!.image).toBe('123456789012.dkr.ecr.eu-west-1.amazonaws.com/patient-api:1.5.0');
    expect((await ecs.service(ecs.services.v1!)).desiredCount).toBe(0);
    const s3 = new S3Client({ region: REGION, endpoint: moto.url, forcePathStyle: true });
    const keys = ((await s3.send(new ListObjectsV2Command({ Bucket: 'acme-cutover-state' }))).Contents ?? []).map((o) => o.Key!);
    expect(keys).toContain('cutover/patient-api/state.json');
    // The record in the bucket says what the ALB holds.
    const state = JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: 'acme-cutover-state', Key: 'cutover/patient-api/state.json' }))).Body!.transformToString()) as { phase: string; weights: Record<string, number> };
    expect(state.phase).toBe('promoted');
    expect(Object.fromEntries(Object.entries(state.weights).filter(([, w]) => w > 0))).toEqual(Object.fromEntries(Object.entries(await alb.listenerWeights()).filter(([, w]) => w > 0)));
    expect(keys.filter((k) => k.startsWith('cutover/patient-api/audit/')).length).toBeGreaterThan(3);
    const history = await runCli(['history', '-f', file, ...flags()]);
    expect(history.stdout).toMatch(/chain verified: \d+ records/);
    const policy = JSON.parse((await runCli(['iam-policy', '-f', file, ...flags()])).stdout) as { Statement: { Action: string[] }[] };
    const actions = policy.Statement.flatMap((st) => st.Action);
    for (const a of ['elasticloadbalancing:ModifyListener', 'ecs:UpdateService', 'ecs:RegisterTaskDefinition', 's3:PutObject', 'cloudwatch:GetMetricData']) expect(actions).toContain(a);
  });

  it('runs the same stack as a canary: 10% → 50% → 100% on the green service, gated on CloudWatch', async () => {
    const file = readmeExample();
    writeFileSync(file, readFileSync(file, 'utf8').replace(/blueGreen: \{[^}]*\}/, 'canary: { checkInterval: 100ms, steps: [{ weight: 10, hold: 300ms }, { weight: 50, hold: 300ms }] }'));
    await traffic(30);
    const run = await runCli(['promote', '--to', 'v2', '-y', '-f', file, '-o', 'json', ...flags()]);
    expect(run.code, run.stderr).toBe(0);
    const steps = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.event === 'step');
    expect(steps.map((e) => e.weights)).toEqual([{ v1: 90, v2: 10 }, { v1: 50, v2: 50 }, { v1: 0, v2: 100 }]);
    expect(await alb.listenerWeights()).toEqual({ v1: 0, v2: 100 });
  });

  it('two drivers on two machines (their own folders) race for the S3 lock: one drives, the other exits 5 naming it', async () => {
    const file = readmeExample();
    await traffic(30);
    const machines = ['ci-runner-a', 'ci-runner-b'].map((name) => {
      const folder = path.join(dir, name);
      mkdirSync(folder);
      writeFileSync(path.join(folder, 'deploy.yaml'), readFileSync(file, 'utf8'));
      return path.join(folder, 'deploy.yaml');
    });
    const runs = await Promise.all(machines.map((f) => runCli(['promote', '--to', 'v2', '-y', '-f', f, '-o', 'json', ...flags()])));
    expect(runs.map((r) => r.code).sort()).toEqual([0, 5]);
    expect(runs.find((r) => r.code === 5)!.stderr).toMatch(/locked by .* since .*; lease renewed at .*, expires at /);
    expect(await alb.listenerWeights()).toEqual({ v1: 0, v2: 100 });
  });

  it("rolls back when the green target group's 5XX counts rise: traffic on blue first, green scaled down", async () => {
    const file = readmeExample();
    await traffic(3_000);
    const run = await runCli(['promote', '--to', 'v2', '-y', '-f', file, '-o', 'json', ...flags()]);
    expect(run.code, run.stderr).toBe(3);
    const events = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events.find((e) => e.event === 'rollback')).toMatchObject({ weights: { v1: 100 } });
    expect(await alb.listenerWeights()).toEqual({ v1: 100 });
    expect((await ecs.service(ecs.services.v2!)).desiredCount).toBe(0);
    expect((await ecs.service(ecs.services.v1!)).desiredCount).toBe(2);
  });
});
