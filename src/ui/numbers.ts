/**
 * Numbers for people, shared by the plain lines, the console and the demo: counts that read at a
 * glance ("1.4M requests", not "1387397 requests"), and latencies said for what they are.
 */
import type { LatencyBucket } from '../gates/types.js';

/** `437`, `5.2k`, `130k`, `1.4M`: a count in a narrow column. */
export function compactCount(n: number): string {
  if (n < 1_000) return String(Math.round(n));
  if (n < 1_000_000) return `${+(n / 1_000).toFixed(n < 10_000 ? 1 : 0)}k`;
  return `${+(n / 1_000_000).toFixed(1)}M`;
}

/** `37`, `1,387`, `52k`, `1.4M`: a count of requests, exact while it is short. */
export function requestCount(n: number): string {
  return n < 10_000 ? Math.round(n).toLocaleString('en-US') : compactCount(n);
}

/**
 * A P99 in ms as gates say it. From a histogram the bucket is what is known — `≤ 5ms`, or
 * `> 10000ms` beyond the highest bound — and the estimate inside it an interpolation, so the
 * bucket is said; a measured P99 (CloudWatch's) is said as it is: `4.95ms`.
 */
export function formatP99(ms: number, bucket?: LatencyBucket): string {
  if (!bucket) return `${ms}ms`;
  return bucket.upper === undefined ? `> ${bucket.lower}ms` : `≤ ${bucket.upper}ms`;
}
