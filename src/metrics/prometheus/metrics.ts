/**
 * The gates' measurements answered by Prometheus: each one written as PromQL (`queries.ts`), sent
 * through a client (`client.ts`), and the answers summed into the numbers gates judge. A failure
 * names the query that failed; every answer lists all the queries it sent.
 */
import type {
  ErrorRateGate,
  GateCheck,
  LatencyGate,
  LatencyP99,
  Measurement,
  MetricGate,
  Metrics,
  MetricScope,
  QueryGate,
  ReplayedLatency,
  ReplayScope,
  RequestCounts,
} from '../metrics.js';
import type { PromQL, QueryAnswer, Sample } from './client.js';
import type { PrometheusLabels } from './promql.js';
import {
  checkQueries,
  customQuery,
  errorRateQueries,
  latencyQueries,
  perOrgQueries,
  replayBucketsQuery,
  replayCustomQuery,
  replayErrorRateQueries,
  slowQueries,
} from './queries.js';
import { bucketBound, quantileBucket } from './histogram.js';
import { cumulative, increments, latencyFromBuckets } from './replay.js';

/** Gate metrics from one Prometheus server, its series told apart by the prometheus section's labels. */
export class PrometheusMetrics implements Metrics {
  readonly name = 'Prometheus';
  readonly unreachableHint = 'check prometheus.url in deploy.yaml, or that Prometheus is running';

  constructor(
    private readonly client: PromQL,
    private readonly labels: PrometheusLabels | undefined,
  ) {}

  async requestCounts(gate: ErrorRateGate, scope: MetricScope): Promise<Measurement<RequestCounts>> {
    const q = errorRateQueries(gate, this.labels, scope);
    return this.sums([q.requests, q.errors], scope.atMs, ([requests, errors]) => requests && { requests: sum(requests), errors: sum(errors) });
  }

  async requestCountsByOrg(gate: ErrorRateGate, scope: MetricScope): Promise<Measurement<Map<string, RequestCounts>>> {
    const q = perOrgQueries(this.labels, scope);
    const label = this.labels?.orgLabel ?? 'org';
    const byOrg = (samples: { labels: Record<string, string>; value: number }[] = []) =>
      new Map(samples.filter((s) => s.labels[label]).map((s) => [s.labels[label]!, s.value]));
    return this.sums([q.requests, q.errors], scope.atMs, ([requests, errors]) => {
      const errorsOf = byOrg(errors);
      const orgs = new Map([...byOrg(requests)].map(([org, n]) => [org, { requests: n, errors: errorsOf.get(org) ?? 0 }]));
      return orgs.size ? orgs : undefined;
    });
  }

  /**
   * Prometheus' histogram_quantile, and the bucket it interpolated in, read from the same buckets
   * at the same time: the estimate is Prometheus' own, the bucket is what the histogram knows.
   */
  async latencyP99(gate: LatencyGate, scope: MetricScope): Promise<Measurement<LatencyP99>> {
    const q = latencyQueries(gate, this.labels, scope);
    return this.sums([q.p99, q.buckets], scope.atMs, ([p99, buckets]) => {
      if (!p99) return undefined;
      const bucket = quantileBucket(0.99, (buckets ?? []).filter((b) => b.labels.le !== undefined).map((b) => [bucketBound(b.labels.le!), b.value]));
      return { seconds: sum(p99), ...(bucket ? { bucket } : {}) };
    });
  }

  async latencyRequests(gate: LatencyGate, scope: MetricScope): Promise<Measurement<number>> {
    return this.sums([latencyQueries(gate, this.labels, scope).count], scope.atMs, ([count]) => count && sum(count));
  }

  async fastRequests(gate: LatencyGate, scope: MetricScope): Promise<Measurement<{ requests: number; fast: number }>> {
    const q = slowQueries(gate, this.labels, scope);
    return this.sums([q.requests, q.fast], scope.atMs, ([requests, fast]) => requests && { requests: sum(requests), fast: sum(fast) });
  }

  async queryValue(gate: QueryGate, scope: MetricScope): Promise<Measurement<number[]>> {
    return this.sums([customQuery(gate, scope)], scope.atMs, ([samples]) => samples?.map((s) => s.value));
  }

  async replayRequestCounts(gate: ErrorRateGate, scope: ReplayScope): Promise<Measurement<{ requests: number[]; errors: number[] }>> {
    const q = replayErrorRateQueries(gate, this.labels, scope);
    const sent = [q.requests, q.errors];
    const [requests, errors] = await Promise.all(sent.map((query) => increments(this.client, query, scope)));
    for (const m of [requests!, errors!]) if (!(m instanceof Map)) return { ...m, sent };
    // Only a series without labels is the total; a template that splits by label counts nothing.
    const total = (m: Map<string, number[]>) => m.get('') && cumulative(m.get('')!);
    const counted = total(requests as Map<string, number[]>);
    if (!counted) return { kind: 'no-data', sent };
    return { kind: 'data', value: { requests: counted, errors: total(errors as Map<string, number[]>) ?? scope.times.map(() => 0) }, sent };
  }

  async replayLatency(gate: LatencyGate, scope: ReplayScope): Promise<Measurement<ReplayedLatency>> {
    const query = replayBucketsQuery(gate, this.labels, scope);
    const buckets = await increments(this.client, query, scope);
    if (!(buckets instanceof Map)) return { ...buckets, sent: [query] };
    return buckets.size ? { kind: 'data', value: latencyFromBuckets(buckets, scope.times.length), sent: [query] } : { kind: 'no-data', sent: [query] };
  }

  async replayQueryValues(gate: QueryGate, scope: ReplayScope): Promise<Measurement<number[][]>> {
    const query = replayCustomQuery(gate, scope);
    const series = await increments(this.client, query, scope);
    if (!(series instanceof Map)) return { ...series, sent: [query] };
    return series.size ? { kind: 'data', value: [...series.values()], sent: [query] } : { kind: 'no-data', sent: [query] };
  }

  /** One query after the other, at Prometheus' own clock, so the first failure is the one reported. */
  async check(gate: MetricGate, versions: { service: string; stable: string; candidate: string }): Promise<GateCheck> {
    const sent: string[] = [];
    let found = true;
    for (const query of checkQueries(gate, this.labels, versions)) {
      sent.push(query);
      const answer = await this.client.query(query);
      if (answer.kind === 'query-error' || answer.kind === 'unreachable') return { kind: answer.kind, message: answer.message, query, sent };
      found &&= answer.kind === 'data';
    }
    return { kind: found ? 'data' : 'no-data', sent };
  }

  /**
   * Send `queries` at once and read their samples (undefined where a query found nothing) into a
   * value; the first failure in their order wins, and `read` answering undefined is no-data.
   */
  private async sums<T>(queries: string[], atMs: number | undefined, read: (samples: (Sample[] | undefined)[]) => T | undefined): Promise<Measurement<T>> {
    const answers: QueryAnswer[] = await Promise.all(queries.map((q) => this.client.query(q, atMs)));
    const sent = [...queries];
    for (const [i, a] of answers.entries()) if (a.kind === 'query-error' || a.kind === 'unreachable') return { kind: a.kind, message: a.message, query: queries[i]!, sent };
    const value = read(answers.map((a) => (a.kind === 'data' ? a.samples : undefined)));
    return value === undefined ? { kind: 'no-data', sent } : { kind: 'data', value, sent };
  }
}

/** The samples' total: a query that aggregates gives one, and nothing counts 0. */
const sum = (samples: Sample[] = []) => samples.reduce((t, s) => t + s.value, 0);
