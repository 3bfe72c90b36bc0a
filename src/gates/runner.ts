/**
 * Builds the gate runner a rollout uses from its config, and the preflight that sends every
 * configured query once, so a PromQL typo fails before any traffic moves. The Prometheus
 * provider is imported only here, by commands that evaluate gates.
 */
import type { Config } from '../config/schema.js';
import type { GateRunner } from '../engine/machine.js';
import type { Plan, Traffic } from '../engine/plan.js';
import type { RolloutState } from '../engine/state.js';
import { OperationError, UsageError } from '../errors.js';
import { customQuery, errorRateQueries, latencyQueries, slowQueries, type QueryScope } from '../metrics/prometheus/queries.js';
import { evaluateGates } from './evaluate.js';
import { planMargins, requestsForMargin } from './ladder.js';
import type { MetricsProvider } from './types.js';
import { DEFAULT_CONFIDENCE, DEFAULT_MAX_INCREASE, DEFAULT_MAX_SLOW_INCREASE } from './evaluate.js';

/** The provider a config names, or undefined when it names none. */
export async function createProvider(config: Config): Promise<MetricsProvider> {
  // Journeys need no metrics: a config with only them has no Prometheus, and nothing asks it.
  if (!config.prometheus) return NO_METRICS;
  const { PrometheusClient } = await import('../metrics/prometheus/client.js');
  return new PrometheusClient({ url: config.prometheus.url, timeoutMs: config.prometheus.timeout ?? 5_000, retries: 2 });
}

const NO_METRICS: MetricsProvider = {
  query: async () => ({ kind: 'unreachable', message: 'no prometheus: section in deploy.yaml' }),
  queryRange: async () => ({ kind: 'unreachable', message: 'no prometheus: section in deploy.yaml' }),
};

/** Each version's endpoints from deploy.yaml, where journeys reach it. */
export function versionEndpoints(config: Config): Record<string, string[] | undefined> {
  return Object.fromEntries(Object.entries(config.versions).map(([v, spec]) => [v, spec.endpoints]));
}

/** A runner over the config's gates, or undefined when there are none. */
export async function createGateRunner(config: Config, provider?: MetricsProvider): Promise<GateRunner | undefined> {
  const gates = config.gates ?? [];
  if (gates.length === 0) return undefined;
  const metrics = provider ?? (await createProvider(config));
  const endpoints = versionEndpoints(config);
  return {
    evaluate: (state: RolloutState, names: string[], atMs: number) =>
      evaluateGates(
        gates.filter((g) => names.includes(g.name)),
        config.prometheus,
        metrics,
        {
          service: state.service,
          stable: state.stable,
          candidate: state.candidate,
          startMs: Date.parse(state.holdStartedAt ?? state.updatedAt),
          atMs,
          plan: state.plan,
          step: state.step,
          ...(state.holdUntil ? { holdUntilMs: Date.parse(state.holdUntil) } : {}),
          ...(state.gateMemory ? { memory: state.gateMemory } : {}),
          rolloutStartMs: Date.parse(state.startedAt),
          endpoints,
        },
      ),
  };
}

/** Prometheus did not answer the gate queries' check (its message says where and why, once). */
export class PrometheusUnreachable extends OperationError {
  constructor(message: string) {
    super(message, 'check prometheus.url in deploy.yaml, or that Prometheus is running');
  }
}

/** Every query of every gate, for `candidate` against `stable` over a short window. */
function allQueries(config: Config, stable: string, candidate: string): { gate: string; query: string }[] {
  const scope = (version: string): QueryScope => ({ service: config.service, version, stable, windowSeconds: 60 });
  return (config.gates ?? []).flatMap((g) => {
    const qs =
      g.type === 'errorRate'
        ? [errorRateQueries(g, config.prometheus, scope(candidate)), errorRateQueries(g, config.prometheus, scope(stable))].flatMap((q) => [q.requests, q.errors])
        : g.type === 'journey'
          ? []
          : g.type === 'latencyP99' && g.method === 'ladder'
            ? [slowQueries(g, config.prometheus, scope(candidate)), slowQueries(g, config.prometheus, scope(stable))].flatMap((q) => [q.requests, q.fast])
            : g.type === 'latencyP99'
              ? Object.values(latencyQueries(g, config.prometheus, scope(candidate)))
          : [customQuery(g, scope(candidate))];
    return qs.map((query) => ({ gate: g.name, query }));
  });
}

