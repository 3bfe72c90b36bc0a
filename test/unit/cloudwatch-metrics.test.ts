/**
 * The cloudwatch metrics source without a server: its section and descriptor, the dimensions it
 * takes from the alb router, and — answered at the SDK's send, the client boundary — what moto
 * cannot give: the p99 and PR(:x) statistics, Metric Math arithmetic, several pages, a failed
 * query's status, refused credentials and throttling. The measurements against moto's real
 * CloudWatch are in test/integration/cloudwatch.test.ts.
 */
import type { GetMetricDataCommand, GetMetricDataCommandOutput, MetricDataQuery } from '@aws-sdk/client-cloudwatch';
import { describe, expect, it } from 'vitest';
import { configJsonSchema, configSchema } from '../../src/config/schema.js';
import { UsageError } from '../../src/errors.js';
import { evaluateGate } from '../../src/gates/evaluate.js';
import type { ErrorRateGate, LatencyGate, QueryGate } from '../../src/metrics/metrics.js';
import { SdkMetricDataReader, type SendFn } from '../../src/metrics/cloudwatch/client.js';
import { loadBalancerDimension, resolveDimensions, targetGroupDimension } from '../../src/metrics/cloudwatch/dimensions.js';
import { cloudwatchMetrics } from '../../src/metrics/cloudwatch/index.js';
import { CloudWatchMetrics } from '../../src/metrics/cloudwatch/metrics.js';
import { covering } from '../../src/metrics/cloudwatch/queries.js';

const LISTENER = 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/patient-api/50dc6c495c0c9188/f2f7dc8efc522ab2';
const TG = (v: string, id: string) => `arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/patient-api-${v}/${id}`;
const ALB_ROUTER = { type: 'alb', listenerArn: LISTENER, targetGroups: { v1: TG('v1', '943f017f100becff'), v2: TG('v2', '0123456789abcdef') } };
const MINUTE = 60_000;
const T = Date.UTC(2026, 10, 29, 21, 0, 0);

type Input = GetMetricDataCommand['input'];

/** A send that answers each GetMetricData from `answer` (CloudWatch's part) and records the inputs. */
function scripted(answer: (input: Input, call: number) => Partial<GetMetricDataCommandOutput> | Error) {
  const inputs: Input[] = [];
  const send: SendFn = async (command) => {
    inputs.push(command.input);
    const out = answer(command.input, inputs.length);
    if (out instanceof Error) throw out;
    return { $metadata: {}, ...out } as GetMetricDataCommandOutput;
  };
  return { send, inputs };
}

/** One datapoint at the request's start for every query, its value by the query's statistic. */
function onePoint(values: Record<string, number | undefined>) {
  return (input: Input): Partial<GetMetricDataCommandOutput> => ({
    MetricDataResults: (input.MetricDataQueries ?? []).map((q: MetricDataQuery) => {
      const key = q.MetricStat ? `${q.MetricStat.Metric!.MetricName} ${q.MetricStat.Stat}` : (q.Expression ?? '');
      const v = values[key];
      return { Id: q.Id, StatusCode: 'Complete', Timestamps: v === undefined ? [] : [input.StartTime as Date], Values: v === undefined ? [] : [v] };
    }),
  });
}

function metricsWith(send: SendFn, bounds = {}) {
  const reader = new SdkMetricDataReader({ region: 'eu-west-1', retries: 2, minDelayMs: 1, maxDelayMs: 2, ...bounds }, send);
  return new CloudWatchMetrics(reader, { namespace: 'AWS/ApplicationELB', dimensions: resolveDimensions({}, ALB_ROUTER, ['v1', 'v2']), periodSeconds: 60 }, () => T);
}

const errorRate: ErrorRateGate = { name: 'errors', type: 'errorRate' };
const latency: LatencyGate = { name: 'p99', type: 'latencyP99', max: 500 };
const scope = (version: string, windowSeconds = 120) => ({ service: 'patient-api', version, stable: 'v1', windowSeconds });

