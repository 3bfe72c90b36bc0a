/**
 * Builds the gate runner a rollout uses from its config, and the preflight that sends every
 * configured query once, so a PromQL typo fails before any traffic moves. The Prometheus
 * provider is imported only here, by commands that evaluate gates.
 */
import type { Config } from '../config/schema.js';
import type { GateRunner } from '../engine/machine.js';
import type { RolloutState } from '../engine/state.js';
import { OperationError, UsageError } from '../errors.js';
import { customQuery, errorRateQueries, latencyQueries, type QueryScope } from './queries.js';
import { evaluateGates } from './evaluate.js';
import type { MetricsProvider } from './types.js';

/** The provider a config names, or undefined when it names none. */
export async function createProvider(config: Config): Promise<MetricsProvider | undefined> {
  if (!config.prometheus) return undefined;
  const { PrometheusProvider } = await import('./providers/prometheus.js');
  return new PrometheusProvider({ url: config.prometheus.url, timeoutMs: config.prometheus.timeout ?? 5_000, retries: 2 });
}

/** A runner over the config's gates, or undefined when there are none. */
export async function createGateRunner(config: Config, provider?: MetricsProvider): Promise<GateRunner | undefined> {
  const gates = config.gates ?? [];
  if (gates.length === 0) return undefined;
  const metrics = provider ?? (await createProvider(config))!;
  return {
    evaluate: (state: RolloutState, names: string[], atMs: number) =>
      evaluateGates(
        gates.filter((g) => names.includes(g.name)),
        config.prometheus,
        metrics,
        { service: state.service, stable: state.stable, candidate: state.candidate, startMs: Date.parse(state.holdStartedAt ?? state.updatedAt), atMs },
      ),
  };
}

/** Every query of every gate, for `candidate` against `stable` over a short window. */
function allQueries(config: Config, stable: string, candidate: string): { gate: string; query: string }[] {
  const scope = (version: string): QueryScope => ({ service: config.service, version, stable, windowSeconds: 60 });
  return (config.gates ?? []).flatMap((g) => {
    const qs =
      g.type === 'errorRate'
        ? [errorRateQueries(g, config.prometheus, scope(candidate)), errorRateQueries(g, config.prometheus, scope(stable))].flatMap((q) => [q.requests, q.errors])
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
    if (answer.kind === 'unreachable') {
      throw new OperationError(`Prometheus at ${config.prometheus?.url} is unreachable: ${answer.message}`, 'check prometheus.url in deploy.yaml, or that Prometheus is running');
    }
    if (answer.kind === 'no-data') noData.add(gate);
  }
  return [...noData];
}
