/**
 * Builds the gate runner a rollout uses from its config, and the preflight that sends every
 * configured query once, so a typo in a query fails before any traffic moves. The metrics
 * provider is chosen here, and imported only by commands that evaluate gates.
 */
import type { Config } from '../config/schema.js';
import type { GateRunner } from '../engine/machine.js';
import { stepNumberOf, type Plan, type StepNumber, type Traffic } from '../engine/plan.js';
import type { RolloutState } from '../engine/state.js';
import { OperationError, UsageError } from '../errors.js';
import type { Metrics } from '../metrics/metrics.js';
import { NoMetrics } from '../metrics/none.js';
import type { MetricsSourceProvider } from '../providers/provider.js';
import { metricsSources } from '../providers/registry.js';
import { evaluateGates } from './evaluate.js';
import { planMargins, requestsForMargin } from './ladder.js';
import { DEFAULT_CONFIDENCE, DEFAULT_MAX_INCREASE, DEFAULT_MAX_SLOW_INCREASE } from './evaluate.js';

/** The metrics source a config names, from the registry: the one place that picks one. */
export async function createProvider(config: Config): Promise<Metrics> {
  const source = metricsSourceOf(config);
  // Journeys need no metrics: a config with only them has no source, and nothing asks it.
  if (!source) return new NoMetrics('Prometheus', 'no prometheus: section in deploy.yaml', 'add prometheus: { url: http://… } to deploy.yaml');
  return source.provider.create(source.section, { config });
}

/** The metrics source section a config has, with its provider. */
export function metricsSourceOf(config: Config): { provider: MetricsSourceProvider; section: unknown } | undefined {
  const provider = metricsSources.find((m) => (config as Record<string, unknown>)[m.section] !== undefined);
  return provider ? { provider, section: (config as Record<string, unknown>)[provider.section] } : undefined;
}

/** Each version's endpoints from deploy.yaml, where journeys reach it. */
export function versionEndpoints(config: Config): Record<string, string[] | undefined> {
  return Object.fromEntries(Object.entries(config.versions).map(([v, spec]) => [v, spec.endpoints]));
}

/** A runner over the config's gates, or undefined when there are none. */
export async function createGateRunner(config: Config, provider?: Metrics): Promise<GateRunner | undefined> {
  const gates = config.gates ?? [];
  if (gates.length === 0) return undefined;
  const metrics = provider ?? (await createProvider(config));
  const endpoints = versionEndpoints(config);
  return {
    evaluate: (state: RolloutState, names: string[], atMs: number) =>
      evaluateGates(
        gates.filter((g) => names.includes(g.name)),
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

/** The metrics source did not answer the gate queries' check (its message says where and why, once; its hint what to check). */
export class MetricsUnreachable extends OperationError {}

/** The name `deploy plan` catches it by. */
export { MetricsUnreachable as PrometheusUnreachable };

/**
 * Send every gate query once. A query the source rejects is a config error (exit 2) naming the
 * gate and the source's message; an unreachable source is an operation error (exit 1).
 * Returns the gates whose queries found no data (not an error: there may be no traffic yet).
 */
export async function checkGateQueries(config: Config, metrics: Metrics, stable: string, candidate: string): Promise<string[]> {
  const noData: string[] = [];
  for (const gate of config.gates ?? []) {
    if (gate.type === 'journey') continue;
    const answer = await metrics.check(gate, { service: config.service, stable, candidate });
    if (answer.kind === 'query-error') {
      throw new UsageError(`gate ${gate.name}: ${metrics.name} rejected its query: ${answer.message}\n  query: ${answer.query}`, 'fix the query (or its template) under gates: in deploy.yaml');
    }
    if (answer.kind === 'unreachable') throw new MetricsUnreachable(answer.message, metrics.unreachableHint);
    if (answer.kind === 'no-data') noData.push(gate.name);
  }
  return noData;
}

/** The window before a rollout whose traffic sets the steps' margins. */
export const TRAFFIC_WINDOW_SECONDS = 600;

/**
 * Stable's traffic over the last ten minutes, counted as the first error-rate gate counts it (so
 * its queries and labels apply): requests a second and error rate. Undefined when there is no
 * error-rate gate, no traffic, or the source does not answer — the margins then take their
 * defaults, and the last step's is `maxIncrease` either way.
 */
export async function measureTraffic(config: Config, metrics: Metrics, stable: string, atMs = Date.now()): Promise<Traffic | undefined> {
  const gate = config.gates?.find((g) => g.type === 'errorRate');
  if (!gate || gate.type !== 'errorRate') return undefined;
  const answer = await metrics.requestCounts(gate, { service: config.service, version: stable, stable, windowSeconds: TRAFFIC_WINDOW_SECONDS, atMs });
  if (answer.kind !== 'data') return undefined;
  const { requests: n, errors } = answer.value;
  if (!n || !(n > 0)) return undefined;
  return { requestsPerSecond: +(n / TRAFFIC_WINDOW_SECONDS).toFixed(3), errorRate: +Math.min(1, Math.max(0, errors / n)).toFixed(6), windowSeconds: TRAFFIC_WINDOW_SECONDS };
}

/** One step's error-rate margin as `deploy plan` shows it. */
export interface StepMargin {
  gate: string;
  /** The step, from 1. */
  step: StepNumber;
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
        step: stepNumberOf(i),
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
