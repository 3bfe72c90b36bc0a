/**
 * A P99 taken from a histogram is an interpolation inside one bucket: the bucket histogram_quantile
 * interpolates in, and how gates, the console and the report say it ("P99 ≤ 5ms", the estimate
 * beside it where the bound alone does not settle the comparison). A measured P99 is said as it is.
 */
import { describe, expect, it } from 'vitest';
import { evaluateGate } from '../../src/gates/evaluate.js';
import type { LatencyGate, LatencyP99, Measurement, Metrics } from '../../src/metrics/metrics.js';
import { histogramQuantile, quantileBucket, type Buckets } from '../../src/metrics/prometheus/histogram.js';
import { measuredText } from '../../src/report/decisions.js';
import { valueVsThreshold } from '../../src/ui/console/format.js';
import { formatP99 } from '../../src/ui/numbers.js';

/** 1,000 requests: 900 within 1 ms, 995 within 5 ms: the P99 (rank 990) lies near the top of (2.5 ms, 5 ms]. */
const TOP_OF_BUCKET: Buckets = [[0.001, 900], [0.0025, 900], [0.005, 995], [0.01, 1000], [Infinity, 1000]];

describe('the bucket of a histogram quantile', () => {
  it('is the bucket histogram_quantile interpolates in, the estimate inside it', () => {
    expect(quantileBucket(0.99, TOP_OF_BUCKET)).toEqual({ lower: 0.0025, upper: 0.005 });
    expect(histogramQuantile(0.99, TOP_OF_BUCKET)).toBeCloseTo(0.0025 + 0.0025 * (90 / 95), 12);
  });

  it('is the first bucket from 0, and Infinity above the highest bound where the estimate is that bound', () => {
    const fast: Buckets = [[0.005, 1000], [0.01, 1000], [Infinity, 1000]];
    expect(quantileBucket(0.99, fast)).toEqual({ lower: 0, upper: 0.005 });
    const slow: Buckets = [[0.005, 900], [0.01, 980], [Infinity, 1000]];
    expect(quantileBucket(0.99, slow)).toEqual({ lower: 0.01, upper: Infinity });
    expect(histogramQuantile(0.99, slow)).toBe(0.01);
  });

  it('reads buckets as Prometheus does: in any order, one bound written twice as one, counts never falling', () => {
    const shuffled: Buckets = [[Infinity, 1000], [0.005, 995], [0.001, 900], [0.0025, 900], [0.01, 1000]];
    expect(quantileBucket(0.99, shuffled)).toEqual({ lower: 0.0025, upper: 0.005 });
    const twice: Buckets = [[0.5, 400], [0.5, 590], [1, 1000], [Infinity, 1000]];
    expect(quantileBucket(0.5, twice)).toEqual({ lower: 0, upper: 0.5 });
    // A rate over a scrape gap can dip below the bucket before it; Prometheus raises it to that.
    const dipped: Buckets = [[0.1, 985], [0.25, 980], [0.5, 1000], [Infinity, 1000]];
    expect(quantileBucket(0.99, dipped)).toEqual({ lower: 0.25, upper: 0.5 });
    expect(histogramQuantile(0.99, dipped)).toBeCloseTo(0.25 + 0.25 * (5 / 15), 12);
  });

  it('is none when nothing was counted or the histogram has no +Inf bucket', () => {
    expect(quantileBucket(0.99, [[0.005, 0], [Infinity, 0]])).toBeUndefined();
    expect(quantileBucket(0.99, [[0.005, 10], [0.01, 20]])).toBeUndefined();
    expect(histogramQuantile(0.99, [[0.005, 0], [Infinity, 0]])).toBeNaN();
  });
});

describe('a P99 said for people', () => {
  it('by its bucket when a histogram bounds it, as measured otherwise', () => {
    expect(formatP99(4.95, { lower: 2.5, upper: 5 })).toBe('≤ 5ms');
    expect(formatP99(10_000, { lower: 10_000 })).toBe('> 10000ms');
    expect(formatP99(4.95)).toBe('4.95ms');
  });

  it('in the console by its bucket, compared by the bound only where that agrees with the verdict', () => {
    const line = { gate: 'p99', type: 'latencyP99' as const, reason: '', history: [], value: 4.95, bucket: { lower: 2.5, upper: 5 }, threshold: 10 };
    expect(valueVsThreshold({ ...line, verdict: 'passed' })).toBe('≤5ms < 10ms');
    expect(valueVsThreshold({ ...line, verdict: 'passed', threshold: 4 })).toBe('≤5ms vs 4ms');
    expect(valueVsThreshold({ ...line, verdict: 'failed', value: 10_000, bucket: { lower: 10_000 }, threshold: 8_000 })).toBe('>10s > 8s');
    expect(valueVsThreshold({ ...line, verdict: 'passed', value: 4.95, bucket: undefined })).toBe('4.95ms < 10ms');
  });

  it('in the report by its bucket, its estimate beside it', () => {
    expect(measuredText(4.95, { lower: 2.5, upper: 5 })).toBe('≤ 5 (est. 4.95)');
    expect(measuredText(10_000, { lower: 10_000 })).toBe('> 10000 (est. 10000)');
    expect(measuredText(620)).toBe('620');
    expect(measuredText(undefined)).toBe('');
  });
});

