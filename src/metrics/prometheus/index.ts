/**
 * The `prometheus:` metrics source: the built-in gates' queries in PromQL against a Prometheus
 * HTTP API. See metrics.ts (the measurements) and queries.ts (what is sent).
 */
import { z } from 'zod';
import { duration } from '../../config/fields.js';
import type { MetricsSourceProvider } from '../../providers/provider.js';

const labelName = z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/, 'must be a Prometheus label name');

const schema = z.strictObject({
  url: z.string().regex(/^https?:\/\/[^\s]+$/, 'must be an http(s) URL, like http://127.0.0.1:9090'),
  timeout: duration.optional().meta({ description: 'Per request (default 5s); failures are retried with backoff' }),
  versionLabel: labelName.optional().meta({ description: 'Label that carries the version (default version)' }),
  orgLabel: labelName.optional().meta({ description: 'Label that carries the org id, for per-org gates (default org)' }),
  labels: z.record(labelName, z.string()).optional()
    .meta({ description: 'Extra label matchers added to every built-in query, e.g. { job: patient-api }' }),
});

/** The prometheus section. */
export type PrometheusConfig = z.output<typeof schema>;

/** The Prometheus source's descriptor. */
export const prometheusMetrics: MetricsSourceProvider<typeof schema, 'prometheus'> = {
  section: 'prometheus',
  schema,
  describe: (p) => `Prometheus at ${p.url}`,
  async create(p) {
    const [{ PrometheusClient }, { PrometheusMetrics }] = await Promise.all([import('./client.js'), import('./metrics.js')]);
    return new PrometheusMetrics(new PrometheusClient({ url: p.url, timeoutMs: p.timeout ?? 5_000, retries: 2 }), p);
  },
};
