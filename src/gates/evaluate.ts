/**
 * Evaluating gates: each gate's measurements of the canary (and stable as baseline) over the
 * window since the step's hold began, turned into a verdict. The metrics source being down or a
 * query failing is an `error` verdict, never a pass; no traffic is `inconclusive`.
 */
import type { GateConfig } from '../config/schema.js';
import type { Plan, StepIndex } from '../engine/plan.js';
import type { ErrorRateGate, LatencyP99, Measurement, Metrics, MetricScope, RequestCounts } from '../metrics/metrics.js';
import { formatP99 } from '../ui/numbers.js';
import { DEFAULT_JOURNEY_MAX_INCREASE, emptyJourneyMemory, journeyBase, runJourney, type JourneyGate, type JourneyMemory, type JourneyRun } from './journey.js';
import { emptyMemory, ladderDecision, lookSpacing, planMargins, type LadderMemory } from './ladder.js';
import { errorRateDecision } from './stats.js';
import { judgePerOrg, type PerOrgOutcome } from './per-org.js';
import type { GateResult, LatencyBucket, Verdict } from './types.js';

/** Where and when gates look. */
export interface GateWindow {
  service: string;
  stable: string;
  candidate: string;
  /** Window start (the hold's start) and the evaluation time, epoch ms. */
  startMs: number;
  atMs: number;
  /** The rollout's plan and step (its index, from 0), and when the step's hold ends: the ladder's margins and looks. */
  plan?: Plan;
  step?: StepIndex;
  holdUntilMs?: number;
  /** What each gate carried from its previous check, by gate name. */
  memory?: Record<string, unknown>;
  /** When the rollout began: `baseline: history` reads stable's hour before it. */
  rolloutStartMs?: number;
  /** Each version's endpoints from deploy.yaml, where journeys reach it. */
  endpoints?: Record<string, string[] | undefined>;
}

/** Default allowed error-rate increase: 0.1 percentage points. */
export const DEFAULT_MAX_INCREASE = 0.001;
/** Default confidence of error-rate verdicts. */
export const DEFAULT_CONFIDENCE = 0.99;
/** Default allowed rise of the share of requests slower than a latency gate's max: 1 point. */
export const DEFAULT_MAX_SLOW_INCREASE = 0.01;
/** Default canary requests before a latency verdict. */
export const DEFAULT_MIN_REQUESTS = 100;

/** Why a failed measurement is an error verdict, in the words gates have always used. */
function errorVerdict(metrics: Metrics, answers: Measurement<unknown>[]): { verdict: Verdict; reason: string } | undefined {
  for (const a of answers) {
    if (a.kind === 'query-error') return { verdict: 'error', reason: `query failed: ${a.message} (${a.query})` };
    if (a.kind === 'unreachable') return { verdict: 'error', reason: `${metrics.name} unreachable: ${a.message}` };
  }
  return undefined;
}

/** A measurement's value, or undefined for no data (and for a failure, ruled out before). */
const valueOf = <T>(a: Measurement<T>): T | undefined => (a.kind === 'data' ? a.value : undefined);
/** Everything the measurements sent, in order. */
const sentBy = (answers: Measurement<unknown>[]) => answers.flatMap((a) => a.sent);
/** Counts as whole, non-negative requests; failures no more than requests. No data counts 0. */
function whole(a: Measurement<RequestCounts>): RequestCounts {
  const c = valueOf(a);
  const requests = Math.max(0, Math.round(c?.requests ?? 0));
  return { requests, errors: Math.min(Math.max(0, Math.round(c?.errors ?? 0)), requests) };
}

const count = (n: number) => Math.round(n).toLocaleString('en-US');
const points = (x: number) => `${+(x * 100).toFixed(x >= 0.01 ? 2 : 3)}`;
/** A rate in percent, for people: three significant digits (17.2%, 0.5%, 0.0123%). */
const rateText = (x: number) => `${+(x * 100).toPrecision(3)}`;

/**
 * The ladder's verdict (`ladder.ts`): the failure test over the whole rollout, the step's margin
 * looked at from the hold's end on. Its memory rides on the result into the rollout's state.
 * `failures` names what is counted: errors, or requests slower than a latency bound.
 */
