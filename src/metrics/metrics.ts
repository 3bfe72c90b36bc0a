/**
 * What gates ask of a metrics source, in the gates' own terms: requests and failed requests of a
 * version, its P99, a custom query's value. No query language crosses this interface; each
 * provider (`prometheus/`) writes its own queries and answers with the text it sent, so a gate's
 * result and the audit log still show exactly what was asked.
 *
 * Every answer is data, no-data, query-error or unreachable (after Flagger's `ErrNoValuesFound`
 * and Argo Rollouts' error measurements): a query the source rejects is a configuration mistake
 * and is never retried, an unreachable source is an outage, and no data usually means no traffic
 * yet. None of them may read as a pass.
 */
import type { GateConfig } from '../config/schema.js';

/** An error-rate gate as validated. */
export type ErrorRateGate = Extract<GateConfig, { type: 'errorRate' }>;
/** A latency gate as validated. */
export type LatencyGate = Extract<GateConfig, { type: 'latencyP99' }>;
/** A custom query gate as validated; its query is in the provider's own language. */
export type QueryGate = Extract<GateConfig, { type: 'query' }>;
/** The gates that read metrics (journeys run probes of their own). */
export type MetricGate = ErrorRateGate | LatencyGate | QueryGate;

/** Whose traffic a measurement counts, over which window. */
export interface MetricScope {
  service: string;
  /** The version whose traffic is counted. */
  version: string;
  /** The stable version (for user queries that compare). */
  stable: string;
  /** Window length in whole seconds (at least 1), ending at `atMs`. */
  windowSeconds: number;
  /** Shift the window into the past (a baseline taken before the step), whole seconds. */
  offsetSeconds?: number;
  /** The window's end, epoch ms; without it the source's own clock, which avoids skew. */
  atMs?: number;
}

/** The checks of a replay (`deploy gates backtest`), each `intervalMs` after the one before. */
export interface ReplayScope {
  service: string;
  /** The version whose traffic is counted. */
  version: string;
  stable: string;
  /** Check times, epoch ms, ascending; the replay starts `intervalMs` before the first. */
  times: number[];
  intervalMs: number;
}

/** Why there is no answer: the source rejected `query`, or could not be reached while sending it. */
export type MetricsFailure = { kind: 'query-error'; message: string; query: string } | { kind: 'unreachable'; message: string; query: string };

/**
 * One measurement: a value, nothing (no traffic yet), or a failure; in every case `sent`, the
 * text of every query sent for it, in order, for `GateResult.queries` and the audit log.
 */
export type Measurement<T> = ({ kind: 'data'; value: T } | { kind: 'no-data' } | MetricsFailure) & { sent: string[] };

/** A preflight of one gate: every query accepted (no-data when one found nothing yet), or the first failure. */
export type GateCheck = ({ kind: 'data' } | { kind: 'no-data' } | MetricsFailure) & { sent: string[] };

/**
 * A P99 latency in seconds, NaN when the source cannot tell. From a histogram it is an estimate,
 * interpolated inside one bucket, and `bucket` says which: the P99 is above `lower` and at most
 * `upper` (Infinity when it lies beyond the histogram's highest bound, where the estimate is that
 * bound). A source that measures percentiles (CloudWatch) gives no bucket.
 */
export interface LatencyP99 {
  seconds: number;
  bucket?: { lower: number; upper: number };
}

/** A replay's P99s (seconds) and requests at each check, with the bucket of each P99 where a histogram gave it. */
export interface ReplayedLatency {
  p99: number[];
  requests: number[];
  buckets?: (LatencyP99['bucket'] | undefined)[];
}

/** Requests and failed requests, as counted (not rounded). */
export interface RequestCounts {
  requests: number;
  errors: number;
}

/** Where gates read metrics. */
export interface Metrics {
  /** How reasons and errors name the source: `Prometheus unreachable: …`. */
  readonly name: string;
  /** The next step when the source cannot be reached, for an error's hint. */
  readonly unreachableHint: string;

  /** Requests and failed requests of `scope.version` (errorRate); no-data when no requests were counted. */
  requestCounts(gate: ErrorRateGate, scope: MetricScope): Promise<Measurement<RequestCounts>>;
  /** The same per org of the version (errorRate `perOrg`), by org id; no-data when no org was counted. */
  requestCountsByOrg(gate: ErrorRateGate, scope: MetricScope): Promise<Measurement<Map<string, RequestCounts>>>;
  /** P99 latency of `scope.version` (latencyP99), with the histogram bucket it lies in where it comes from one. */
  latencyP99(gate: LatencyGate, scope: MetricScope): Promise<Measurement<LatencyP99>>;
  /** Requests the P99 was taken over (latencyP99). */
  latencyRequests(gate: LatencyGate, scope: MetricScope): Promise<Measurement<number>>;
  /**
   * Requests, and requests no slower than `gate.max` (latencyP99, `method: ladder`); no-data when
   * no requests were counted.
   */
  fastRequests(gate: LatencyGate, scope: MetricScope): Promise<Measurement<{ requests: number; fast: number }>>;
  /** The value of a query gate's query, one number per series it gave. */
  queryValue(gate: QueryGate, scope: MetricScope): Promise<Measurement<number[]>>;

  /** Requests and failed requests from the replay's start to each check; no-data when none were counted. */
  replayRequestCounts(gate: ErrorRateGate, scope: ReplayScope): Promise<Measurement<{ requests: number[]; errors: number[] }>>;
  /**
   * P99 (seconds, NaN when it cannot tell) and requests from the replay's start to each check,
   * and from a histogram the bucket each P99 lies in; no-data when none were counted.
   */
  replayLatency(gate: LatencyGate, scope: ReplayScope): Promise<Measurement<ReplayedLatency>>;
  /** A query gate's value at each check over the interval before it: one row per series (missing points 0). */
  replayQueryValues(gate: QueryGate, scope: ReplayScope): Promise<Measurement<number[][]>>;

  /**
   * Send every query `gate` will send, once, for the candidate and for stable over a short
   * window, stopping at the first failure: a typo fails before any traffic moves.
   */
  check(gate: MetricGate, versions: { service: string; stable: string; candidate: string }): Promise<GateCheck>;
}
