/**
 * The Prometheus provider against a real Prometheus, started here on a free loopback port with
 * series backfilled by promtool, so every expected value is known to the sample: counters, and
 * latency histograms whose P99 comes with the bucket it lies in. Fails, never skips, when
 * Prometheus cannot start.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluateGate } from '../../src/gates/evaluate.js';
import type { LatencyGate } from '../../src/metrics/metrics.js';
import { PrometheusClient } from '../../src/metrics/prometheus/client.js';
import { bucketBound, histogramQuantile } from '../../src/metrics/prometheus/histogram.js';
import { PrometheusMetrics } from '../../src/metrics/prometheus/metrics.js';
import { renderTemplate } from '../../src/metrics/prometheus/promql.js';
import { backfillOpenMetrics, startPrometheus, type PrometheusProcess } from '../../src/sandbox/prometheus-process.js';

const STEP_S = 15;
/** Last backfilled sample, on the 15 s grid, so queries at it see no extrapolation at the end. */
const END_S = Math.floor(Date.now() / 1000 / STEP_S) * STEP_S - STEP_S;
const START_S = END_S - 3600;
/** The 200s counter restarts from zero five minutes before the end: inside a 10m window. */
const RESET_S = END_S - 300;
const EVIL = 'v2"evil\\x';

type Point = [timeS: number, value: number];

/** Counter samples every 15 s over the last hour; `inc(i)` is added at step i, restarting from 0 at `resetAt`. */
function counter(first: number, inc: (i: number) => number, resetAt?: number): Point[] {
  const points: Point[] = [];
  let value = first;
  for (let i = 0, t = START_S; t <= END_S; i++, t += STEP_S) {
    if (i > 0) value = t === resetAt ? inc(i) : value + inc(i);
    points.push([t, value]);
  }
  return points;
}

const series = {
  ok: { labels: 'version="v1",code="200"', points: counter(5_000, () => 3, RESET_S) },
  // Errors in bursts of 4 every minute, so extrapolation between samples changes the answer.
  failed: { labels: 'version="v1",code="500"', points: counter(100, (i) => (i % 4 === 0 ? 4 : 0)) },
  // OpenMetrics escaping written by hand, so the fixture does not depend on the code under test.
  evil: { labels: 'version="v2\\"evil\\\\x",code="200"', points: counter(0, () => 2) },
  decoy: { labels: 'version="v2",code="200"', points: counter(0, () => 7) },
};

/**
 * Latency histograms, 1,000 requests every 15 s: v3's P99 (rank 990) near the top of its
 * (2.5 ms, 5 ms] bucket, where histogram_quantile answers 4.87 ms every time; v4's beyond its
 * highest bound, 10 ms, where histogram_quantile answers that bound.
 */
const histograms: Record<string, Record<string, number>> = {
  v3: { '0.001': 900, '0.0025': 900, '0.005': 995, '0.01': 1000, '+Inf': 1000 },
  v4: { '0.001': 0, '0.0025': 0, '0.005': 900, '0.01': 980, '+Inf': 1000 },
};

function openMetrics(): string {
  const lines = ['# TYPE http_requests counter'];
  for (const s of Object.values(series)) {
    for (const [t, v] of s.points) lines.push(`http_requests_total{${s.labels}} ${v} ${t}`);
  }
  lines.push('# TYPE http_request_duration_seconds histogram');
  for (const [version, buckets] of Object.entries(histograms)) {
    for (const [le, n] of Object.entries(buckets)) {
      for (const [t, v] of counter(0, () => n)) lines.push(`http_request_duration_seconds_bucket{version="${version}",le="${le}"} ${v} ${t}`);
    }
    for (const [t, v] of counter(0, () => buckets['+Inf']!)) lines.push(`http_request_duration_seconds_count{version="${version}"} ${v} ${t}`);
  }
  return `${lines.join('\n')}\n# EOF\n`;
}

/**
 * `increase(x[range])` as Prometheus 2.42 computes it (promql/functions.go, extrapolatedRate):
 * samples in [start, end] both ends included, counter resets added back, then extrapolated to
 * the window edges when the first/last sample is within 1.1 average intervals of them.
 */
