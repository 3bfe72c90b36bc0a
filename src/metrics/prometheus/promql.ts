/**
 * PromQL text: label values escaped into matchers, user templates filled in, windows written as
 * whole seconds. Everything a config supplies goes through here, so no value can change a
 * query's shape.
 */
import type { PrometheusConfig } from '../../config/schema.js';
import { UsageError } from '../../errors.js';

/** The prometheus section's labels: which carries the version, which the org, and which pick the service's series. */
export type PrometheusLabels = Pick<PrometheusConfig, 'versionLabel' | 'orgLabel' | 'labels'>;

/**
 * Escape a value for a double-quoted PromQL label matcher (`{version="…"}`): backslash, double
 * quote and newline, the characters that would end or break the string literal.
 */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Variables of a query template, split by how they may be inserted. */
export interface TemplateVars {
  /** Label values (`version`, `service`, `org`, …): escaped with `escapeLabelValue`; write `"{{version}}"`. */
  labels?: Record<string, string>;
  /** Bare tokens (`window`, `quantile`, …): inserted as is, so only `[0-9a-z_.]` is allowed. */
  raw?: Record<string, string>;
}

const RAW_VALUE = /^[0-9a-z_.]+$/;

/**
 * Replace `{{name}}` placeholders of a PromQL template. Label values are escaped; raw values are
 * restricted to a safe alphabet, because a raw `5m]) or vector(1) #` would rewrite the query.
 * @throws UsageError naming an unknown placeholder or a raw value outside `[0-9a-z_.]`.
 */
export function renderTemplate(template: string, vars: TemplateVars): string {
  const labels = vars.labels ?? {};
  const raw = vars.raw ?? {};
  return template.replace(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g, (_, name: string) => {
    if (Object.hasOwn(labels, name)) return escapeLabelValue(labels[name]!);
    if (Object.hasOwn(raw, name)) {
      const value = raw[name]!;
      if (!RAW_VALUE.test(value)) {
        throw new UsageError(`query variable {{${name}}} has value ${JSON.stringify(value)}, outside [0-9a-z_.]`, 'use a plain duration or number such as 5m');
      }
      return value;
    }
    const known = [...Object.keys(labels), ...Object.keys(raw)].map((n) => `{{${n}}}`).join(', ') || 'none';
    throw new UsageError(`unknown placeholder {{${name}}} in query ${JSON.stringify(template)}`, `known placeholders: ${known}`);
  });
}

/** `{version="v2",job="patient-api"}` with every value escaped. */
export function selector(prom: PrometheusLabels | undefined, version: string, extra = ''): string {
  const label = prom?.versionLabel ?? 'version';
  const matchers = [`${label}="${escapeLabelValue(version)}"`];
  for (const [k, v] of Object.entries(prom?.labels ?? {})) matchers.push(`${k}="${escapeLabelValue(v)}"`);
  if (extra) matchers.push(extra);
  return `{${matchers.join(',')}}`;
}

/** A window as PromQL writes it (`300s`): whole seconds, at least one. */
export function windowText(seconds: number): string {
  return `${Math.max(1, Math.round(seconds))}s`;
}
