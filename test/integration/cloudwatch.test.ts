/**
 * The cloudwatch metrics source against moto's CloudWatch server, through the real AWS SDK: the
 * test writes the ALB's per-target-group metrics with PutMetricData, the source reads them with
 * GetMetricData. Measurements at the source's interface (counts over a window, a shifted window,
 * no data, what moto cannot compute, replays, an endpoint that is not there), then the CLI: a
 * canary gated on CloudWatch that passes, one rolled back by the candidate's 5XX counts,
 * `deploy iam-policy` and `deploy plan`. moto is installed and started by the test.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CloudWatchClient, PutMetricDataCommand, type MetricDatum } from '@aws-sdk/client-cloudwatch';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import type { ErrorRateGate, LatencyGate, Metrics, QueryGate } from '../../src/metrics/metrics.js';
import { SdkMetricDataReader } from '../../src/metrics/cloudwatch/client.js';
import { resolveDimensions } from '../../src/metrics/cloudwatch/dimensions.js';
import { cloudwatchMetrics } from '../../src/metrics/cloudwatch/index.js';
import { CloudWatchMetrics } from '../../src/metrics/cloudwatch/metrics.js';
import { freePort } from '../../src/sandbox/ports.js';
import { startMoto, type MotoProcess } from '../../src/sandbox/moto-process.js';
import { createAlb, REGION, useEmulatorCredentials, type AlbFixture } from '../helpers/alb.js';
import { runCli } from '../helpers/cli.js';

const MINUTE = 60_000;
let moto: MotoProcess;
let alb: AlbFixture;
let cw: CloudWatchClient;
let dir: string;

beforeAll(async () => {
  useEmulatorCredentials();
  moto = await startMoto();
  cw = new CloudWatchClient({ region: REGION, endpoint: moto.url });
});
afterAll(async () => {
  await moto?.stop();
});
beforeEach(async () => {
  await moto.reset();
  alb = await createAlb(moto.url);
  dir = mkdtempSync(path.join(tmpdir(), 'cutover-cloudwatch-'));
  return () => rmSync(dir, { recursive: true, force: true });
});

/** The ALB's dimensions of a version's target group, as the ALB publishes them. */
function dimensionsOf(version: string) {
  const tail = (arn: string) => arn.split(':').at(-1)!;
  return [
    { Name: 'LoadBalancer', Value: tail(alb.listenerArn).replace(/^listener\//, '').split('/').slice(0, 3).join('/') },
    { Name: 'TargetGroup', Value: tail(alb.targetGroups[version]!) },
  ];
}

/** Write one minute of a version's ALB metrics at `atMs`. */
async function publish(version: string, atMs: number, m: { requests?: number; target5xx?: number; connectionErrors?: number; responseTimes?: { values: number[]; counts: number[] } }) {
  const Dimensions = dimensionsOf(version);
  const Timestamp = new Date(atMs);
  const data: MetricDatum[] = [
    ...(m.requests !== undefined ? [{ MetricName: 'RequestCount', Dimensions, Timestamp, Value: m.requests, Unit: 'Count' as const }] : []),
    ...(m.target5xx !== undefined ? [{ MetricName: 'HTTPCode_Target_5XX_Count', Dimensions, Timestamp, Value: m.target5xx, Unit: 'Count' as const }] : []),
    ...(m.connectionErrors !== undefined ? [{ MetricName: 'TargetConnectionErrorCount', Dimensions, Timestamp, Value: m.connectionErrors, Unit: 'Count' as const }] : []),
    ...(m.responseTimes ? [{ MetricName: 'TargetResponseTime', Dimensions, Timestamp, Values: m.responseTimes.values, Counts: m.responseTimes.counts, Unit: 'Seconds' as const }] : []),
  ];
  await cw.send(new PutMetricDataCommand({ Namespace: 'AWS/ApplicationELB', MetricData: data }));
}

/** The source as deploy.yaml builds it: dimensions from the alb router's ARNs, the connection from aws:. */
async function source(): Promise<Metrics> {
  const config = (await loadConfig(writeConfig('  canary:\n    steps:\n      - { weight: 10, hold: 1m }\n', ''))).config;
  return cloudwatchMetrics.create({}, { config });
}

/** A source on an endpoint where nothing listens, asked patiently enough to be quick. */
async function unreachableSource(): Promise<Metrics> {
  const url = `http://127.0.0.1:${await freePort()}`;
  const reader = new SdkMetricDataReader({ region: REGION, endpointUrl: url, retries: 1, minDelayMs: 5, maxDelayMs: 10, requestTimeoutMs: 1_000 });
  const dimensions = resolveDimensions({}, { type: 'alb', listenerArn: alb.listenerArn, targetGroups: alb.targetGroups } as { type: string }, ['v1', 'v2']);
  return new CloudWatchMetrics(reader, { namespace: 'AWS/ApplicationELB', dimensions, periodSeconds: 60 });
}

const errorRate: ErrorRateGate = { name: 'errors', type: 'errorRate' };
const latency: LatencyGate = { name: 'p99', type: 'latencyP99', max: 500 };
const ladder: LatencyGate = { name: 'slow', type: 'latencyP99', max: 500, method: 'ladder' };
const scope = (version: string, atMs: number, windowSeconds: number, offsetSeconds?: number) => ({ service: 'patient-api', version, stable: 'v1', windowSeconds, atMs, ...(offsetSeconds ? { offsetSeconds } : {}) });

/** deploy.yaml with the alb router and a cloudwatch section on the emulator. */
function writeConfig(strategy: string, gates = '  - name: errors\n    type: errorRate\n'): string {
  const file = path.join(dir, 'deploy.yaml');
  writeFileSync(
    file,
    `service: patient-api
stable: v1
versions:
  v1: {}
  v2: {}
aws:
  region: ${REGION}
  endpointUrl: ${moto.url}
router:
  type: alb
  listenerArn: ${alb.listenerArn}
  targetGroups:
    v1: ${alb.targetGroups.v1}
    v2: ${alb.targetGroups.v2}
state:
  type: local
  dir: ${path.join(dir, 'state')}
cloudwatch: {}
${gates ? `gates:\n${gates}` : ''}strategy:
${strategy}`,
  );
  return file;
}

describe('cloudwatch measurements on moto', () => {
  // A whole minute in the past: the window's periods are fixed, whatever the clock does meanwhile.
  const T = Math.floor(Date.now() / MINUTE) * MINUTE - 10 * MINUTE;

  it('counts requests and failed requests of one target group over the periods of the window, and shifts it by offsetSeconds', async () => {
    const metrics = await source();
    await publish('v2', T - 200_000, { requests: 999, target5xx: 99 }); // before the window's periods
    await publish('v2', T - 90_000, { requests: 1_000, target5xx: 4, connectionErrors: 1 });
    await publish('v2', T - 30_000, { requests: 1_500, target5xx: 5 });
    await publish('v2', T + 30_000, { requests: 777, target5xx: 77 }); // after the window
    await publish('v1', T - 30_000, { requests: 50_000, target5xx: 1 }); // another target group

    const started = performance.now();
    const counts = await metrics.requestCounts(errorRate, scope('v2', T, 120));
    const ms = performance.now() - started;
    expect(counts).toMatchObject({ kind: 'data', value: { requests: 2_500, errors: 10 } });
    const range = `${new Date(T - 2 * MINUTE).toISOString().replace('.000Z', 'Z')}..${new Date(T).toISOString().replace('.000Z', 'Z')}`;
    const [lb, tg] = dimensionsOf('v2').map((d) => d.Value);
    expect(counts.sent).toEqual([
      `AWS/ApplicationELB RequestCount Sum {LoadBalancer=${lb}, TargetGroup=${tg}} period 120s ${range}`,
      `AWS/ApplicationELB HTTPCode_Target_5XX_Count Sum {LoadBalancer=${lb}, TargetGroup=${tg}} period 120s ${range}`,
      `AWS/ApplicationELB TargetConnectionErrorCount Sum {LoadBalancer=${lb}, TargetGroup=${tg}} period 120s ${range}`,
    ]);
    // A window that starts mid-minute takes that whole minute: the ALB counts a minute at a time.
    expect(await metrics.requestCounts(errorRate, scope('v2', T - 10_000, 70))).toMatchObject({ kind: 'data', value: { requests: 2_500, errors: 10 } });
    // A minute's window two and a half minutes earlier ([T-210s, T-150s), widened to [T-240s, T-120s)).
    expect(await metrics.requestCounts(errorRate, scope('v2', T, 60, 150))).toMatchObject({ kind: 'data', value: { requests: 999, errors: 99 } });
    expect(await metrics.latencyRequests(latency, scope('v2', T, 120))).toMatchObject({ kind: 'data', value: 2_500 });
    // An errorRate check asks for both versions at once, as evaluate.ts does.
    const checks = 20;
    const t0 = performance.now();
    for (let i = 0; i < checks; i++) await Promise.all(['v2', 'v1'].map((v) => metrics.requestCounts(errorRate, scope(v, T, 120))));
    console.log(`first requestCounts on moto ${ms.toFixed(1)} ms; an errorRate check (2 GetMetricData calls at once) ${((performance.now() - t0) / checks).toFixed(1)} ms on average over ${checks}`);
  });

  it('no datapoints is no-data, never zero requests; requests without 5XX datapoints have no errors', async () => {
    const metrics = await source();
    expect(await metrics.requestCounts(errorRate, scope('v2', T, 120))).toMatchObject({ kind: 'no-data' });
    expect(await metrics.latencyRequests(latency, scope('v2', T, 120))).toMatchObject({ kind: 'no-data' });
    expect(await metrics.latencyP99(latency, scope('v2', T, 120))).toMatchObject({ kind: 'no-data' });
    await publish('v1', T - 30_000, { requests: 800 });
    expect(await metrics.requestCounts(errorRate, scope('v1', T, 60))).toMatchObject({ kind: 'data', value: { requests: 800, errors: 0 } });
    expect(await metrics.requestCounts(errorRate, scope('v2', T, 60))).toMatchObject({ kind: 'no-data' });
    expect(await metrics.check(errorRate, { service: 'patient-api', stable: 'v1', candidate: 'v2' })).toMatchObject({ kind: 'no-data' });
  });

  it('moto computes no percentiles: p99 and the ladder\'s PR(:0.5) come back as query errors that say what the gate needs', async () => {
    const metrics = await source();
    await publish('v2', T - 30_000, { requests: 100, responseTimes: { values: [0.1, 0.9], counts: [98, 2] } });
    const p99 = await metrics.latencyP99(latency, scope('v2', T, 60));
    expect(p99).toMatchObject({ kind: 'query-error', message: expect.stringMatching(/^the latency gate needs the p99 statistic of TargetResponseTime: .*answered HTTP 500 with no CloudWatch answer/) });
    expect(p99.sent[0]).toMatch(/TargetResponseTime p99 \{LoadBalancer=app\/patient-api\/\w+, TargetGroup=targetgroup\/patient-api-v2\/\w+\} period 60s/);
    const fast = await metrics.fastRequests(ladder, scope('v2', T, 60));
    expect(fast).toMatchObject({ kind: 'query-error', message: expect.stringMatching(/^the ladder form of the latency gate \(method: ladder\) needs CloudWatch's percentile-rank statistic PR\(:0\.5\) of TargetResponseTime: .*computes no extended statistics/) });
    expect(fast.sent[1]).toMatch(/TargetResponseTime PR\(:0\.5\) \{/);
    // Without datapoints moto answers (nothing): the gate holds as inconclusive until traffic comes.
    expect(await metrics.fastRequests(ladder, scope('v1', T, 60))).toMatchObject({ kind: 'no-data' });
  });

  it('per-org gates and PromQL templates are refused without sending anything', async () => {
    const metrics = await source();
    expect(await metrics.requestCountsByOrg(errorRate, scope('v2', T, 60))).toEqual({ kind: 'query-error', message: 'CloudWatch has no org dimension; per-org gates need Prometheus', query: 'gates errors: perOrg', sent: [] });
    expect(await metrics.check({ ...errorRate, perOrg: true }, { service: 'patient-api', stable: 'v1', candidate: 'v2' })).toMatchObject({ kind: 'query-error', message: 'CloudWatch has no org dimension; per-org gates need Prometheus' });
    expect(await metrics.requestCounts({ ...errorRate, requests: 'sum(increase(x[{{window}}]))' }, scope('v2', T, 60))).toMatchObject({ kind: 'query-error', sent: [], message: expect.stringContaining('PromQL templates') });
    expect(await metrics.latencyP99({ ...latency, histogram: 'http_seconds' }, scope('v2', T, 60))).toMatchObject({ kind: 'query-error', sent: [] });
  });

  it('a query gate is a Metric Math expression over named ALB metrics; moto evaluates only a bare id', async () => {
    const metrics = await source();
    await publish('v2', T - 30_000, { requests: 1_200, target5xx: 12 });
    const gate = (query: string): QueryGate => ({ name: 'custom', type: 'query', query, threshold: 1, direction: 'below' });
    const bare = await metrics.queryValue(gate('requests'), scope('v2', T, 60));
    expect(bare).toMatchObject({ kind: 'data', value: [1_200] });
    expect(bare.sent).toEqual([expect.stringMatching(/^requests = AWS\/ApplicationELB RequestCount Sum \{.*TargetGroup=targetgroup\/patient-api-v2\/.*\} period 60s /), expect.stringMatching(/^value = requests period 60s /)]);
    // moto gives arithmetic nothing back (CloudWatch would give 1): no data, inconclusive, never a pass.
    const ratio = await metrics.queryValue(gate('100 * target_5xx / requests'), scope('v2', T, 60));
    expect(ratio.kind).toBe('no-data');
    expect(ratio.sent.map((s) => s.split(' = ')[0])).toEqual(['requests', 'target_5xx', 'value']);
    expect(await metrics.queryValue(gate('errors / requests'), scope('v2', T, 60))).toMatchObject({ kind: 'query-error', sent: [], message: expect.stringContaining('names errors, which is not one of requests, stable_requests') });
    expect(await metrics.queryValue(gate('sum(rate(x[{{window}}]))'), scope('v2', T, 60))).toMatchObject({ kind: 'query-error', sent: [] });
  });

  it('replays counts to every check from per-minute sums, as `deploy gates backtest` asks', async () => {
    const metrics = await source();
    for (let i = 0; i < 5; i++) await publish('v2', T - (5 - i) * MINUTE + 1_000, { requests: 100 * (i + 1), target5xx: i });
    const times = [1, 2, 3, 4, 5].map((i) => T - 5 * MINUTE + i * MINUTE);
    const replay = await metrics.replayRequestCounts(errorRate, { service: 'patient-api', version: 'v2', stable: 'v1', times, intervalMs: MINUTE });
    expect(replay).toMatchObject({ kind: 'data', value: { requests: [100, 300, 600, 1_000, 1_500], errors: [0, 1, 3, 6, 10] } });
    expect(replay.sent[0]).toMatch(/RequestCount Sum .* period 60s /);
    // Checks every 30s: a check inside a minute sees that minute's sum so far, as a live gate would.
    const halves = [1, 2, 3, 4].map((i) => T - 2 * MINUTE + i * 30_000);
    expect(await metrics.replayRequestCounts(errorRate, { service: 'patient-api', version: 'v2', stable: 'v1', times: halves, intervalMs: 30_000 })).toMatchObject({ kind: 'data', value: { requests: [400, 400, 900, 900] } });
    expect(await metrics.replayRequestCounts(errorRate, { service: 'patient-api', version: 'v1', stable: 'v1', times, intervalMs: MINUTE })).toMatchObject({ kind: 'no-data' });
  });

  it('an endpoint where nothing listens is unreachable, never a pass', async () => {
    const metrics = await unreachableSource();
    const answer = await metrics.requestCounts(errorRate, scope('v2', T, 60));
    expect(answer).toMatchObject({ kind: 'unreachable', message: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+ unreachable after 2 attempts: /) });
    expect(answer.sent).toHaveLength(3);
    expect(await metrics.check(errorRate, { service: 'patient-api', stable: 'v1', candidate: 'v2' })).toMatchObject({ kind: 'unreachable' });
  });
});

describe('cloudwatch gates through the CLI', () => {
  const canary = '  canary:\n    checkInterval: 100ms\n    steps:\n      - { weight: 10, hold: 300ms }\n      - { weight: 50, hold: 300ms }\n';

  /** Minutes of traffic around now for both versions, so every window of the rollout has data. */
  async function traffic(candidate5xx: number) {
    const now = Date.now();
    for (let i = -3; i <= 3; i++) {
      const at = Math.floor(now / MINUTE) * MINUTE + i * MINUTE + 5_000;
      await publish('v1', at, { requests: 60_000, target5xx: 30 });
      await publish('v2', at, { requests: 60_000, target5xx: candidate5xx });
    }
  }

  const events = (stdout: string) => stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

  it('a canary with an errorRate gate on CloudWatch promotes on healthy data from both target groups', async () => {
    await traffic(30);
    const file = writeConfig(canary);
    const started = performance.now();
    const run = await runCli(['promote', '--to', 'v2', '-f', file, '-o', 'json']);
    const ms = performance.now() - started;
    expect(run.code, run.stderr).toBe(0);
    const out = events(run.stdout);
    const gates = out.filter((e) => e.event === 'gate');
    expect(gates.length).toBeGreaterThan(0);
    expect(gates.every((g) => (g.queries as string[]).some((q) => q.startsWith('AWS/ApplicationELB RequestCount Sum {LoadBalancer=app/patient-api/')))).toBe(true);
    expect(gates.filter((g) => g.verdict === 'passed').length).toBeGreaterThan(0);
    expect(await alb.listenerWeights()).toEqual({ v1: 0, v2: 100 });
    console.log(`promote with a CloudWatch errorRate gate on moto: ${ms.toFixed(0)} ms, ${gates.length} gate checks`);
  });

  it('5XX counts written for the candidate\'s target group roll it back (exit 3)', async () => {
    await traffic(3_000);
    const file = writeConfig(canary);
    const run = await runCli(['promote', '--to', 'v2', '-f', file, '-o', 'json']);
    expect(run.code, run.stderr).toBe(3);
    const out = events(run.stdout);
    const failed = out.find((e) => e.event === 'gate' && e.verdict === 'failed');
    expect(failed).toMatchObject({ gate: 'errors' });
    expect(out.find((e) => e.event === 'rollback')).toBeDefined();
    expect(await alb.listenerWeights()).toEqual({ v1: 100 });
  });

  it('`deploy gates backtest` replays the gate over past minutes: it would have failed the candidate with 5% target 5XX', async () => {
    const to = Math.floor(Date.now() / MINUTE) * MINUTE - 5 * MINUTE;
    for (let i = 1; i <= 10; i++) {
      await publish('v1', to - i * MINUTE + 5_000, { requests: 6_000, target5xx: 3 });
      await publish('v2', to - i * MINUTE + 5_000, { requests: 6_000, target5xx: 300 });
    }
    const iso = (t: number) => new Date(t).toISOString();
    const run = await runCli(['gates', 'backtest', '-f', writeConfig(canary), '--from', iso(to - 10 * MINUTE), '--to', iso(to), '--interval', '60s', '--candidate', 'v2', '--stable', 'v1', '-o', 'json']);
    expect(run.code, run.stderr).toBe(0);
    const [replay] = events(run.stdout) as { gate: string; firstFailedAt?: string; points: { verdict: string }[] }[];
    expect(replay).toMatchObject({ gate: 'errors', firstFailedAt: iso(to - 9 * MINUTE) });
    expect(replay!.points).toHaveLength(10);
  });

  it('`deploy iam-policy` includes cloudwatch:GetMetricData on *', async () => {
    const run = await runCli(['iam-policy', '-f', writeConfig(canary)]);
    expect(run.code, run.stderr).toBe(0);
    const policy = JSON.parse(run.stdout) as { Statement: { Action: string[]; Resource: unknown }[] };
    expect(policy.Statement).toContainEqual({ Sid: 'GateMetrics', Effect: 'Allow', Action: ['cloudwatch:GetMetricData'], Resource: '*' });
  });

  it('`deploy plan` names CloudWatch as the source and checks the gate\'s queries; a per-org gate is refused (exit 2)', async () => {
    await traffic(30);
    const run = await runCli(['plan', '-f', writeConfig(canary)]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout + run.stderr).toContain("gates checked against CloudWatch AWS/ApplicationELB metrics of the alb router's load balancer, by target group, per 60s: every query accepted");
    const perOrg = await runCli(['plan', '-f', writeConfig(canary, '  - name: errors\n    type: errorRate\n    perOrg: true\n')]);
    expect(perOrg.code).toBe(2);
    expect(perOrg.stderr).toContain('CloudWatch has no org dimension; per-org gates need Prometheus');
  });
});