function prometheusIncrease(points: Point[], atS: number, rangeS: number): number {
  const inRange = points.filter(([t]) => t >= atS - rangeS && t <= atS);
  const first = inRange[0]!;
  const last = inRange[inRange.length - 1]!;
  let result = last[1] - first[1];
  for (let i = 1; i < inRange.length; i++) if (inRange[i]![1] < inRange[i - 1]![1]) result += inRange[i - 1]![1];
  const sampled = last[0] - first[0];
  const average = sampled / (inRange.length - 1);
  let toStart = first[0] - (atS - rangeS);
  const toEnd = atS - last[0];
  if (result > 0 && first[1] >= 0) toStart = Math.min(toStart, sampled * (first[1] / result));
  const threshold = average * 1.1;
  const extrapolated = sampled + (toStart < threshold ? toStart : average / 2) + (toEnd < threshold ? toEnd : average / 2);
  return result * (extrapolated / sampled);
}

let dataDir: string;
let prometheus: PrometheusProcess;
let provider: PrometheusClient;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'cutover-prom-'));
  await backfillOpenMetrics({ dataDir, openmetrics: openMetrics() });
  prometheus = await startPrometheus({ dataDir });
  provider = new PrometheusClient({ url: prometheus.url, timeoutMs: 2_000, retries: 1 });
});

