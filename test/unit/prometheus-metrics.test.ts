import { describe, expect, it } from 'vitest';
import type { ErrorRateGate, LatencyGate, QueryGate } from '../../src/metrics/metrics.js';
import type { PromQL, QueryAnswer, RangeAnswer } from '../../src/metrics/prometheus/client.js';
import { PrometheusMetrics } from '../../src/metrics/prometheus/metrics.js';

/** A PromQL client that answers each query from a table (no-data when absent) and records what it was sent. */
function fakePromQL(instant: Record<string, QueryAnswer>, range: Record<string, RangeAnswer> = {}) {
  const sent: { query: string; timeMs?: number }[] = [];
  const client: PromQL = {
    query: async (query, timeMs) => {
      sent.push({ query, ...(timeMs !== undefined ? { timeMs } : {}) });
      return instant[query] ?? { kind: 'no-data' };
    },
    queryRange: async (query) => {
      sent.push({ query });
      return range[query] ?? { kind: 'no-data' };
    },
  };
  return { client, sent };
}

const value = (v: number, labels: Record<string, string> = {}) => ({ labels, value: v });
const data = (...samples: { labels: Record<string, string>; value: number }[]): QueryAnswer => ({ kind: 'data', samples });
const errorsGate: ErrorRateGate = { name: 'errors', type: 'errorRate' };
const scope = { service: 'patient-api', version: 'v2', stable: 'v1', windowSeconds: 300, atMs: 1_700_000_000_000 };
const REQUESTS = 'sum(increase(http_requests_total{version="v2",job="api"}[300s]))';
const ERRORS = 'sum(increase(http_requests_total{version="v2",job="api",code=~"5.."}[300s])) or vector(0)';

