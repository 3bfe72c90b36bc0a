/**
 * The GetMetricData queries each measurement sends, and how they read in `sent`.
 *
 * The ALB publishes a datapoint a minute (its `period`), so a gate's window — which starts
 * whenever the step's hold did — is widened to the whole periods it touches: the start rounded
 * down, the end rounded up. A window therefore counts up to one period of traffic before it began
 * (for the first minute of a step, some of the step before); both versions are counted over the
 * same periods, so their rates stay comparable. A live measurement asks for one datapoint that
 * spans the whole widened window, so the P99 is the P99 of the window, not an average of minutes.
 */
import type { MetricScope } from '../metrics.js';
import type { AlbDimensions } from './dimensions.js';

/** One metric's statistic over periods of `periodSeconds`. */
export interface MetricStatQuery {
  /** Starts with a lower-case letter (GetMetricData's rule); expressions refer to it by this. */
  id: string;
  namespace: string;
  metric: string;
  /** In the order they are shown. */
  dimensions: { name: string; value: string }[];
  /** `Sum`, `p99`, `PR(:0.5)`. */
  stat: string;
  periodSeconds: number;
  /** False for an expression's inputs, which need not come back. */
  returnData?: boolean;
}

/** A Metric Math expression over other queries of the same request. */
export interface MetricExpressionQuery {
  id: string;
  expression: string;
  periodSeconds: number;
}

export type MetricQuery = MetricStatQuery | MetricExpressionQuery;

/** One GetMetricData call: queries over [startMs, endMs). */
export interface MetricDataRequest {
  queries: MetricQuery[];
  startMs: number;
  endMs: number;
}

/** The ALB's per-target-group metrics the built-in gates read. */
export const ALB_METRICS = {
  requests: 'RequestCount',
  targetErrors: 'HTTPCode_Target_5XX_Count',
  connectionErrors: 'TargetConnectionErrorCount',
  responseTime: 'TargetResponseTime',
} as const;

/** Where the section's series are and how coarse they are. */
export interface Series {
  namespace: string;
  dimensions: AlbDimensions;
  /** Whole minutes, in seconds. */
  periodSeconds: number;
}

/** [start, end) widened to whole periods; never empty. */
export function covering(startMs: number, endMs: number, periodSeconds: number): { startMs: number; endMs: number } {
  const p = periodSeconds * 1000;
  const start = Math.floor(startMs / p) * p;
  const end = Math.max(Math.ceil(endMs / p) * p, start + p);
  return { startMs: start, endMs: end };
}

/** The widened window of a live measurement, ending at `scope.atMs` (else `nowMs`) less its offset. */
export function windowOf(scope: MetricScope, series: Series, nowMs: number): { startMs: number; endMs: number } {
  const end = (scope.atMs ?? nowMs) - (scope.offsetSeconds ?? 0) * 1000;
  return covering(end - scope.windowSeconds * 1000, end, series.periodSeconds);
}

/** A statistic of one ALB metric of `version`'s target group. */
export function stat(series: Series, version: string, id: string, metric: string, statistic: string, periodSeconds: number, returnData = true): MetricStatQuery {
  return {
    id,
    namespace: series.namespace,
    metric,
    dimensions: [
      { name: 'LoadBalancer', value: series.dimensions.loadBalancer },
      { name: 'TargetGroup', value: series.dimensions.targetGroups[version] ?? '' },
    ],
    stat: statistic,
    periodSeconds,
    ...(returnData ? {} : { returnData: false }),
  };
}

/** Requests, target 5XX answers and failed target connections of `version`, each one number per period. */
export function countQueries(series: Series, version: string, periodSeconds: number): MetricStatQuery[] {
  return [
    stat(series, version, 'requests', ALB_METRICS.requests, 'Sum', periodSeconds),
    stat(series, version, 'target_5xx', ALB_METRICS.targetErrors, 'Sum', periodSeconds),
    stat(series, version, 'connection_errors', ALB_METRICS.connectionErrors, 'Sum', periodSeconds),
  ];
}

/** The percentile-rank statistic: the percentage of responses no slower than `seconds`. */
export const percentRank = (seconds: number) => `PR(:${seconds})`;

/** Whether a statistic is an extended one (percentile, percentile rank, trimmed…), which some endpoints cannot compute. */
export const isExtended = (statistic: string) => !/^(Sum|Average|Minimum|Maximum|SampleCount)$/.test(statistic);

const time = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

/** How a request's range reads: `2026-11-29T21:57:00Z..2026-11-29T21:59:00Z`. */
export const rangeText = (r: { startMs: number; endMs: number }) => `${time(r.startMs)}..${time(r.endMs)}`;

/**
 * Each query of a request as the audit log shows it:
 * `AWS/ApplicationELB RequestCount Sum {LoadBalancer=app/…, TargetGroup=targetgroup/…} period 120s 2026-…Z..2026-…Z`;
 * in a request with an expression, each line starts with its id (`errors = …`).
 */
export function render(request: MetricDataRequest): string[] {
  const named = request.queries.some((q) => 'expression' in q);
  const range = rangeText(request);
  return request.queries.map((q) => {
    const what = 'expression' in q
      ? `${q.expression} period ${q.periodSeconds}s ${range}`
      : `${q.namespace} ${q.metric} ${q.stat} {${q.dimensions.map((d) => `${d.name}=${d.value}`).join(', ')}} period ${q.periodSeconds}s ${range}`;
    return named ? `${q.id} = ${what}` : what;
  });
}
