/**
 * The PromQL each gate sends. Built-in templates use the common names (`http_requests_total`
 * with a `code` label, `http_request_duration_seconds_bucket`) and a version label; users may
 * override them with templates. Every label value is escaped before it enters a query, and the
 * window is a plain number of seconds, so no config value can change a query's shape.
 */
import type { ErrorRateGate, LatencyGate, MetricGate, MetricScope, QueryGate, ReplayScope } from '../metrics.js';
import { escapeLabelValue, renderTemplate, selector, windowText, type PrometheusLabels } from './promql.js';

function range(scope: MetricScope): string {
  const w = `[${windowText(scope.windowSeconds)}]`;
  return scope.offsetSeconds ? `${w} offset ${Math.round(scope.offsetSeconds)}s` : w;
}

/** Render a user template for this scope. */
function fromTemplate(template: string, scope: MetricScope): string {
  return renderTemplate(template, {
    labels: { version: scope.version, service: scope.service, stable: scope.stable },
    raw: { window: windowText(scope.windowSeconds) },
  });
}

/** Requests and failed requests of one version over the window (errorRate gate). */
export function errorRateQueries(gate: ErrorRateGate, prom: PrometheusLabels | undefined, scope: MetricScope): { requests: string; errors: string } {
  return {
    requests: gate.requests ? fromTemplate(gate.requests, scope) : `sum(increase(http_requests_total${selector(prom, scope.version)}${range(scope)}))`,
    // No 5xx series at all means no errors, not no data: `or vector(0)` keeps the two apart.
    errors: gate.errors
      ? fromTemplate(gate.errors, scope)
      : `sum(increase(http_requests_total${selector(prom, scope.version, 'code=~"5.."')}${range(scope)})) or vector(0)`,
  };
}

/** Requests and failed requests of one version by org over the window (errorRate `perOrg`); templates do not apply. */
export function perOrgQueries(prom: PrometheusLabels | undefined, scope: MetricScope): { requests: string; errors: string } {
  const label = prom?.orgLabel ?? 'org';
  const w = `[${windowText(scope.windowSeconds)}]`;
  return {
    requests: `sum by (${label}) (increase(http_requests_total${selector(prom, scope.version)}${w}))`,
    errors: `sum by (${label}) (increase(http_requests_total${selector(prom, scope.version, 'code=~"5.."')}${w}))`,
  };
}

/**
 * P99 latency (seconds), the histogram's buckets it was taken from (by `le`, to tell which bucket
 * holds it) and the request count of one version over the window (latencyP99 gate).
 */
export function latencyQueries(gate: LatencyGate, prom: PrometheusLabels | undefined, scope: MetricScope): { p99: string; buckets: string; count: string } {
  const h = gate.histogram ?? 'http_request_duration_seconds';
  const sel = selector(prom, scope.version);
  const buckets = `sum by (le) (rate(${h}_bucket${sel}${range(scope)}))`;
  return {
    p99: `histogram_quantile(0.99, ${buckets})`,
    buckets,
    count: `sum(increase(${h}_count${sel}${range(scope)}))`,
  };
}

/**
 * Requests, and requests no slower than `max`, of one version over the window (the latency gate's
 * ladder form): the histogram's count and its `le` bucket at `max`, which must be one of its
 * bounds (written as client libraries write them: 0.5, not 0.50).
 */
export function slowQueries(gate: LatencyGate, prom: PrometheusLabels | undefined, scope: MetricScope): { requests: string; fast: string } {
  const h = gate.histogram ?? 'http_request_duration_seconds';
  const le = String(gate.max! / 1000);
  return {
    requests: `sum(increase(${h}_count${selector(prom, scope.version)}${range(scope)}))`,
    fast: `sum(increase(${h}_bucket${selector(prom, scope.version, `le="${escapeLabelValue(le)}"`)}${range(scope)}))`,
  };
}

/** The custom query of a query gate. */
export function customQuery(gate: QueryGate, scope: MetricScope): string {
  return fromTemplate(gate.query, scope);
}

/** Requests and failed requests of one version over each interval of a replay (no `or vector(0)`: missing points count 0 there). */
export function replayErrorRateQueries(gate: ErrorRateGate, prom: PrometheusLabels | undefined, scope: ReplayScope): { requests: string; errors: string } {
  const win = `${Math.round(scope.intervalMs / 1000)}s`;
  const q = (template: string | undefined, extra: string) =>
    template
      ? renderTemplate(template, { labels: { version: scope.version, service: scope.service, stable: scope.stable }, raw: { window: win } })
      : `sum(increase(http_requests_total${selector(prom, scope.version, extra)}[${win}]))`;
  return { requests: q(gate.requests, ''), errors: q(gate.errors, 'code=~"5.."') };
}

/** A version's histogram buckets over each interval of a replay, by `le`. */
export function replayBucketsQuery(gate: LatencyGate, prom: PrometheusLabels | undefined, scope: ReplayScope): string {
  const h = gate.histogram ?? 'http_request_duration_seconds';
  return `sum by (le) (increase(${h}_bucket${selector(prom, scope.version)}[${Math.round(scope.intervalMs / 1000)}s]))`;
}

/** A query gate's query over each interval of a replay. */
export function replayCustomQuery(gate: QueryGate, scope: ReplayScope): string {
  return customQuery(gate, { service: scope.service, version: scope.version, stable: scope.stable, windowSeconds: scope.intervalMs / 1000 });
}

/** Every query of a gate, for `candidate` against `stable` over a minute, in the order a preflight sends them. */
export function checkQueries(gate: MetricGate, prom: PrometheusLabels | undefined, versions: { service: string; stable: string; candidate: string }): string[] {
  const scope = (version: string): MetricScope => ({ service: versions.service, version, stable: versions.stable, windowSeconds: 60 });
  const both = [scope(versions.candidate), scope(versions.stable)];
  if (gate.type === 'errorRate') return both.flatMap((s) => Object.values(errorRateQueries(gate, prom, s)));
  if (gate.type === 'latencyP99' && gate.method === 'ladder') return both.flatMap((s) => Object.values(slowQueries(gate, prom, s)));
  if (gate.type === 'latencyP99') return Object.values(latencyQueries(gate, prom, both[0]!));
  return [customQuery(gate, both[0]!)];
}