describe('PrometheusMetrics', () => {
  it('counts requests and errors at the window end, and says what it sent', async () => {
    const { client, sent } = fakePromQL({ [REQUESTS]: data(value(1000)), [ERRORS]: data(value(7)) });
    const answer = await new PrometheusMetrics(client, { labels: { job: 'api' } }).requestCounts(errorsGate, scope);
    expect(answer).toEqual({ kind: 'data', value: { requests: 1000, errors: 7 }, sent: [REQUESTS, ERRORS] });
    expect(sent.map((s) => s.timeMs)).toEqual([scope.atMs, scope.atMs]);
  });

  it('is no-data without requests, however the errors answer', async () => {
    const { client } = fakePromQL({ [ERRORS]: data(value(0)) });
    expect(await new PrometheusMetrics(client, { labels: { job: 'api' } }).requestCounts(errorsGate, scope)).toEqual({ kind: 'no-data', sent: [REQUESTS, ERRORS] });
  });

  it('reports the first failure in the order the queries were sent, naming the query', async () => {
    const { client } = fakePromQL({
      [REQUESTS]: { kind: 'unreachable', message: 'down' },
      [ERRORS]: { kind: 'query-error', message: 'bad_data: nope' },
    });
    const answer = await new PrometheusMetrics(client, { labels: { job: 'api' } }).requestCounts(errorsGate, scope);
    expect(answer).toEqual({ kind: 'unreachable', message: 'down', query: REQUESTS, sent: [REQUESTS, ERRORS] });
  });

  it('counts per org from the org label, errors 0 for an org without any', async () => {
    const byOrg = 'sum by (tenant) (increase(http_requests_total{version="v2"}[300s]))';
    const errorsByOrg = 'sum by (tenant) (increase(http_requests_total{version="v2",code=~"5.."}[300s]))';
    const { client } = fakePromQL({ [byOrg]: data(value(50, { tenant: 'acme' }), value(9, { tenant: 'globex' }), value(3)), [errorsByOrg]: data(value(5, { tenant: 'acme' })) });
    const answer = await new PrometheusMetrics(client, { orgLabel: 'tenant' }).requestCountsByOrg(errorsGate, scope);
    expect(answer.kind === 'data' && Object.fromEntries(answer.value)).toEqual({ acme: { requests: 50, errors: 5 }, globex: { requests: 9, errors: 0 } });
    expect(answer.sent).toEqual([byOrg, errorsByOrg]);
  });

  it('answers a query gate with one number per series', async () => {
    const gate: QueryGate = { name: 'q', type: 'query', query: 'sum(x{version="{{version}}"}[{{window}}])', threshold: 1, direction: 'below' };
    const { client } = fakePromQL({ 'sum(x{version="v2"}[300s])': data(value(0.5), value(2)) });
    expect(await new PrometheusMetrics(client, undefined).queryValue(gate, scope)).toEqual({ kind: 'data', value: [0.5, 2], sent: ['sum(x{version="v2"}[300s])'] });
  });

  it('answers a P99 with Prometheus’ estimate and the bucket it lies in, both read at the window end', async () => {
    const gate: LatencyGate = { name: 'p99', type: 'latencyP99', max: 10 };
    const buckets = 'sum by (le) (rate(http_request_duration_seconds_bucket{version="v2"}[300s]))';
    const p99 = `histogram_quantile(0.99, ${buckets})`;
    const le = (bound: string, rate: number) => value(rate, { le: bound });
    const { client, sent } = fakePromQL({ [p99]: data(value(0.0049)), [buckets]: data(le('0.001', 3), le('0.0025', 3), le('0.005', 3.317), le('0.01', 3.333), le('+Inf', 3.333)) });
    const answer = await new PrometheusMetrics(client, undefined).latencyP99(gate, scope);
    expect(answer).toEqual({ kind: 'data', value: { seconds: 0.0049, bucket: { lower: 0.0025, upper: 0.005 } }, sent: [p99, buckets] });
    expect(sent.map((s) => s.timeMs)).toEqual([scope.atMs, scope.atMs]);
    // No traffic: histogram_quantile finds nothing, and neither does the bucket.
    expect(await new PrometheusMetrics(fakePromQL({}).client, undefined).latencyP99(gate, scope)).toEqual({ kind: 'no-data', sent: [p99, buckets] });
  });

  it('checks a gate query by query at Prometheus’ clock, and stops at the first rejected one', async () => {
    const gate: LatencyGate = { name: 'slow', type: 'latencyP99', method: 'ladder', max: 500 };
    const candidateFast = 'sum(increase(http_request_duration_seconds_bucket{version="v2",le="0.5"}[60s]))';
    const { client, sent } = fakePromQL({ [candidateFast]: { kind: 'query-error', message: 'bad_data: no' } });
    const answer = await new PrometheusMetrics(client, undefined).check(gate, { service: 'patient-api', stable: 'v1', candidate: 'v2' });
    expect(answer).toMatchObject({ kind: 'query-error', query: candidateFast });
    expect(sent).toEqual([{ query: 'sum(increase(http_request_duration_seconds_count{version="v2"}[60s]))' }, { query: candidateFast }]);
  });

  it('replays request counts as running totals from the replay’s start', async () => {
    const times = [60_000, 90_000, 120_000];
    const query = (code: string) => `sum(increase(http_requests_total{version="v2"${code}}[30s]))`;
    const series = (points: [number, number][]): RangeAnswer => ({ kind: 'data', series: [{ labels: {}, points }] });
    const { client } = fakePromQL({}, { [query('')]: series([[60_000, 10], [90_000, 20], [120_000, 30]]), [query(',code=~"5.."')]: series([[90_000, 1]]) });
    const answer = await new PrometheusMetrics(client, undefined).replayRequestCounts(errorsGate, { service: 'patient-api', version: 'v2', stable: 'v1', times, intervalMs: 30_000 });
    expect(answer).toMatchObject({ kind: 'data', value: { requests: [10, 30, 60], errors: [0, 1, 1] } });
  });
});
