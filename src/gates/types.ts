/**
 * Gate results. A measurement is one of passed, failed, inconclusive or error (after Argo
 * Rollouts' evaluate.go); "no data" is its own answer and counts as inconclusive, never as a
 * pass. Where gates read metrics is `src/metrics/metrics.ts`.
 */

/** The four answers a gate can give. */
export type Verdict = 'passed' | 'failed' | 'inconclusive' | 'error';

/** The histogram bucket a P99 lies in, in ms: above `lower`, at most `upper` (none: beyond the histogram's highest bound). */
export interface LatencyBucket {
  lower: number;
  upper?: number;
}

/** One evaluation of one gate. */
export interface GateResult {
  gate: string;
  type: 'errorRate' | 'latencyP99' | 'query' | 'journey';
  verdict: Verdict;
  /** The measured value (canary error rate in %, p99 in ms, the query's value), when there is one. */
  value?: number;
  /** What the value is compared with (stable's rate + allowed increase, the limit, the threshold). */
  threshold?: number;
  /** Baseline value where the gate has one (stable's error rate in %, stable's p99 in ms). */
  baseline?: number;
  /**
   * A latency gate on a histogram: the bucket (ms) its P99 lies in. `value` is Prometheus'
   * estimate, interpolated inside it; what the histogram knows is lower < P99 ≤ upper (no
   * `upper`: beyond its highest bound, and `value` is that bound).
   */
  bucket?: LatencyBucket;
  /** The same for the baseline's P99. */
  baselineBucket?: LatencyBucket;
  /** Sample sizes and statistics, for status, the console and the audit log. */
  samples?: {
    canary: number;
    stable?: number;
    needed?: number;
    detectableIncrease?: number;
    /** Error-rate ladder: the increase (points) this step must rule out. */
    margin?: number;
    /** Error-rate ladder: candidate failures beyond stable's rate over the rollout so far. */
    excessFailures?: number;
    /** Error-rate ladder: the failure test's evidence, against `rollbackAt`. */
    evidence?: number;
    rollbackAt?: number;
  };
  /** The queries sent to the metrics source, in its own language, after templating. */
  queries: string[];
  /** Why, in words. */
  reason: string;
  at: string;
  /** Journey gates: the latest run against each version, step by step with timings. */
  journeys?: { version: string; ok: boolean; ms: number; steps: { name: string; ok: boolean; ms: number; status?: number; error?: string }[] }[];
  /** What the gate carries to its next check (kept in the rollout's state, never shown). */
  memory?: unknown;
}

/**
 * The users a rollout has harmed so far: the largest count of the candidate's failed requests
 * beyond stable's rate among `gates` (undefined when no gate counts them).
 */
export function excessFailuresOf(gates: GateResult[] | undefined): number | undefined {
  const counts = (gates ?? []).map((g) => g.samples?.excessFailures).filter((x): x is number => x !== undefined);
  return counts.length ? Math.max(0, ...counts) : undefined;
}
