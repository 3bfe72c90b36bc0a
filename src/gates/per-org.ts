/**
 * Per-org error rates: where metrics tell orgs apart, each org on the candidate is judged against
 * stable on its own, so one organization's bad day is not averaged away by the others. The error
 * budget α is split evenly over the orgs seen (Bonferroni), keeping the chance of any false
 * failure at most α.
 */
import type { Measurement, RequestCounts } from '../metrics/metrics.js';
import { errorRateDecision, type ErrorRateEvidence } from './stats.js';

/** The first org whose rate fails, or an error, or nothing. */
export type PerOrgOutcome = { kind: 'ok'; orgs: number } | { kind: 'failed'; org: string; reason: string } | { kind: 'error'; reason: string };

/** Judge every org of the candidate (`orgs`, as measured) against stable's evidence. */
export function judgePerOrg(
  orgs: Measurement<Map<string, RequestCounts>>,
  stable: ErrorRateEvidence['stable'],
  options: { maxIncrease: number; alpha: number },
): PerOrgOutcome {
  if (orgs.kind === 'query-error' || orgs.kind === 'unreachable') return { kind: 'error', reason: `per-org query failed: ${orgs.message}` };
  const counted = orgs.kind === 'data' ? orgs.value : new Map<string, RequestCounts>();
  const alpha = options.alpha / Math.max(1, counted.size);
  const whole = (x: number) => Math.max(0, Math.round(x));
  for (const [org, c] of [...counted].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const n = whole(c.requests);
    if (n === 0) continue;
    const canary = { requests: n, errors: Math.min(whole(c.errors), n) };
    const d = errorRateDecision({ canary, stable }, { maxIncrease: options.maxIncrease, alpha });
    if (d.verdict === 'failed') {
      return { kind: 'failed', org, reason: `org ${org}: errors ${+(d.canaryRate * 100).toPrecision(3)}% (${canary.errors}/${n}) vs ${+(d.stableRate * 100).toPrecision(3)}% on stable, at least ${+(d.difference.lower * 100).toPrecision(3)} points more` };
    }
  }
  return { kind: 'ok', orgs: counted.size };
}
