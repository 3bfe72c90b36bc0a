/**
 * Evaluating gates: each gate's queries for the canary (and stable as baseline) over the window
 * since the step's hold began, turned into a verdict. Prometheus being down or a query failing
 * is an `error` verdict, never a pass; no traffic is `inconclusive`.
 */
import type { GateConfig, PrometheusConfig } from '../config/schema.js';
import { errorRateDecision } from './stats.js';
import { checkPerOrg, perOrgQueries } from './per-org.js';
import { customQuery, errorRateQueries, latencyQueries, type QueryScope } from './queries.js';
import type { GateResult, MetricsProvider, QueryAnswer, Verdict } from './types.js';

/** Where and when gates look. */
export interface GateWindow {
  service: string;
  stable: string;
  candidate: string;
  /** Window start (the hold's start) and the evaluation time, epoch ms. */
  startMs: number;
  atMs: number;
}

/** Default allowed error-rate increase: 0.1 percentage points. */
export const DEFAULT_MAX_INCREASE = 0.001;
/** Default confidence of error-rate verdicts. */
export const DEFAULT_CONFIDENCE = 0.99;
/** Default canary requests before a latency verdict. */
export const DEFAULT_MIN_REQUESTS = 100;

type Scalar = { ok: true; value: number | undefined } | { ok: false; verdict: Verdict; reason: string };

/** One number from an answer: undefined for no data; a failed answer becomes an error verdict. */
function scalar(answer: QueryAnswer, query: string): Scalar {
  switch (answer.kind) {
    case 'data':
      return { ok: true, value: answer.samples.reduce((sum, s) => sum + s.value, 0) };
    case 'no-data':
      return { ok: true, value: undefined };
    case 'query-error':
      return { ok: false, verdict: 'error', reason: `query failed: ${answer.message} (${query})` };
    case 'unreachable':
      return { ok: false, verdict: 'error', reason: `Prometheus unreachable: ${answer.message}` };
  }
}

/** Evaluate every named gate; the order of results follows `gates`. */
export async function evaluateGates(gates: GateConfig[], prom: PrometheusConfig | undefined, provider: MetricsProvider, w: GateWindow): Promise<GateResult[]> {
  return Promise.all(gates.map((g) => evaluateGate(g, prom, provider, w)));
}

