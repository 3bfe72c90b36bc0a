/**
 * The gates' measurements answered by CloudWatch from the ALB's own per-target-group metrics:
 * each written as GetMetricData queries (`queries.ts`), sent through a reader (`client.ts`), and
 * the datapoints summed into the numbers the gates judge. A version is its target group; a
 * request failed when its target answered 5XX or could not be connected to.
 *
 * The ELB's own 5XX answers (`HTTPCode_ELB_5XX_Count`, and its 502/503/504) are not counted:
 * CloudWatch publishes them per load balancer, never per target group, so they cannot be put on
 * a version. The one way a broken candidate makes the ELB answer 5XX that is published per target
 * group — a connection to its target refused or reset — is `TargetConnectionErrorCount`, and it
 * is counted; a target that accepts and then times out (an ELB 504) is not seen here.
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
import type { MetricDataReader, MetricPoints } from './client.js';
import { expressionInputs, INPUT_IDS } from './expression.js';
import { ALB_METRICS, countQueries, covering, percentRank, render, stat, windowOf, type MetricDataRequest, type MetricStatQuery, type Series } from './queries.js';

type Results = Map<string, MetricPoints[]>;

/** GetMetricData takes at most this many queries a call. */
const MAX_QUERIES = 500;

/** Gate metrics from CloudWatch's ALB metrics, a version's series told apart by its target group. */
export class CloudWatchMetrics implements Metrics {
  readonly name = 'CloudWatch';
  readonly unreachableHint = 'check aws: (region, profile, endpointUrl) in deploy.yaml and the AWS credentials, which need cloudwatch:GetMetricData (`deploy iam-policy`)';

  constructor(
    private readonly reader: MetricDataReader,
    private readonly series: Series,
    private readonly clock: () => number = Date.now,
  ) {}

  async requestCounts(gate: ErrorRateGate, scope: MetricScope): Promise<Measurement<RequestCounts>> {
    const refused = templates(gate) ?? this.unknownVersion(scope.version);
    if (refused) return refused;
    const w = windowOf(scope, this.series, this.clock());
    const request = { queries: countQueries(this.series, scope.version, (w.endMs - w.startMs) / 1000), ...w };
    return this.measure(request, (r) => {
      const requests = total(r, 'requests');
      return requests ? { requests, errors: total(r, 'target_5xx') + total(r, 'connection_errors') } : undefined;
    });
  }

  async requestCountsByOrg(gate: ErrorRateGate): Promise<Measurement<Map<string, RequestCounts>>> {
    return refuse('CloudWatch has no org dimension; per-org gates need Prometheus', `gates ${gate.name}: perOrg`);
  }

  /** CloudWatch's p99 statistic: a measured percentile, so no histogram bucket comes with it. */
  async latencyP99(gate: LatencyGate, scope: MetricScope): Promise<Measurement<LatencyP99>> {
    const refused = histogram(gate) ?? this.unknownVersion(scope.version);
    if (refused) return refused;
    const w = windowOf(scope, this.series, this.clock());
    const request = { queries: [stat(this.series, scope.version, 'p99', ALB_METRICS.responseTime, 'p99', (w.endMs - w.startMs) / 1000)], ...w };
    return this.measure(request, (r) => {
      const seconds = first(r, 'p99');
      return seconds === undefined ? undefined : { seconds };
    }, 'the latency gate needs the p99 statistic of TargetResponseTime');
  }

  async latencyRequests(gate: LatencyGate, scope: MetricScope): Promise<Measurement<number>> {
    const refused = histogram(gate) ?? this.unknownVersion(scope.version);
    if (refused) return refused;
    const w = windowOf(scope, this.series, this.clock());
    const request = { queries: [stat(this.series, scope.version, 'requests', ALB_METRICS.requests, 'Sum', (w.endMs - w.startMs) / 1000)], ...w };
    return this.measure(request, (r) => total(r, 'requests') || undefined);
  }

  /**
   * Requests, and the share of them answered within `gate.max` as CloudWatch's percentile rank
   * `PR(:max)` of TargetResponseTime puts it. A request no target answered counts as slow.
   */
  async fastRequests(gate: LatencyGate, scope: MetricScope): Promise<Measurement<{ requests: number; fast: number }>> {
    const refused = histogram(gate) ?? this.unknownVersion(scope.version);
    if (refused) return refused;
    const w = windowOf(scope, this.series, this.clock());
    const period = (w.endMs - w.startMs) / 1000;
    const rank = percentRank(gate.max! / 1000);
    const request = {
      queries: [stat(this.series, scope.version, 'requests', ALB_METRICS.requests, 'Sum', period), stat(this.series, scope.version, 'fast', ALB_METRICS.responseTime, rank, period)],
      ...w,
    };
    return this.measure(
      request,
      (r) => {
        const requests = total(r, 'requests');
        return requests ? { requests, fast: (requests * (first(r, 'fast') ?? 0)) / 100 } : undefined;
      },
      `the ladder form of the latency gate (method: ladder) needs CloudWatch's percentile-rank statistic ${rank} of TargetResponseTime`,
    );
  }

