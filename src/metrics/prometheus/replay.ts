/**
 * Replays over Prometheus: `query_range` over per-interval increases, summed up to each check,
 * so counter resets are handled by Prometheus and each check sees exactly the window a live gate
 * would have seen since the replay's start.
 */
import type { MetricsFailure, ReplayedLatency, ReplayScope } from '../metrics.js';
import type { PromQL } from './client.js';
import { bucketBound, histogramQuantile, quantileBucket } from './histogram.js';

/**
 * Per-series values at each check time (missing points count as 0), keyed by the series' `le`,
 * or its labels as JSON, or '' for a series without labels; or the failure.
 */
export async function increments(client: PromQL, query: string, scope: ReplayScope): Promise<Map<string, number[]> | MetricsFailure> {
  const { times, intervalMs } = scope;
  const answer = await client.queryRange(query, times[0]!, times.at(-1)!, intervalMs);
  if (answer.kind === 'query-error' || answer.kind === 'unreachable') return { kind: answer.kind, message: answer.message, query };
  const out = new Map<string, number[]>();
  if (answer.kind === 'no-data') return out;
  for (const series of answer.series) {
    const values = times.map(() => 0);
    for (const [t, v] of series.points) {
      const i = Math.round((t - times[0]!) / intervalMs);
      if (i >= 0 && i < values.length && Number.isFinite(v)) values[i] = v;
    }
    const key = series.labels.le ?? (Object.keys(series.labels).length ? JSON.stringify(series.labels) : '');
    out.set(key, values);
  }
  return out;
}

/** Running totals: what each check has seen since the replay's start. */
export const cumulative = (xs: number[]) => xs.reduce<number[]>((acc, x) => [...acc, (acc.at(-1) ?? 0) + x], []);

/**
 * P99 (seconds) and requests from the replay's start to each check, from a histogram's buckets
 * over each interval (`le` → increments): the buckets are summed up to the check first, so each
 * P99 is the one of the whole window, not an average of intervals.
 */
export function latencyFromBuckets(buckets: Map<string, number[]>, checks: number): ReplayedLatency {
  const cum = new Map([...buckets].map(([le, xs]) => [bucketBound(le), cumulative(xs)] as const));
  const at = Array.from({ length: checks }, (_, i) => [...cum].map(([le, xs]) => [le, xs[i]!] as [number, number]));
  return {
    p99: at.map((b) => histogramQuantile(0.99, b)),
    requests: at.map((b) => b.find(([le]) => le === Infinity)?.[1] ?? 0),
    buckets: at.map((b) => quantileBucket(0.99, b)),
  };
}
