/** The `prometheus:` section of deploy.yaml, loaded only when a config is validated. */
import { z } from 'zod';
import { duration } from '../../config/fields.js';

const labelName = z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/, 'must be a Prometheus label name');

export const schema = z.strictObject({
  url: z.string().regex(/^https?:\/\/[^\s]+$/, 'must be an http(s) URL, like http://127.0.0.1:9090'),
  timeout: duration.optional().meta({ description: 'Per request (default 5s); failures are retried with backoff' }),
  versionLabel: labelName.optional().meta({ description: 'Label that carries the version (default version)' }),
  orgLabel: labelName.optional().meta({ description: 'Label that carries the org id, for per-org gates (default org)' }),
  labels: z.record(labelName, z.string()).optional()
    .meta({ description: 'Extra label matchers added to every built-in query, e.g. { job: patient-api }' }),
});

/** The prometheus section. */
export type PrometheusConfig = z.output<typeof schema>;