/** Evaluate one gate at `w.atMs` over [w.startMs, w.atMs]. */
export async function evaluateGate(gate: GateConfig, prom: PrometheusConfig | undefined, provider: MetricsProvider, w: GateWindow): Promise<GateResult> {
  const windowSeconds = Math.max(1, Math.round((w.atMs - w.startMs) / 1000));
  const scope = (version: string, offsetSeconds?: number): QueryScope => ({ service: w.service, version, stable: w.stable, windowSeconds, ...(offsetSeconds ? { offsetSeconds } : {}) });
  const at = new Date(w.atMs).toISOString();
  const base = { gate: gate.name, type: gate.type, at };
  const ask = async (q: string) => scalar(await provider.query(q, w.atMs), q);

  if (gate.type === 'errorRate') {
    const maxIncrease = gate.maxIncrease ?? DEFAULT_MAX_INCREASE;
    const alpha = 1 - (gate.confidence ?? DEFAULT_CONFIDENCE);
    const c = errorRateQueries(gate, prom, scope(w.candidate));
    let s = errorRateQueries(gate, prom, scope(w.stable));
    const queries = [c.requests, c.errors, s.requests, s.errors];
    const [cr, ce, sr0, se0] = await Promise.all(queries.map(ask));
    let [sr, se] = [sr0!, se0!];
    for (const a of [cr!, ce!, sr, se]) if (!a.ok) return { ...base, verdict: a.verdict, reason: a.reason, queries };
    // At a 100% step stable serves nothing: take its baseline from an equal window before the step.
    if (sr.ok && !sr.value) {
      s = errorRateQueries(gate, prom, scope(w.stable, windowSeconds));
      queries.push(s.requests, s.errors);
      [sr, se] = await Promise.all([ask(s.requests), ask(s.errors)]);
      for (const a of [sr, se]) if (!a.ok) return { ...base, verdict: a.verdict, reason: a.reason, queries };
    }
    const num = (a: Scalar) => Math.max(0, Math.round(a.ok ? (a.value ?? 0) : 0));
    const canary = { requests: num(cr!), errors: Math.min(num(ce!), num(cr!)) };
    const stable = { requests: num(sr), errors: Math.min(num(se), num(sr)) };
    if (canary.requests === 0) {
      return { ...base, verdict: 'inconclusive', reason: `no requests to ${w.candidate} in the last ${windowSeconds}s`, queries, samples: { canary: 0, stable: stable.requests } };
    }
    const d = errorRateDecision({ canary, stable }, { maxIncrease, alpha });
    const pct = (x: number) => +(x * 100).toFixed(4);
    if (gate.perOrg && d.verdict !== 'failed') {
      const q = perOrgQueries(prom, w.candidate, windowSeconds);
      queries.push(q.requests, q.errors);
      const org = await checkPerOrg(gate, prom, provider, q, w.atMs, stable, { maxIncrease, alpha });
      if (org.kind !== 'ok') {
        return { ...base, verdict: org.kind, reason: org.reason, queries, value: pct(d.canaryRate), baseline: pct(d.stableRate), samples: { canary: canary.requests, stable: stable.requests } };
      }
    }
    const reason =
      d.verdict === 'failed'
        ? `${w.candidate} errors ${pct(d.canaryRate)}% vs ${w.stable} ${pct(d.stableRate)}%: at least ${pct(d.difference.lower)} points more, over the allowed ${pct(maxIncrease)}`
        : d.verdict === 'passed'
          ? `${w.candidate} errors ${pct(d.canaryRate)}% vs ${w.stable} ${pct(d.stableRate)}%: at most ${pct(d.difference.upper)} points more`
          : `${canary.requests} of ~${d.requestsNeeded} requests needed; an increase of ${pct(d.detectableIncrease)} points would show now`;
    return {
      ...base,
      verdict: d.verdict,
      value: pct(d.canaryRate),
      baseline: pct(d.stableRate),
      threshold: pct(d.stableRate + maxIncrease),
      samples: { canary: canary.requests, stable: stable.requests, needed: d.requestsNeeded, detectableIncrease: pct(d.detectableIncrease) },
      queries,
      reason,
    };
  }

  if (gate.type === 'latencyP99') {
    const minRequests = gate.minRequests ?? DEFAULT_MIN_REQUESTS;
    const c = latencyQueries(gate, prom, scope(w.candidate));
    const s = latencyQueries(gate, prom, scope(w.stable));
    const queries = gate.maxFactor !== undefined ? [c.p99, c.count, s.p99] : [c.p99, c.count];
    const answers = await Promise.all(queries.map(ask));
    for (const a of answers) if (!a.ok) return { ...base, verdict: a.verdict, reason: a.reason, queries };
    const [p99, count, stableP99] = answers.map((a) => (a.ok ? a.value : undefined));
    const n = Math.round(count ?? 0);
    const ms = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? undefined : +(x * 1000).toFixed(3));
    const canaryMs = ms(p99);
    const stableMs = ms(stableP99);
    const limitMs = gate.max !== undefined ? gate.max : stableMs !== undefined ? stableMs * gate.maxFactor! : undefined;
    const samples = { canary: n, needed: minRequests };
    if (n < minRequests || canaryMs === undefined) {
      return { ...base, verdict: 'inconclusive', reason: `${n} of ${minRequests} requests needed for a P99`, queries, samples, ...(canaryMs !== undefined ? { value: canaryMs } : {}) };
    }
    if (limitMs === undefined) return { ...base, verdict: 'inconclusive', reason: `no P99 for ${w.stable} to compare with`, queries, samples, value: canaryMs };
    const failed = canaryMs > limitMs;
    return {
      ...base,
      verdict: failed ? 'failed' : 'passed',
      value: canaryMs,
      threshold: +limitMs.toFixed(3),
      ...(stableMs !== undefined ? { baseline: stableMs } : {}),
      samples,
      queries,
      reason: `${w.candidate} P99 ${canaryMs}ms ${failed ? '>' : '≤'} ${+limitMs.toFixed(3)}ms${gate.maxFactor !== undefined ? ` (${w.stable} ${stableMs}ms × ${gate.maxFactor})` : ''}`,
    };
  }

  const q = customQuery(gate, scope(w.candidate));
  const answer = await provider.query(q, w.atMs);
  // A ratio summed over several series means nothing: the query must aggregate to one.
  if (answer.kind === 'data' && answer.samples.length > 1) {
    return { ...base, verdict: 'error', reason: `the query gave ${answer.samples.length} series; aggregate it to one (sum, max, …)`, queries: [q] };
  }
  const a = scalar(answer, q);
  if (!a.ok) return { ...base, verdict: a.verdict, reason: a.reason, queries: [q] };
  if (a.value === undefined || Number.isNaN(a.value)) return { ...base, verdict: 'inconclusive', reason: a.value === undefined ? 'no data' : 'the query gave NaN', queries: [q] };
  const pass = gate.direction === 'below' ? a.value <= gate.threshold : a.value >= gate.threshold;
  return {
    ...base,
    verdict: pass ? 'passed' : 'failed',
    value: a.value,
    threshold: gate.threshold,
    queries: [q],
    reason: `${a.value} ${pass ? 'is' : 'is not'} ${gate.direction} ${gate.threshold}`,
  };
}
