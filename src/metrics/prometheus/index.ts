/**
 * The `prometheus:` metrics source: the built-in gates' queries in PromQL against a Prometheus
 * HTTP API. See metrics.ts (the measurements) and queries.ts (what is sent).
 */
import type { MetricsSourceProvider } from '../../providers/provider.js';
import type { schema } from './section.js';

export type { PrometheusConfig } from './section.js';

/** The Prometheus source's descriptor. */
export const prometheusMetrics: MetricsSourceProvider<typeof schema, 'prometheus'> = {
  section: 'prometheus',
  schema: () => import('./section.js').then((m) => m.schema),
  describe: (p) => `Prometheus at ${p.url}`,
  async create(p) {
    const [{ PrometheusClient }, { PrometheusMetrics }] = await Promise.all([import('./client.js'), import('./metrics.js')]);
    return new PrometheusMetrics(new PrometheusClient({ url: p.url, timeoutMs: p.timeout ?? 5_000, retries: 2 }), p);
  },
};
