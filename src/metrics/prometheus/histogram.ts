/**
 * Quantiles of a Prometheus histogram, as `histogram_quantile` takes them (promql/quantile.go,
 * `bucketQuantile`): the bucket holding the quantile's rank is found, and the quantile is
 * interpolated linearly inside it. The interpolation is an estimate; the bucket's bounds are what
 * the histogram knows, so gates say the bound ("P99 ≤ 5ms") beside the estimate.
 */

/** Cumulative buckets of one histogram: upper bound (`le`, Infinity for `+Inf`) and the count at most that. */
export type Buckets = [le: number, count: number][];

/** A bucket's upper bound as its `le` label writes it (`+Inf` for the last). */
export function bucketBound(le: string): number {
  return le === '+Inf' ? Infinity : Number(le);
}

/**
 * The bucket a quantile lies in: above `lower`, at most `upper` (Infinity when it lies beyond the
 * highest finite bound, where Prometheus answers that bound as the quantile).
 */
export interface QuantileBucket {
  lower: number;
  upper: number;
}

/** Where quantile `q` falls: its bucket, the rank within it and the bucket's own count; undefined when nothing was counted. */
function locate(q: number, buckets: Buckets): (QuantileBucket & { rank: number; count: number }) | undefined {
  // Buckets written with the same bound (`0.5` and `0.50`) are one; counts never fall as bounds grow.
  const merged = new Map<number, number>();
  for (const [le, count] of buckets) merged.set(le, (merged.get(le) ?? 0) + count);
  let most = 0;
  const sorted: Buckets = [...merged].sort((a, b) => a[0] - b[0]).map(([le, count]) => [le, (most = Math.max(most, count))]);
  if (sorted.length < 2 || sorted.at(-1)![0] !== Infinity) return undefined;
  const total = sorted.at(-1)![1];
  if (!(total > 0)) return undefined;
  const rank = q * total;
  // The +Inf bucket is never searched: a rank beyond the finite buckets lies above the highest bound.
  let i = sorted.findIndex(([, count], at) => at < sorted.length - 1 && count >= rank);
  if (i < 0) i = sorted.length - 1;
  const [upper, count] = sorted[i]!;
  const [lower, below] = i === 0 ? [0, 0] : sorted[i - 1]!;
  return { lower, upper, rank: rank - below, count: count - below };
}

/** Prometheus' histogram_quantile over cumulative bucket counts; NaN when the histogram counted nothing. */
export function histogramQuantile(q: number, buckets: Buckets): number {
  const at = locate(q, buckets);
  if (!at) return NaN;
  if (at.upper === Infinity) return at.lower;
  // A first bucket bounded at or below 0 has no lower bound to interpolate from.
  if (at.lower === 0 && at.upper <= 0) return at.upper;
  return at.lower + (at.upper - at.lower) * (at.rank / Math.max(at.count, 1e-12));
}

/** The bucket histogram_quantile interpolates quantile `q` in; undefined when the histogram counted nothing. */
export function quantileBucket(q: number, buckets: Buckets): QuantileBucket | undefined {
  const at = locate(q, buckets);
  return at && { lower: at.lower, upper: at.upper };
}