afterAll(async () => {
  await prometheus?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

const V1_INCREASE = 'sum(increase(http_requests_total{version="v1"}[10m]))';

describe('PrometheusClient against a real Prometheus', () => {
  it('counts increase across a counter reset, exactly on the sample grid', async () => {
    const answer = await provider.query(V1_INCREASE, END_S * 1000);
    // 40 steps in the window: 40 × 3 for the 200s despite their reset, 10 bursts × 4 for the 500s.
    expect(answer).toEqual({ kind: 'data', samples: [{ labels: {}, value: 160 }] });
  });

  it('extrapolates increase between samples as Prometheus does', async () => {
    const atS = END_S - 7;
    const expected = prometheusIncrease(series.ok.points, atS, 600) + prometheusIncrease(series.failed.points, atS, 600);
    // 117 + 36 counted between the samples, stretched by 600/585 to the window's edges.
    expect(expected).toBeCloseTo((117 + 36) * (600 / 585), 9);
    const answer = await provider.query(V1_INCREASE, atS * 1000);
    expect(answer.kind).toBe('data');
    expect(answer.kind === 'data' && answer.samples[0]!.value).toBeCloseTo(expected, 9);
  });

  it('returns the points of a range query', async () => {
    const answer = await provider.queryRange('http_requests_total{code="500"}', (END_S - 600) * 1000, END_S * 1000, 60_000);
    if (answer.kind !== 'data') throw new Error(`expected data, got ${JSON.stringify(answer)}`);
    expect(answer.series).toHaveLength(1);
    const expected = series.failed.points.filter(([t]) => t >= END_S - 600 && (t - END_S) % 60 === 0);
    expect(answer.series[0]!.points).toEqual(expected.map(([t, v]) => [t * 1000, v]));
  });

  it('reports a PromQL typo as a query error in Prometheus’ words', async () => {
    const answer = await provider.query('sum(rate(http_requests_total[5m])', END_S * 1000);
    expect(answer.kind).toBe('query-error');
    expect(answer.kind === 'query-error' && answer.message).toMatch(/^bad_data: .*unclosed left parenthesis/);
  });

  it('answers no-data for a metric that does not exist', async () => {
    expect(await provider.query('sum(rate(no_such_metric_total[5m]))', END_S * 1000)).toEqual({ kind: 'no-data' });
  });

  it('answers NaN for 0/0', async () => {
    const answer = await provider.query('0/0');
    expect(answer.kind === 'data' && answer.samples).toEqual([{ labels: {}, value: NaN }]);
  });

  it('matches an escaped label value exactly, and an injection attempt matches nothing', async () => {
    const query = (version: string) => renderTemplate('http_requests_total{version="{{version}}"}', { labels: { version } });
    const answer = await provider.query(query(EVIL), END_S * 1000);
    if (answer.kind !== 'data') throw new Error(`expected data, got ${JSON.stringify(answer)}`);
    expect(answer.samples).toEqual([{ labels: { __name__: 'http_requests_total', version: EVIL, code: '200' }, value: 480 }]);
    expect(await provider.query(query('v2"} or vector(1) or {x="'), END_S * 1000)).toEqual({ kind: 'no-data' });
  });

  it('is unreachable while Prometheus is down and answers again after a restart on the same data', async () => {
    const { port } = prometheus;
    prometheus.kill();
    await prometheus.exited;
    const delays: number[] = [];
    const impatient = new PrometheusClient({ url: prometheus.url, timeoutMs: 500, retries: 2 }, { sleep: async (ms) => void delays.push(ms) });
    const down = await impatient.query(V1_INCREASE, END_S * 1000);
    expect(down.kind).toBe('unreachable');
    expect(down.kind === 'unreachable' && down.message).toMatch(/after 3 attempts: .*ECONNREFUSED/);
    expect(delays).toHaveLength(2);

    prometheus = await startPrometheus({ dataDir, port });
    expect(await impatient.query(V1_INCREASE, END_S * 1000)).toEqual({ kind: 'data', samples: [{ labels: {}, value: 160 }] });
  });
});

describe('a P99 from a real Prometheus histogram', () => {
  const gate = (max: number): LatencyGate => ({ name: 'p99', type: 'latencyP99', max });
  const scope = (version: string) => ({ service: 'patient-api', version, stable: 'v1', windowSeconds: 600, atMs: END_S * 1000 });
  const window = { service: 'patient-api', stable: 'v1', startMs: (END_S - 600) * 1000, atMs: END_S * 1000 };
  let metrics: PrometheusMetrics;
  beforeAll(() => {
    metrics = new PrometheusMetrics(new PrometheusClient({ url: prometheus.url, timeoutMs: 2_000, retries: 1 }), undefined);
  });

  it('comes with the bucket histogram_quantile interpolated in, read from the same buckets', async () => {
    const answer = await metrics.latencyP99(gate(10), scope('v3'));
    if (answer.kind !== 'data') throw new Error(`expected data, got ${JSON.stringify(answer)}`);
    // Prometheus' own estimate: 2.5 ms + 2.5 ms × (990 − 900) / (995 − 900).
    expect(answer.value.seconds).toBeCloseTo(0.0025 + 0.0025 * (90 / 95), 9);
    expect(answer.value.bucket).toEqual({ lower: 0.0025, upper: 0.005 });
    expect(answer.sent).toEqual([
      'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{version="v3"}[600s])))',
      'sum by (le) (rate(http_request_duration_seconds_bucket{version="v3"}[600s]))',
    ]);
    // The same buckets through this module's histogram_quantile give Prometheus' answer.
    const buckets = await provider.query(answer.sent[1]!, END_S * 1000);
    if (buckets.kind !== 'data') throw new Error(`expected data, got ${JSON.stringify(buckets)}`);
    expect(histogramQuantile(0.99, buckets.samples.map((b) => [bucketBound(b.labels.le!), b.value]))).toBeCloseTo(answer.value.seconds, 12);
  });

  it('the gate says the bucket bound, "≤ 5ms", and carries the estimate and the bucket', async () => {
    const r = await evaluateGate(gate(10), metrics, { ...window, candidate: 'v3' });
    expect(r).toMatchObject({ verdict: 'passed', threshold: 10, bucket: { lower: 2.5, upper: 5 }, reason: 'v3 P99 ≤ 5ms ≤ 10ms' });
    expect(r.value).toBeCloseTo(4.868, 3);
    expect(r.samples?.canary).toBe(40_000);
    // A limit inside the bucket is judged by the estimate, and the reason says so.
    expect(await evaluateGate(gate(4), metrics, { ...window, candidate: 'v3' })).toMatchObject({ verdict: 'failed', reason: 'v3 P99 ≤ 5ms (estimated 4.868ms) > 4ms' });
  });

  it('beyond the highest bucket: over a limit at its bound, and never a pass above it', async () => {
    const answer = await metrics.latencyP99(gate(10), scope('v4'));
    expect(answer).toMatchObject({ kind: 'data', value: { seconds: 0.01, bucket: { lower: 0.01, upper: Infinity } } });
    expect(await evaluateGate(gate(8), metrics, { ...window, candidate: 'v4' })).toMatchObject({ verdict: 'failed', value: 10, bucket: { lower: 10 }, reason: 'v4 P99 > 10ms > 8ms' });
    expect(await evaluateGate(gate(50), metrics, { ...window, candidate: 'v4' })).toMatchObject({ verdict: 'inconclusive', reason: "v4 P99 > 10ms, beyond the histogram's highest bucket: it cannot tell whether that is within 50ms" });
  });
});