/** A metrics source whose P99s come from a table by version (seconds, bucket in seconds); 1,000 requests each. */
function p99s(table: Record<string, LatencyP99>): Metrics {
  const unreachable = async (): Promise<Measurement<never>> => ({ kind: 'unreachable', message: 'not in this fake', query: 'n/a', sent: [] });
  return {
    name: 'FakeProm',
    unreachableHint: 'start the fake',
    requestCounts: unreachable,
    requestCountsByOrg: unreachable,
    latencyP99: async (_gate, scope) => ({ kind: 'data', value: table[scope.version]!, sent: [`p99 ${scope.version}`, `buckets ${scope.version}`] }),
    latencyRequests: async (_gate, scope) => ({ kind: 'data', value: 1_000, sent: [`count ${scope.version}`] }),
    fastRequests: unreachable,
    queryValue: unreachable,
    replayRequestCounts: unreachable,
    replayLatency: unreachable,
    replayQueryValues: unreachable,
    check: unreachable,
  };
}

describe('the latency gate on a histogram', () => {
  const w = { service: 'patient-api', stable: 'v1', candidate: 'v2', startMs: 0, atMs: 300_000 };
  const gate = (over: Partial<LatencyGate>): LatencyGate => ({ name: 'p99', type: 'latencyP99', ...over });
  const inBucket = (seconds: number, lower: number, upper: number): LatencyP99 => ({ seconds, bucket: { lower, upper } });

  it('says the bucket bound when it settles the limit, and carries the estimate and the bucket', async () => {
    const r = await evaluateGate(gate({ max: 10 }), p99s({ v2: inBucket(0.00495, 0.0025, 0.005) }), w);
    expect(r).toMatchObject({ verdict: 'passed', value: 4.95, bucket: { lower: 2.5, upper: 5 }, threshold: 10, reason: 'v2 P99 ≤ 5ms ≤ 10ms' });
    expect(r.queries).toEqual(['p99 v2', 'buckets v2', 'count v2']);
  });

  it('judges a limit inside the bucket by the estimate, and says so', async () => {
    const below = await evaluateGate(gate({ max: 4 }), p99s({ v2: inBucket(0.0035, 0.0025, 0.005) }), w);
    expect(below).toMatchObject({ verdict: 'passed', reason: 'v2 P99 ≤ 5ms (estimated 3.5ms) ≤ 4ms' });
    const above = await evaluateGate(gate({ max: 8 }), p99s({ v2: inBucket(0.0182, 0.01, 0.025) }), w);
    expect(above).toMatchObject({ verdict: 'failed', value: 18.2, bucket: { lower: 10, upper: 25 }, reason: 'v2 P99 ≤ 25ms (estimated 18.2ms) > 8ms' });
  });

  it('beyond the highest bucket: failed over a limit at or below that bound, inconclusive — never passed — above it', async () => {
    const beyond = p99s({ v2: inBucket(10, 10, Infinity) });
    const over = await evaluateGate(gate({ max: 10_000 }), beyond, w);
    expect(over).toMatchObject({ verdict: 'failed', value: 10_000, bucket: { lower: 10_000 }, reason: 'v2 P99 > 10000ms > 10000ms' });
    expect(over.bucket).not.toHaveProperty('upper');
    const unknown = await evaluateGate(gate({ max: 30_000 }), beyond, w);
    expect(unknown).toMatchObject({ verdict: 'inconclusive', reason: "v2 P99 > 10000ms, beyond the histogram's highest bucket: it cannot tell whether that is within 30000ms" });
  });

  it('against stable × factor: both buckets, and the estimate the limit was made from', async () => {
    const r = await evaluateGate(gate({ maxFactor: 2 }), p99s({ v2: inBucket(0.00495, 0.0025, 0.005), v1: inBucket(0.00475, 0.0025, 0.005) }), w);
    expect(r).toMatchObject({ verdict: 'passed', value: 4.95, threshold: 9.5, baseline: 4.75, baselineBucket: { lower: 2.5, upper: 5 }, reason: 'v2 P99 ≤ 5ms ≤ 9.5ms (v1 ≤ 5ms, estimated 4.75ms, × 2)' });
  });

  it('a measured P99 is said as it is', async () => {
    const r = await evaluateGate(gate({ max: 500 }), p99s({ v2: { seconds: 0.62 } }), w);
    expect(r).toMatchObject({ verdict: 'failed', value: 620, reason: 'v2 P99 620ms > 500ms' });
    expect(r).not.toHaveProperty('bucket');
  });
});