function ladderResult(
  w: GateWindow,
  x: {
    canary: { requests: number; errors: number };
    stable: { requests: number; errors: number };
    margin: number;
    maxIncrease: number;
    alpha: number;
    queries: string[];
    base: { gate: string; type: GateResult['type']; at: string };
    failures: string;
  },
  memory = w.memory?.[x.base.gate] as LadderMemory | undefined,
): GateResult {
  const step = w.plan!.steps[w.step!]!;
  const holdUntil = w.holdUntilMs ?? Number.POSITIVE_INFINITY;
  const d = ladderDecision(
    {
      step: w.step!, canary: x.canary, stable: x.stable, margin: x.margin, maxIncrease: x.maxIncrease, alpha: x.alpha, lookSpacingMs: lookSpacing(step.holdMs),
      ...(w.atMs >= holdUntil ? { pastHoldMs: w.atMs - holdUntil } : {}),
      ...(memory?.reference ? { reference: memory.reference } : {}),
    },
    memory,
  );
  const pct = (v: number) => +(v * 100).toFixed(4);
  const samples = {
    canary: d.requests,
    stable: d.memory.strata.reduce((t, s) => t + s.stable.requests, 0),
    needed: d.requestsNeeded,
    margin: pct(x.margin),
    excessFailures: Math.round(d.excessErrors),
    evidence: +d.evidence.toPrecision(3),
    rollbackAt: Math.round(1 / x.alpha),
  };
  const reference = memory?.reference;
  const rates = reference
    ? `${w.candidate} ${x.failures} ${rateText(d.canaryRate)}% vs ${w.stable} ${rateText(reference.errors / reference.requests)}% in the hour before the rollout (${count(reference.requests)} requests)`
    : `${w.candidate} ${x.failures} ${rateText(d.canaryRate)}% vs ${w.stable} ${rateText(d.stableRate)}%`;
  const reason =
    d.verdict === 'failed'
      ? `${rates}: ${count(d.excessErrors)} ${x.failures === 'errors' ? 'failed requests' : x.failures} more than ${w.stable}'s rate gives, evidence ${samples.evidence} ≥ ${samples.rollbackAt}`
      : d.verdict === 'passed'
        ? `${rates}: at most +${points(Math.max(0, d.upperBound))} points over ${count(d.requests)} requests, within this step's +${points(x.margin)}`
        : `${count(d.requests)} of ~${count(d.requestsNeeded)} requests needed to rule out +${points(x.margin)} points${reference ? ` over ${w.stable}'s hour before the rollout` : ''}`;
  return { ...x.base, verdict: d.verdict, value: pct(d.canaryRate), baseline: pct(d.stableRate), threshold: pct(d.stableRate + x.margin), samples, queries: x.queries, reason, memory: d.memory };
}

/** A P99 in ms, with the histogram bucket it lies in (ms); undefined when the source could not tell. */
export function p99InMs(p: LatencyP99 | undefined): { ms: number; bucket?: LatencyBucket } | undefined {
  if (!p || Number.isNaN(p.seconds)) return undefined;
  const ms = (s: number) => +(s * 1000).toFixed(3);
  if (!p.bucket) return { ms: ms(p.seconds) };
  return { ms: ms(p.seconds), bucket: { lower: ms(p.bucket.lower), ...(Number.isFinite(p.bucket.upper) ? { upper: ms(p.bucket.upper) } : {}) } };
}

/**
 * A P99 as a gate's reason says it: its bucket's bound (`≤ 5ms`), with the estimate beside it
 * where the bound alone does not settle the comparison with `limitMs`.
 */
export function saidP99(p: { ms: number; bucket?: LatencyBucket }, limitMs: number): string {
  const said = formatP99(p.ms, p.bucket);
  return p.bucket?.upper !== undefined && p.bucket.upper > limitMs ? `${said} (estimated ${p.ms}ms)` : said;
}

/** The hour of stable's traffic before the rollout began (`baseline: history`), read once and remembered. */
async function historyReference(
  gate: ErrorRateGate,
  metrics: Metrics,
  w: GateWindow,
): Promise<{ counts: RequestCounts; queries: string[] } | { verdict: Verdict; reason: string; queries: string[] }> {
  const atMs = w.rolloutStartMs ?? w.startMs;
  const answer = await metrics.requestCounts(gate, { service: w.service, version: w.stable, stable: w.stable, windowSeconds: HISTORY_SECONDS, atMs });
  const queries = answer.sent;
  const error = errorVerdict(metrics, [answer]);
  if (error) return { ...error, queries };
  const counts = whole(answer);
  if (counts.requests === 0) return { verdict: 'inconclusive', reason: `baseline: history, but ${w.stable} served nothing in the hour before the rollout`, queries };
  return { counts, queries };
}

/** How far back `baseline: history` looks: the hour before the rollout. */
export const HISTORY_SECONDS = 3600;

/**
 * A journey gate's check: when its interval is up, one run against the candidate and one against
 * stable, side by side; the runs of the step so far judged by the ladder, failed runs as errors.
 */