  /** The query gate's query as a Metric Math expression over the version's (and stable's) ALB metrics. */
  async queryValue(gate: QueryGate, scope: MetricScope): Promise<Measurement<number[]>> {
    const w = windowOf(scope, this.series, this.clock());
    const request = this.expressionRequest(gate, scope, (w.endMs - w.startMs) / 1000, w);
    if (!('queries' in request)) return request;
    return this.measure(request, (r) => {
      const rows = (r.get('value') ?? []).filter((s) => s.values.length).map((s) => s.values.at(-1)!);
      return rows.length ? rows : undefined;
    });
  }

  async replayRequestCounts(gate: ErrorRateGate, scope: ReplayScope): Promise<Measurement<{ requests: number[]; errors: number[] }>> {
    const refused = templates(gate) ?? this.unknownVersion(scope.version);
    if (refused) return refused;
    const period = this.series.periodSeconds;
    const range = covering(scope.times[0]! - scope.intervalMs, scope.times.at(-1)!, period);
    return this.measure({ queries: countQueries(this.series, scope.version, period), ...range }, (r) => {
      const requests = this.runningTotals(r, ['requests'], scope.times);
      if (!requests.at(-1)) return undefined;
      return { requests, errors: this.runningTotals(r, ['target_5xx', 'connection_errors'], scope.times) };
    });
  }

  /**
   * Requests to each check from the per-period sums, and the P99 from the replay's start to each
   * check: one p99 query per check whose single period spans exactly that, since percentiles of
   * minutes do not add up to the percentile of the whole.
   */
  async replayLatency(gate: LatencyGate, scope: ReplayScope): Promise<Measurement<ReplayedLatency>> {
    const refused = histogram(gate) ?? this.unknownVersion(scope.version);
    if (refused) return refused;
    const period = this.series.periodSeconds;
    const range = covering(scope.times[0]! - scope.intervalMs, scope.times.at(-1)!, period);
    const counted = await this.measure({ queries: [stat(this.series, scope.version, 'requests', ALB_METRICS.requests, 'Sum', period)], ...range }, (r) => {
      const requests = this.runningTotals(r, ['requests'], scope.times);
      return requests.at(-1) ? requests : undefined;
    });
    if (counted.kind !== 'data') return counted;
    const sent = [...counted.sent];
    const spans = scope.times.map((t) => covering(range.startMs, t, period).endMs - range.startMs);
    const distinct = [...new Set(spans)];
    const p99BySpan = new Map<number, number>();
    for (let i = 0; i < distinct.length; i += MAX_QUERIES) {
      const chunk = distinct.slice(i, i + MAX_QUERIES);
      const queries = chunk.map((span, j) => stat(this.series, scope.version, `p${i + j}`, ALB_METRICS.responseTime, 'p99', span / 1000));
      const request = { queries, startMs: range.startMs, endMs: range.startMs + Math.max(...chunk) };
      const answer = await this.measure(request, (r) => r, 'the latency gate needs the p99 statistic of TargetResponseTime');
      sent.push(...answer.sent);
      if (answer.kind === 'query-error' || answer.kind === 'unreachable') return { ...answer, sent };
      if (answer.kind !== 'data') continue;
      chunk.forEach((span, j) => {
        const points = answer.value.get(`p${i + j}`)?.[0];
        const at = points?.timestamps.indexOf(range.startMs) ?? -1;
        if (at >= 0) p99BySpan.set(span, points!.values[at]!);
      });
    }
    return { kind: 'data', value: { p99: spans.map((s) => p99BySpan.get(s) ?? NaN), requests: counted.value }, sent };
  }

  /** The query gate's expression over each interval before a check, in periods of at least the section's. */
  async replayQueryValues(gate: QueryGate, scope: ReplayScope): Promise<Measurement<number[][]>> {
    const p = this.series.periodSeconds;
    const period = Math.max(1, Math.ceil(scope.intervalMs / 1000 / p)) * p;
    const range = covering(scope.times[0]! - scope.intervalMs, scope.times.at(-1)!, period);
    const request = this.expressionRequest(gate, { service: scope.service, version: scope.version, stable: scope.stable }, period, range);
    if (!('queries' in request)) return request;
    return this.measure(request, (r) => {
      const rows = (r.get('value') ?? []).filter((s) => s.values.length).map((s) =>
        scope.times.map((t) => {
          const at = s.timestamps.indexOf(range.startMs + Math.floor((t - 1 - range.startMs) / (period * 1000)) * period * 1000);
          return at >= 0 ? s.values[at]! : 0;
        }),
      );
      return rows.length ? rows : undefined;
    });
  }

