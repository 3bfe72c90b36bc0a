/**
 * Per-org error rates: where metrics carry an org label, each org on the candidate is judged
 * against stable on its own, so one organization's bad day is not averaged away by the others.
 * The error budget α is split evenly over the orgs seen (Bonferroni), keeping the chance of any
 * false failure at most α.
 */
import type { GateConfig, PrometheusConfig } from '../config/schema.js';
import { errorRateDecision, type ErrorRateEvidence } from './stats.js';
import { selector, windowText } from '../metrics/prometheus/promql.js';
import type { MetricsProvider, QueryAnswer } from './types.js';

/** The first org whose rate fails, or an error, or nothing. */
export type PerOrgOutcome = { kind: 'ok'; orgs: number } | { kind: 'failed'; org: string; reason: string } | { kind: 'error'; reason: string };

function byOrg(answer: QueryAnswer, label: string): Map<string, number> | string {
  if (answer.kind === 'query-error' || answer.kind === 'unreachable') return answer.message;
  const out = new Map<string, number>();
  if (answer.kind === 'data') for (const s of answer.samples) if (s.labels[label]) out.set(s.labels[label]!, Math.max(0, Math.round(s.value)));
  return out;
}

/** The two queries of a per-org check. */
export function perOrgQueries(prom: PrometheusConfig | undefined, version: string, windowSeconds: number): { requests: string; errors: string } {
  const label = prom?.orgLabel ?? 'org';
  const w = `[${windowText(windowSeconds)}]`;
  return {
    requests: `sum by (${label}) (increase(http_requests_total${selector(prom, version)}${w}))`,
    errors: `sum by (${label}) (increase(http_requests_total${selector(prom, version, 'code=~"5.."')}${w}))`,
  };
}

/** Judge every org of the candidate against stable's evidence. */
export async function checkPerOrg(
  gate: Extract<GateConfig, { type: 'errorRate' }>,
  prom: PrometheusConfig | undefined,
  provider: MetricsProvider,
  q: { requests: string; errors: string },
  atMs: number,
  stable: ErrorRateEvidence['stable'],
  options: { maxIncrease: number; alpha: number },
): Promise<PerOrgOutcome> {
  const label = prom?.orgLabel ?? 'org';
  const [req, err] = await Promise.all([provider.query(q.requests, atMs), provider.query(q.errors, atMs)]);
  const requests = byOrg(req, label);
  const errors = byOrg(err, label);
  if (typeof requests === 'string') return { kind: 'error', reason: `per-org query failed: ${requests}` };
  if (typeof errors === 'string') return { kind: 'error', reason: `per-org query failed: ${errors}` };
  const alpha = options.alpha / Math.max(1, requests.size);
  for (const [org, n] of [...requests].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (n === 0) continue;
    const canary = { requests: n, errors: Math.min(errors.get(org) ?? 0, n) };
    const d = errorRateDecision({ canary, stable }, { maxIncrease: options.maxIncrease, alpha });
    if (d.verdict === 'failed') {
      return { kind: 'failed', org, reason: `org ${org}: errors ${+(d.canaryRate * 100).toFixed(4)}% (${canary.errors}/${n}) vs ${+(d.stableRate * 100).toFixed(4)}% on stable, at least ${+(d.difference.lower * 100).toFixed(4)} points more` };
    }
  }
  return { kind: 'ok', orgs: requests.size };
}