/**
 * Send every gate query once. A query Prometheus rejects is a config error (exit 2) naming the
 * gate and the server's message; an unreachable Prometheus is an operation error (exit 1).
 * Returns the gates whose queries found no data (not an error: there may be no traffic yet).
 */
export async function checkGateQueries(config: Config, provider: MetricsProvider, stable: string, candidate: string): Promise<string[]> {
  const noData = new Set<string>();
  for (const { gate, query } of allQueries(config, stable, candidate)) {
    const answer = await provider.query(query);
    if (answer.kind === 'query-error') {
      throw new UsageError(`gate ${gate}: Prometheus rejected its query: ${answer.message}\n  query: ${query}`, 'fix the query (or its template) under gates: in deploy.yaml');
    }
    if (answer.kind === 'unreachable') throw new PrometheusUnreachable(answer.message);
    if (answer.kind === 'no-data') noData.add(gate);
  }
  return [...noData];
}

/** The window before a rollout whose traffic sets the steps' margins. */
export const TRAFFIC_WINDOW_SECONDS = 600;

/**
 * Stable's traffic over the last ten minutes, through the first error-rate gate's own queries (so
 * templates and labels apply): requests a second and error rate. Undefined when there is no
 * error-rate gate, no traffic, or Prometheus does not answer — the margins then take their
 * defaults, and the last step's is `maxIncrease` either way.
 */
export async function measureTraffic(config: Config, provider: MetricsProvider, stable: string, atMs = Date.now()): Promise<Traffic | undefined> {
  const gate = config.gates?.find((g) => g.type === 'errorRate');
  if (!gate || gate.type !== 'errorRate') return undefined;
  const q = errorRateQueries(gate, config.prometheus, { service: config.service, version: stable, stable, windowSeconds: TRAFFIC_WINDOW_SECONDS });
  const [requests, errors] = await Promise.all([provider.query(q.requests, atMs), provider.query(q.errors, atMs)]);
  const value = (a: typeof requests) => (a.kind === 'data' ? a.samples.reduce((t, x) => t + x.value, 0) : undefined);
  const n = value(requests);
  if (!n || !(n > 0)) return undefined;
  return { requestsPerSecond: +(n / TRAFFIC_WINDOW_SECONDS).toFixed(3), errorRate: +Math.min(1, Math.max(0, (value(errors) ?? 0) / n)).toFixed(6), windowSeconds: TRAFFIC_WINDOW_SECONDS };
}

/** One step's error-rate margin as `deploy plan` shows it. */
export interface StepMargin {
  gate: string;
  step: number;
  /** Fraction: 0.001 = 0.1 points. */
  margin: number;
  /** Candidate requests the margin needs (95% of healthy candidates pass), over every step so far. */
  requestsNeeded: number;
  /** Candidate requests expected by the end of this step's hold at the measured traffic. */
  requestsExpected?: number;
  written: boolean;
}

/** Every gated step's margin for every ladder error-rate gate of the config. */
export function stepMargins(config: Config, plan: Plan): StepMargin[] {
  const out: StepMargin[] = [];
  for (const g of config.gates ?? []) {
    if (g.type === 'query' || (g.type === 'errorRate' && g.method === 'confidence-sequence') || (g.type === 'latencyP99' && g.method !== 'ladder')) continue;
    const maxIncrease = g.maxIncrease ?? (g.type === 'errorRate' ? DEFAULT_MAX_INCREASE : DEFAULT_MAX_SLOW_INCREASE);
    const alpha = 1 - ((g.type === 'errorRate' ? g.confidence : undefined) ?? DEFAULT_CONFIDENCE);
    const margins = planMargins(plan, g.name, maxIncrease, alpha);
    let expected = 0;
    margins.forEach((margin, i) => {
      const s = plan.steps[i]!;
      if (plan.traffic) expected += (plan.traffic.requestsPerSecond * s.weight * s.holdMs) / 100_000;
      if (margin === undefined) return;
      out.push({
        gate: g.name,
        step: i,
        margin,
        // A latency bound at the P99 leaves 1% of requests slower than it.
        requestsNeeded: requestsForMargin(margin, g.type === 'errorRate' ? (plan.traffic?.errorRate ?? 0.005) : 0.01, alpha),
        ...(plan.traffic && s.weight > 0 ? { requestsExpected: Math.round(expected) } : {}),
        written: s.margin !== undefined,
      });
    });
  }
  return out;
}