  /** Every query of `gate`, candidate then stable, over the last minute; the first failure stops it. */
  async check(gate: MetricGate, versions: { service: string; stable: string; candidate: string }): Promise<GateCheck> {
    const scope = (version: string): MetricScope => ({ service: versions.service, version, stable: versions.stable, windowSeconds: 60 });
    const [candidate, stable] = [scope(versions.candidate), scope(versions.stable)];
    const asks: (() => Promise<Measurement<unknown>>)[] =
      gate.type === 'errorRate'
        ? [...(gate.perOrg ? [() => this.requestCountsByOrg(gate)] : []), () => this.requestCounts(gate, candidate), () => this.requestCounts(gate, stable)]
        : gate.type === 'latencyP99' && gate.method === 'ladder'
          ? [() => this.fastRequests(gate, candidate), () => this.fastRequests(gate, stable)]
          : gate.type === 'latencyP99'
            ? [() => this.latencyP99(gate, candidate), () => this.latencyRequests(gate, candidate), ...(gate.maxFactor !== undefined ? [() => this.latencyP99(gate, stable)] : [])]
            : [() => this.queryValue(gate, candidate)];
    const sent: string[] = [];
    let found = true;
    for (const ask of asks) {
      const answer = await ask();
      sent.push(...answer.sent);
      if (answer.kind === 'query-error' || answer.kind === 'unreachable') return { ...answer, sent };
      found &&= answer.kind === 'data';
    }
    return { kind: found ? 'data' : 'no-data', sent };
  }

  /**
   * Send `request` and read its datapoints into a value; `read` answering undefined is no-data.
   * A rejected request's message is prefixed with `needs`, what the measurement cannot do without.
   */
  private async measure<T>(request: MetricDataRequest, read: (results: Results) => T | undefined, needs?: string): Promise<Measurement<T>> {
    const sent = render(request);
    const answer = await this.reader.getMetricData(request);
    if (answer.kind === 'query-error' || answer.kind === 'unreachable') {
      const message = needs && answer.kind === 'query-error' ? `${needs}: ${answer.message}` : answer.message;
      return { kind: answer.kind, message, query: sent.join('; '), sent };
    }
    const value = read(answer.results);
    return value === undefined ? { kind: 'no-data', sent } : { kind: 'data', value, sent };
  }

  /** The queries of an expression: its inputs (only those it names) and the expression as `value`. */
  private expressionRequest(gate: QueryGate, scope: Pick<MetricScope, 'service' | 'version' | 'stable'>, period: number, range: { startMs: number; endMs: number }): MetricDataRequest | Measurement<never> {
    const inputs = expressionInputs(gate.query);
    if (typeof inputs === 'string') return refuse(inputs, gate.query);
    const refused = this.unknownVersion(scope.version) ?? this.unknownVersion(scope.stable);
    if (refused) return refused;
    const queries: MetricStatQuery[] = inputs.map((id) => {
      const { metric, statistic, ofStable } = INPUT_IDS[id]!;
      return stat(this.series, ofStable ? scope.stable : scope.version, id, metric, statistic, period, false);
    });
    return { queries: [...queries, { id: 'value', expression: gate.query, periodSeconds: period }], ...range };
  }

  /** The running totals of the per-period sums of `ids`, up to the period each check falls in. */
  private runningTotals(results: Results, ids: string[], times: number[]): number[] {
    const p = this.series.periodSeconds * 1000;
    const points = ids.flatMap((id) => (results.get(id) ?? []).flatMap((s) => s.timestamps.map((t, i) => [t, s.values[i]!] as const)));
    return times.map((t) => {
      const bound = Math.ceil(t / p) * p;
      return points.reduce((sum, [at, v]) => (at < bound ? sum + v : sum), 0);
    });
  }

  /** A version this section has no target group for cannot be measured (the config names every one it has). */
  private unknownVersion(version: string): Measurement<never> | undefined {
    if (this.series.dimensions.targetGroups[version]) return undefined;
    return refuse(`no target group for version ${version}: add it to cloudwatch.targetGroups`, `TargetGroup of ${version}`);
  }
}

/** A query-error for something the source will not send; nothing was sent. */
function refuse(message: string, query: string): Measurement<never> {
  return { kind: 'query-error', message, query, sent: [] };
}

/** An errorRate gate's PromQL templates cannot be sent to CloudWatch. */
function templates(gate: ErrorRateGate): Measurement<never> | undefined {
  const template = gate.requests ?? gate.errors;
  if (template === undefined) return undefined;
  return refuse(`gate ${gate.name}'s requests/errors are PromQL templates; the cloudwatch source counts the ALB's RequestCount and target 5XX of each version's target group: remove them`, template);
}

/** A latency gate's histogram names a Prometheus series; CloudWatch has TargetResponseTime. */
function histogram(gate: LatencyGate): Measurement<never> | undefined {
  if (gate.histogram === undefined) return undefined;
  return refuse(`gate ${gate.name}'s histogram names a Prometheus histogram; the cloudwatch source reads the ALB's TargetResponseTime: remove it`, gate.histogram);
}

/** The sum of every datapoint of `id` (0 when there is none). */
function total(results: Results, id: string): number {
  return (results.get(id) ?? []).reduce((t, s) => t + s.values.reduce((a, v) => a + v, 0), 0);
}

/** The first datapoint of `id`, or undefined when there is none. */
function first(results: Results, id: string): number | undefined {
  return results.get(id)?.find((s) => s.values.length)?.values[0];
}