async function journeyResult(gate: JourneyGate, w: GateWindow, base: { gate: string; type: GateResult['type']; at: string }): Promise<GateResult> {
  const memory = (w.memory?.[gate.name] as JourneyMemory | undefined) ?? emptyJourneyMemory();
  const step = w.step ?? 0;
  // The runs of this step so far are the ladder's count for it; a new run adds one to each side.
  const counted = memory.ladder.strata.find((s) => s.step === step);
  let canary = counted?.canary ?? { requests: 0, errors: 0 };
  let stable = counted?.stable ?? { requests: 0, errors: 0 };
  let latest: JourneyRun[] = [];
  let lastRunAt = memory.lastRunAt;
  if (lastRunAt === undefined || w.atMs - lastRunAt >= (gate.interval ?? 0)) {
    const endpoints = w.endpoints ?? {};
    latest = await Promise.all([w.candidate, w.stable].map((v) => runJourney(gate, v, journeyBase(gate, v, endpoints))));
    const add = (x: { requests: number; errors: number }, run: JourneyRun) => ({ requests: x.requests + 1, errors: x.errors + (run.ok ? 0 : 1) });
    canary = add(canary, latest[0]!);
    stable = add(stable, latest[1]!);
    lastRunAt = w.atMs;
  }
  const journeys = latest.map(({ failure: _f, ...run }) => run);
  const failedRun = latest.find((r) => !r.ok);
  if (!w.plan || w.step === undefined) {
    const run = latest[0];
    return { ...base, verdict: run ? (run.ok ? 'passed' : 'failed') : 'inconclusive', reason: run ? (run.ok ? `${w.candidate}'s journey passed in ${run.ms}ms` : `${w.candidate}'s journey failed at ${run.failure}`) : 'not run yet', queries: [], journeys, memory: { ...memory, ...(lastRunAt !== undefined ? { lastRunAt } : {}) } };
  }
  const maxIncrease = gate.maxIncrease ?? DEFAULT_JOURNEY_MAX_INCREASE;
  // Probes run at their own pace, not the traffic's: every step carries the gate's own margin.
  const margin = w.plan.steps[w.step]?.margin ?? maxIncrease;
  const judged = ladderResult(w, { canary, stable, margin, maxIncrease, alpha: 1 - DEFAULT_CONFIDENCE, queries: [], base, failures: 'journeys failed' }, memory.ladder);
  const runs = `${canary.errors} of ${canary.requests} runs failed on ${w.candidate}, ${stable.errors} of ${stable.requests} on ${w.stable}`;
  const last = failedRun ? `; last: ${failedRun.version} at ${failedRun.failure}` : '';
  const reason = judged.verdict === 'failed' ? `${runs}${last}` : judged.verdict === 'passed' ? `${runs}: ${judged.reason.split(': ').at(-1)}` : `${runs}; ${judged.reason}${last}`;
  return { ...judged, reason, journeys, memory: { ...(lastRunAt !== undefined ? { lastRunAt } : {}), ladder: judged.memory as LadderMemory } };
}

/** Evaluate every named gate; the order of results follows `gates`. */
export async function evaluateGates(gates: GateConfig[], metrics: Metrics, w: GateWindow): Promise<GateResult[]> {
  return Promise.all(gates.map((g) => evaluateGate(g, metrics, w)));
}

