/**
 * The Prometheus provider against a real Prometheus, started here on a free loopback port with
 * series backfilled by promtool, so every expected value is known to the sample. Fails, never
 * skips, when Prometheus cannot start.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PrometheusClient } from '../../src/metrics/prometheus/client.js';
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

function openMetrics(): string {
  const lines = ['# TYPE http_requests counter'];
  for (const s of Object.values(series)) {
    for (const [t, v] of s.points) lines.push(`http_requests_total{${s.labels}} ${v} ${t}`);
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