describe('cloudwatch section', () => {
  const base = { service: 'patient-api', stable: 'v1', versions: { v1: {}, v2: {} }, router: ALB_ROUTER, gates: [{ name: 'errors', type: 'errorRate' }] };

  it('accepts an empty section next to the alb router, dimension values or ARNs, and whole-minute periods', () => {
    expect(configSchema.safeParse({ ...base, cloudwatch: {} }).success).toBe(true);
    const parsed = configSchema.parse({ ...base, cloudwatch: { loadBalancer: 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/other/1a2b3c4d5e6f7a8b', targetGroups: { v2: 'targetgroup/other-v2/00aa11bb22cc33dd' }, period: '5m', namespace: 'Custom/ALB' } });
    expect(parsed.cloudwatch).toEqual({ loadBalancer: 'app/other/1a2b3c4d5e6f7a8b', targetGroups: { v2: 'targetgroup/other-v2/00aa11bb22cc33dd' }, period: 300_000, namespace: 'Custom/ALB' });
    expect(JSON.stringify(configJsonSchema())).toContain('"cloudwatch"');
  });

  it('refuses periods that are not whole minutes, values that are no ALB dimension, unknown fields and a second metrics source', () => {
    const issues = (cloudwatch: unknown, extra = {}) => configSchema.safeParse({ ...base, cloudwatch, ...extra }).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [];
    expect(issues({ period: '90s' })).toEqual(['cloudwatch.period: must be whole minutes, like 60s or 5m: the ALB publishes its metrics a minute at a time']);
    expect(issues({ loadBalancer: 'patient-api' })).toEqual(['cloudwatch.loadBalancer: must be the ALB dimension value app/<name>/<id> or its ARN (got "patient-api")']);
    expect(issues({ targetGroups: { v2: 'tg-1' } })[0]).toMatch(/^cloudwatch\.targetGroups\.v2: must be a target group dimension value targetgroup\/<name>\/<id> or its ARN/);
    expect(issues({ url: 'http://x' })[0]).toMatch(/^cloudwatch: /);
    expect(issues({}, { prometheus: { url: 'http://127.0.0.1:9090' } })).toEqual(['cloudwatch: gates read one metrics source: choose one of prometheus: and cloudwatch:']);
  });

  it('describes itself, needs GetMetricData on * only, and uses the aws connection', () => {
    expect(cloudwatchMetrics.describe({})).toBe("CloudWatch AWS/ApplicationELB metrics of the alb router's load balancer, by target group, per 60s");
    expect(cloudwatchMetrics.describe({ loadBalancer: 'app/x/1', period: 300_000 })).toBe('CloudWatch AWS/ApplicationELB metrics of app/x/1, by target group, per 300s');
    expect(cloudwatchMetrics.iam!({}, configSchema.parse({ ...base, cloudwatch: {} }))).toEqual([{ Sid: 'GateMetrics', Effect: 'Allow', Action: ['cloudwatch:GetMetricData'], Resource: '*' }]);
    expect(cloudwatchMetrics.platforms).toEqual(['aws']);
  });
});

describe('cloudwatch dimensions', () => {
  it('takes the load balancer from the listener ARN and each target group from its ARN; the section wins', () => {
    expect(resolveDimensions({}, ALB_ROUTER, ['v1', 'v2'])).toEqual({
      loadBalancer: 'app/patient-api/50dc6c495c0c9188',
      targetGroups: { v1: 'targetgroup/patient-api-v1/943f017f100becff', v2: 'targetgroup/patient-api-v2/0123456789abcdef' },
    });
    expect(resolveDimensions({ loadBalancer: 'app/b/ff', targetGroups: { v2: 'targetgroup/b-v2/ee' } }, ALB_ROUTER, ['v1', 'v2'])).toEqual({
      loadBalancer: 'app/b/ff',
      targetGroups: { v1: 'targetgroup/patient-api-v1/943f017f100becff', v2: 'targetgroup/b-v2/ee' },
    });
    expect(loadBalancerDimension(`${LISTENER.replace(':listener/', ':listener-rule/')}/9f`)).toBe('app/patient-api/50dc6c495c0c9188');
    expect(targetGroupDimension('targetgroup/x/1')).toBe('targetgroup/x/1');
  });

  it('without the alb router, names the field to set (exit 2)', () => {
    expect(() => resolveDimensions({}, { type: 'nginx' }, ['v1'])).toThrow(UsageError);
    expect(() => resolveDimensions({}, { type: 'nginx' }, ['v1'])).toThrow('cloudwatch.loadBalancer is not set, and the nginx router names no ALB listener to take it from');
    expect(() => resolveDimensions({ loadBalancer: 'app/x/1', targetGroups: { v1: 'targetgroup/x/1' } }, { type: 'nginx' }, ['v1', 'v2'])).toThrow('cloudwatch.targetGroups names no target group for v2');
  });

  it('widens a window to the whole periods it touches, never to nothing', () => {
    expect(covering(T + 23_000, T + 100_000, 60)).toEqual({ startMs: T, endMs: T + 2 * MINUTE });
    expect(covering(T, T + MINUTE, 60)).toEqual({ startMs: T, endMs: T + MINUTE });
    expect(covering(T, T, 60)).toEqual({ startMs: T, endMs: T + MINUTE });
  });
});

describe('cloudwatch measurements, CloudWatch answering at the client boundary', () => {
  it('sends one GetMetricData per measurement: one period spanning the window, ascending, the version\'s dimensions', async () => {
    const { send, inputs } = scripted(onePoint({ 'RequestCount Sum': 4_000, 'HTTPCode_Target_5XX_Count Sum': 6, 'TargetConnectionErrorCount Sum': 2 }));
    const answer = await metricsWith(send).requestCounts(errorRate, { ...scope('v2', 90), atMs: T - 15_000 });
    expect(answer).toMatchObject({ kind: 'data', value: { requests: 4_000, errors: 8 } });
    expect(inputs).toHaveLength(1);
    expect(inputs[0]).toMatchObject({ StartTime: new Date(T - 2 * MINUTE), EndTime: new Date(T), ScanBy: 'TimestampAscending' });
    expect(inputs[0]!.MetricDataQueries![0]).toEqual({
      Id: 'requests',
      MetricStat: { Metric: { Namespace: 'AWS/ApplicationELB', MetricName: 'RequestCount', Dimensions: [{ Name: 'LoadBalancer', Value: 'app/patient-api/50dc6c495c0c9188' }, { Name: 'TargetGroup', Value: 'targetgroup/patient-api-v2/0123456789abcdef' }] }, Period: 120, Stat: 'Sum' },
      ReturnData: true,
    });
    expect(answer.sent[0]).toBe('AWS/ApplicationELB RequestCount Sum {LoadBalancer=app/patient-api/50dc6c495c0c9188, TargetGroup=targetgroup/patient-api-v2/0123456789abcdef} period 120s 2026-11-29T20:58:00Z..2026-11-29T21:00:00Z');
  });

  it('p99 as CloudWatch computes it judges the latency gate (moto cannot compute it)', async () => {
    const { send } = scripted(onePoint({ 'TargetResponseTime p99': 0.62, 'RequestCount Sum': 900 }));
    const metrics = metricsWith(send);
    // A measured percentile: no histogram bucket comes with it, and the reason says the value as it is.
    expect(await metrics.latencyP99(latency, scope('v2'))).toEqual({ kind: 'data', value: { seconds: 0.62 }, sent: [expect.any(String)] });
    const result = await evaluateGate(latency, metrics, { service: 'patient-api', stable: 'v1', candidate: 'v2', startMs: T - 2 * MINUTE, atMs: T });
    expect(result).toMatchObject({ verdict: 'failed', value: 620, threshold: 500, reason: 'v2 P99 620ms > 500ms' });
    expect(result).not.toHaveProperty('bucket');
  });

  it('PR(:max) gives the ladder its fast requests (moto cannot compute it)', async () => {
    const { send, inputs } = scripted(onePoint({ 'RequestCount Sum': 2_000, 'TargetResponseTime PR(:0.5)': 97.5 }));
    const answer = await metricsWith(send).fastRequests({ ...latency, method: 'ladder' }, scope('v2'));
    expect(answer).toMatchObject({ kind: 'data', value: { requests: 2_000, fast: 1_950 } });
    expect(inputs[0]!.MetricDataQueries![1]!.MetricStat!.Stat).toBe('PR(:0.5)');
  });

  it('a Metric Math expression is evaluated by CloudWatch over the inputs it names (moto evaluates only a bare id)', async () => {
    const { send, inputs } = scripted(onePoint({ '100 * (target_5xx + connection_errors) / requests - 100 * stable_target_5xx / stable_requests': 0.3 }));
    const gate: QueryGate = { name: 'delta', type: 'query', query: '100 * (target_5xx + connection_errors) / requests - 100 * stable_target_5xx / stable_requests', threshold: 0.5, direction: 'below' };
    const answer = await metricsWith(send).queryValue(gate, scope('v2'));
    expect(answer).toMatchObject({ kind: 'data', value: [0.3] });
    const queries = inputs[0]!.MetricDataQueries!;
    expect(queries.map((q) => [q.Id, q.MetricStat?.Metric?.Dimensions?.[1]?.Value ?? q.Expression, q.ReturnData])).toEqual([
      ['requests', 'targetgroup/patient-api-v2/0123456789abcdef', false],
      ['stable_requests', 'targetgroup/patient-api-v1/943f017f100becff', false],
      ['target_5xx', 'targetgroup/patient-api-v2/0123456789abcdef', false],
      ['stable_target_5xx', 'targetgroup/patient-api-v1/943f017f100becff', false],
      ['connection_errors', 'targetgroup/patient-api-v2/0123456789abcdef', false],
      ['value', gate.query, true],
    ]);
  });

  it('reads every page and sorts datapoints by time', async () => {
    const { send, inputs } = scripted((input, call) => ({
      MetricDataResults: [{ Id: 'requests', StatusCode: call === 1 ? 'PartialData' : 'Complete', Timestamps: [new Date(T - (call === 1 ? 1 : 3) * MINUTE), new Date(T - (call === 1 ? 2 : 4) * MINUTE)], Values: call === 1 ? [40, 30] : [20, 10] }],
      ...(call === 1 ? { NextToken: 'page-2' } : {}),
    }));
    const replay = await metricsWith(send).replayRequestCounts(errorRate, { service: 'patient-api', version: 'v2', stable: 'v1', times: [2, 3, 4, 5].map((i) => T - 5 * MINUTE + i * MINUTE), intervalMs: MINUTE });
    expect(replay).toMatchObject({ kind: 'data', value: { requests: [10, 30, 60, 100], errors: [0, 0, 0, 0] } });
    expect(inputs.map((i) => i.NextToken)).toEqual([undefined, 'page-2']);
  });

  it('replays the P99 from the start to each check with one query per span, 500 to a call', async () => {
    const times = Array.from({ length: 600 }, (_, i) => T + (i + 1) * MINUTE);
    const { send, inputs } = scripted((input) => ({
      MetricDataResults: (input.MetricDataQueries ?? []).map((q) => ({
        Id: q.Id,
        StatusCode: 'Complete',
        Timestamps: [input.StartTime as Date],
        // The p99 of a span of n minutes answers n ms, so each check's span shows in its value.
        Values: [q.MetricStat!.Stat === 'Sum' ? 1_000 : q.MetricStat!.Period! / 60 / 1000],
      })),
    }));
    const replay = await metricsWith(send).replayLatency(latency, { service: 'patient-api', version: 'v2', stable: 'v1', times, intervalMs: MINUTE });
    expect(replay.kind).toBe('data');
    if (replay.kind !== 'data') return;
    expect(replay.value.p99.slice(0, 3)).toEqual([0.001, 0.002, 0.003]);
    expect(replay.value.p99.at(-1)).toBe(0.6);
    expect(inputs.map((i) => i.MetricDataQueries!.length)).toEqual([1, 500, 100]);
    expect(replay.sent).toHaveLength(601);
  });

  it('a query CloudWatch could not compute, or rejects, is a query error; throttling is retried', async () => {
    const failed = scripted(() => ({ MetricDataResults: [{ Id: 'requests', StatusCode: 'InternalError', Messages: [{ Code: 'ArithmeticError', Value: 'division by zero' }] }] }));
    expect(await metricsWith(failed.send).latencyRequests(latency, scope('v2'))).toMatchObject({ kind: 'query-error', message: 'CloudWatch could not compute requests: ArithmeticError: division by zero' });

    const invalid = scripted(() => Object.assign(new Error('The value p999.9 for parameter Stat is invalid.'), { name: 'InvalidParameterValueException', $fault: 'client', $metadata: { httpStatusCode: 400 } }));
    expect(await metricsWith(invalid.send).latencyP99(latency, scope('v2'))).toMatchObject({ kind: 'query-error', message: 'the latency gate needs the p99 statistic of TargetResponseTime: InvalidParameterValueException: The value p999.9 for parameter Stat is invalid.' });
    expect(invalid.inputs).toHaveLength(1);

    const throttled = scripted((input, call) => (call < 3 ? Object.assign(new Error('Rate exceeded'), { name: 'Throttling', $fault: 'client', $metadata: { httpStatusCode: 400 } }) : onePoint({ 'RequestCount Sum': 5 })(input)));
    expect(await metricsWith(throttled.send).latencyRequests(latency, scope('v2'))).toMatchObject({ kind: 'data', value: 5 });
    expect(throttled.inputs).toHaveLength(3);
  });

  it('refused and missing credentials make the source unreachable, naming what to fix', async () => {
    const denied = scripted(() => Object.assign(new Error('User is not authorized to perform: cloudwatch:GetMetricData'), { name: 'AccessDenied', $fault: 'client', $metadata: { httpStatusCode: 403 } }));
    expect(await metricsWith(denied.send).requestCounts(errorRate, scope('v2'))).toMatchObject({ kind: 'unreachable', message: expect.stringContaining('refused GetMetricData: AccessDenied: User is not authorized to perform: cloudwatch:GetMetricData; the credentials need cloudwatch:GetMetricData (`deploy iam-policy`)') });
    const noCredentials = scripted(() => Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' }));
    expect(await metricsWith(noCredentials.send).requestCounts(errorRate, scope('v2'))).toMatchObject({ kind: 'unreachable', message: expect.stringContaining('no AWS credentials') });
  });

  it('an errorRate gate on CloudWatch reaches the same verdicts: healthy passes, a worse candidate fails, no datapoints are inconclusive', async () => {
    const by = (counts: Record<string, [number, number]>) =>
      scripted((input) => {
        const tg = input.MetricDataQueries![0]!.MetricStat!.Metric!.Dimensions![1]!.Value!;
        const [requests, errors] = counts[tg.includes('-v2/') ? 'v2' : 'v1'] ?? [undefined, undefined];
        return onePoint({ 'RequestCount Sum': requests, 'HTTPCode_Target_5XX_Count Sum': errors })(input);
      }).send;
    const window = { service: 'patient-api', stable: 'v1', candidate: 'v2', startMs: T - 10 * MINUTE, atMs: T };
    const gate: ErrorRateGate = { ...errorRate, method: 'confidence-sequence' };
    const healthy = await evaluateGate(gate, metricsWith(by({ v1: [2_000_000, 10_000], v2: [2_000_000, 10_000] })), window);
    expect([healthy.verdict, healthy.reason]).toEqual(['passed', 'v2 errors 0.5% vs v1 0.5%: at most 0.046 points more']);
    expect((await evaluateGate(gate, metricsWith(by({ v1: [2_000_000, 10_000], v2: [2_000_000, 30_000] })), window)).verdict).toBe('failed');
    const silent = await evaluateGate(gate, metricsWith(by({ v1: [2_000_000, 10_000] })), window);
    expect([silent.verdict, silent.reason]).toEqual(['inconclusive', 'no requests to v2 in the last 600s']);
  });
});