/** Evaluate one gate at `w.atMs` over [w.startMs, w.atMs]. */
export async function evaluateGate(gate: GateConfig, metrics: Metrics, w: GateWindow): Promise<GateResult> {
  const windowSeconds = Math.max(1, Math.round((w.atMs - w.startMs) / 1000));
  const scope = (version: string, offsetSeconds?: number): MetricScope => ({ service: w.service, version, stable: w.stable, windowSeconds, atMs: w.atMs, ...(offsetSeconds ? { offsetSeconds } : {}) });
  const at = new Date(w.atMs).toISOString();
  const base = { gate: gate.name, type: gate.type, at };

  if (gate.type === 'errorRate') {
    const maxIncrease = gate.maxIncrease ?? DEFAULT_MAX_INCREASE;
    const alpha = 1 - (gate.confidence ?? DEFAULT_CONFIDENCE);
    const [c, stableNow] = await Promise.all([metrics.requestCounts(gate, scope(w.candidate)), metrics.requestCounts(gate, scope(w.stable))]);
    let s = stableNow;
    const queries = sentBy([c, s]);
    const error = errorVerdict(metrics, [c, s]);
    if (error) return { ...base, ...error, queries };
    // At a 100% step stable serves nothing: take its baseline from an equal window before the step.
    const stableServes = !!valueOf(s)?.requests;
    if (!stableServes) {
      s = await metrics.requestCounts(gate, scope(w.stable, windowSeconds));
      queries.push(...s.sent);
      const errorBefore = errorVerdict(metrics, [s]);
      if (errorBefore) return { ...base, ...errorBefore, queries };
    }
    const canary = whole(c);
    const stable = whole(s);
    // Each org of the candidate against stable; its queries join the gate's.
    const perOrg = async (): Promise<PerOrgOutcome> => {
      const orgs = await metrics.requestCountsByOrg(gate, scope(w.candidate));
      queries.push(...orgs.sent);
      return judgePerOrg(orgs, stable, { maxIncrease, alpha });
    };
    if (canary.requests === 0) {
      return { ...base, verdict: 'inconclusive', reason: `no requests to ${w.candidate} in the last ${windowSeconds}s`, queries, samples: { canary: 0, stable: stable.requests } };
    }
    const pct = (x: number) => +(x * 100).toFixed(4);
    const margin = w.plan && w.step !== undefined && gate.method !== 'confidence-sequence' ? planMargins(w.plan, gate.name, maxIncrease, alpha)[w.step] : undefined;
    // The ladder compares both versions over the same time; with stable serving nothing, the band below does.
    if (margin !== undefined && (stableServes || gate.baseline === 'history')) {
      let memory = w.memory?.[gate.name] as LadderMemory | undefined;
      if (gate.baseline === 'history' && !memory?.reference) {
        const before = await historyReference(gate, metrics, w);
        if ('verdict' in before) return { ...base, ...before, queries: [...queries, ...before.queries] };
        memory = { ...(memory ?? emptyMemory()), reference: before.counts };
        queries.push(...before.queries);
      }
      const result = ladderResult(w, { canary, stable, margin, maxIncrease, alpha, queries, base, failures: 'errors' }, memory);
      if (!gate.perOrg || result.verdict === 'failed') return result;
      const org = await perOrg();
      return org.kind === 'ok' ? { ...result, queries } : { ...result, queries, verdict: org.kind, reason: org.reason };
    }
    const d = errorRateDecision({ canary, stable }, { maxIncrease, alpha });
    if (gate.perOrg && d.verdict !== 'failed') {
      const org = await perOrg();
      if (org.kind !== 'ok') {
        return { ...base, verdict: org.kind, reason: org.reason, queries, value: pct(d.canaryRate), baseline: pct(d.stableRate), samples: { canary: canary.requests, stable: stable.requests } };
      }
    }
    const reason =
      d.verdict === 'failed'
        ? `${w.candidate} errors ${rateText(d.canaryRate)}% vs ${w.stable} ${rateText(d.stableRate)}%: at least ${rateText(d.difference.lower)} points more, over the allowed ${rateText(maxIncrease)}`
        : d.verdict === 'passed'
          ? `${w.candidate} errors ${rateText(d.canaryRate)}% vs ${w.stable} ${rateText(d.stableRate)}%: at most ${rateText(d.difference.upper)} points more`
          : `${canary.requests} of ~${d.requestsNeeded} requests needed; an increase of ${rateText(d.detectableIncrease)} points would show now`;
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

  if (gate.type === 'journey') return journeyResult(gate, w, base);

  if (gate.type === 'latencyP99' && gate.method === 'ladder') {
    const maxIncrease = gate.maxIncrease ?? DEFAULT_MAX_SLOW_INCREASE;
    const alpha = 1 - DEFAULT_CONFIDENCE;
    const answers = await Promise.all([w.candidate, w.stable].map((v) => metrics.fastRequests(gate, scope(v))));
    const queries = sentBy(answers);
    const error = errorVerdict(metrics, answers);
    if (error) return { ...base, ...error, queries };
    // The requests slower than the bound are this gate's failures.
    const slow = (a: Measurement<{ requests: number; fast: number }>): RequestCounts => {
      const requests = Math.max(0, Math.round(valueOf(a)?.requests ?? 0));
      const fast = Math.max(0, Math.round(valueOf(a)?.fast ?? 0));
      return { requests, errors: Math.max(0, requests - fast) };
    };
    const [canary, stable] = [slow(answers[0]!), slow(answers[1]!)];
    if (canary.requests === 0) return { ...base, verdict: 'inconclusive', reason: `no requests to ${w.candidate} in the last ${windowSeconds}s`, queries, samples: { canary: 0, stable: stable.requests } };
    const margin = w.plan && w.step !== undefined ? planMargins(w.plan, gate.name, maxIncrease, alpha)[w.step] : undefined;
    if (margin === undefined || stable.requests === 0) {
      return { ...base, verdict: 'inconclusive', reason: `the share of requests slower than ${gate.max}ms is judged against ${w.stable} during a rollout's steps only`, queries, samples: { canary: canary.requests, stable: stable.requests } };
    }
    return ladderResult(w, { canary, stable, margin, maxIncrease, alpha, queries, base, failures: `requests slower than ${gate.max}ms` });
  }

  if (gate.type === 'latencyP99') {
    const minRequests = gate.minRequests ?? DEFAULT_MIN_REQUESTS;
    const [p99, count, stableP99] = await Promise.all([
      metrics.latencyP99(gate, scope(w.candidate)),
      metrics.latencyRequests(gate, scope(w.candidate)),
      gate.maxFactor !== undefined ? metrics.latencyP99(gate, scope(w.stable)) : undefined,
    ]);
    const answers = [p99, count, ...(stableP99 ? [stableP99] : [])];
    const queries = sentBy(answers);
    const error = errorVerdict(metrics, answers);
    if (error) return { ...base, ...error, queries };
    const n = Math.round(valueOf(count) ?? 0);
    const canary = p99InMs(valueOf(p99));
    const stable = stableP99 && p99InMs(valueOf(stableP99));
    const limitMs = gate.max !== undefined ? gate.max : stable !== undefined ? +(stable.ms * gate.maxFactor!).toFixed(3) : undefined;
    const samples = { canary: n, needed: minRequests };
    const measured = canary && { value: canary.ms, ...(canary.bucket ? { bucket: canary.bucket } : {}) };
    if (n < minRequests || canary === undefined) {
      return { ...base, verdict: 'inconclusive', reason: `${n} of ${minRequests} requests needed for a P99`, queries, samples, ...measured };
    }
    if (limitMs === undefined) return { ...base, verdict: 'inconclusive', reason: `no P99 for ${w.stable} to compare with`, queries, samples, ...measured };
    const baseline = stable && { baseline: stable.ms, ...(stable.bucket ? { baselineBucket: stable.bucket } : {}) };
    // The limit is stable's estimate times the factor: say both the bucket and the estimate.
    const stableSaid = stable && (stable.bucket ? `${formatP99(stable.ms, stable.bucket)}, estimated ${stable.ms}ms,` : `${stable.ms}ms`);
    const against = gate.maxFactor !== undefined && stable ? ` (${w.stable} ${stableSaid} × ${gate.maxFactor})` : '';
    // Beyond the histogram's highest bound the estimate is that bound: the P99 is over a limit at
    // or below it, and a limit above it cannot be judged — never a pass.
    const beyond = canary.bucket !== undefined && canary.bucket.upper === undefined;
    if (beyond && limitMs > canary.bucket!.lower) {
      return { ...base, verdict: 'inconclusive', reason: `${w.candidate} P99 ${formatP99(canary.ms, canary.bucket)}, beyond the histogram's highest bucket: it cannot tell whether that is within ${limitMs}ms${against}`, queries, samples, ...measured, threshold: limitMs, ...baseline };
    }
    const failed = beyond || canary.ms > limitMs;
    return {
      ...base,
      verdict: failed ? 'failed' : 'passed',
      ...measured,
      threshold: limitMs,
      ...baseline,
      samples,
      queries,
      reason: `${w.candidate} P99 ${saidP99(canary, limitMs)} ${failed ? '>' : '≤'} ${limitMs}ms${against}`,
    };
  }

  const answer = await metrics.queryValue(gate, scope(w.candidate));
  const queries = answer.sent;
  // A ratio summed over several series means nothing: the query must aggregate to one.
  const series = valueOf(answer);
  if (series && series.length > 1) {
    return { ...base, verdict: 'error', reason: `the query gave ${series.length} series; aggregate it to one (sum, max, …)`, queries };
  }
  const error = errorVerdict(metrics, [answer]);
  if (error) return { ...base, ...error, queries };
  const value = series?.reduce((sum, x) => sum + x, 0);
  if (value === undefined || Number.isNaN(value)) return { ...base, verdict: 'inconclusive', reason: value === undefined ? 'no data' : 'the query gave NaN', queries };
  const pass = gate.direction === 'below' ? value <= gate.threshold : value >= gate.threshold;
  return {
    ...base,
    verdict: pass ? 'passed' : 'failed',
    value,
    threshold: gate.threshold,
    queries,
    reason: `${value} ${pass ? 'is' : 'is not'} ${gate.direction} ${gate.threshold}`,
  };
}
