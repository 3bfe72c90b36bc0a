/**
 * The PromQL each gate sends. Built-in templates use the common names (`http_requests_total`
 * with a `code` label, `http_request_duration_seconds_bucket`) and a version label; users may
 * override them with templates. Every label value is escaped before it enters a query, and the
 * window is a plain number of seconds, so no config value can change a query's shape.
 */
import type { GateConfig, PrometheusConfig } from '../../config/schema.js';
import { escapeLabelValue, renderTemplate, selector, windowText } from './promql.js';

/** What a query is about: whose traffic, over which window. */
export interface QueryScope {
  service: string;
  /** The version whose traffic is counted. */
  version: string;
  /** The stable version (for templates that compare). */
  stable: string;
  /** Window length in whole seconds (at least 1). */
  windowSeconds: number;
  /** Shift the window into the past (for a baseline taken before the step), whole seconds. */
  offsetSeconds?: number;
}

function range(scope: QueryScope): string {
  const w = `[${windowText(scope.windowSeconds)}]`;
  return scope.offsetSeconds ? `${w} offset ${Math.round(scope.offsetSeconds)}s` : w;
}

/** Render a user template for this scope. */
function fromTemplate(template: string, scope: QueryScope): string {
  return renderTemplate(template, {
    labels: { version: scope.version, service: scope.service, stable: scope.stable },
    raw: { window: windowText(scope.windowSeconds) },
  });
}

/** Requests and failed requests of one version over the window (errorRate gate). */
export function errorRateQueries(gate: Extract<GateConfig, { type: 'errorRate' }>, prom: PrometheusConfig | undefined, scope: QueryScope): { requests: string; errors: string } {
  return {
    requests: gate.requests ? fromTemplate(gate.requests, scope) : `sum(increase(http_requests_total${selector(prom, scope.version)}${range(scope)}))`,
    // No 5xx series at all means no errors, not no data: `or vector(0)` keeps the two apart.
    errors: gate.errors
      ? fromTemplate(gate.errors, scope)
      : `sum(increase(http_requests_total${selector(prom, scope.version, 'code=~"5.."')}${range(scope)})) or vector(0)`,
  };
}

/** P99 latency (seconds) and request count of one version over the window (latencyP99 gate). */
export function latencyQueries(gate: Extract<GateConfig, { type: 'latencyP99' }>, prom: PrometheusConfig | undefined, scope: QueryScope): { p99: string; count: string } {
  const h = gate.histogram ?? 'http_request_duration_seconds';
  const sel = selector(prom, scope.version);
  return {
    p99: `histogram_quantile(0.99, sum by (le) (rate(${h}_bucket${sel}${range(scope)})))`,
    count: `sum(increase(${h}_count${sel}${range(scope)}))`,
  };
}

/**
 * Requests, and requests no slower than `max`, of one version over the window (the latency gate's
 * ladder form): the histogram's count and its `le` bucket at `max`, which must be one of its
 * bounds (written as client libraries write them: 0.5, not 0.50).
 */
export function slowQueries(gate: Extract<GateConfig, { type: 'latencyP99' }>, prom: PrometheusConfig | undefined, scope: QueryScope): { requests: string; fast: string } {
  const h = gate.histogram ?? 'http_request_duration_seconds';
  const le = String(gate.max! / 1000);
  return {
    requests: `sum(increase(${h}_count${selector(prom, scope.version)}${range(scope)}))`,
    fast: `sum(increase(${h}_bucket${selector(prom, scope.version, `le="${escapeLabelValue(le)}"`)}${range(scope)}))`,
  };
}

/** The custom query of a query gate. */
export function customQuery(gate: Extract<GateConfig, { type: 'query' }>, scope: QueryScope): string {
  return fromTemplate(gate.query, scope);
}
