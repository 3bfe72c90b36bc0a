/**
 * Replaying gates over a past window: what each gate would have said at every check between
 * `from` and `to`, had a step started at `from`. Counts come from `query_range` over
 * per-interval increases, summed up to each check, so counter resets are handled by Prometheus
 * and each check sees exactly the window a live gate would have seen.
 */
import type { GateConfig, PrometheusConfig } from '../config/schema.js';
import { DEFAULT_CONFIDENCE, DEFAULT_MAX_INCREASE, DEFAULT_MIN_REQUESTS } from './evaluate.js';
import { ladderDecision, type LadderMemory } from './ladder.js';
import { errorRateDecision } from './stats.js';
import { customQuery, type QueryScope } from '../metrics/prometheus/queries.js';
import { renderTemplate, selector } from '../metrics/prometheus/promql.js';
import type { MetricsProvider, RangeAnswer, Verdict } from './types.js';

/** One check of a replay. */
export interface BacktestPoint {
  atMs: number;
  verdict: Verdict;
  value?: number;
  reason: string;
}

/** A gate's replay. */
export interface BacktestResult {
  gate: string;
  points: BacktestPoint[];
  /** When the verdict first became passed / failed (epoch ms), if it did. */
  firstPassedMs?: number;
  firstFailedMs?: number;
}

/** What to replay. */
export interface BacktestWindow {
  service: string;
  stable: string;
  candidate: string;
  fromMs: number;
  toMs: number;
  intervalMs: number;
}

/** Per-series values at each check time (missing points count as 0). */
async function increments(provider: MetricsProvider, query: string, w: BacktestWindow): Promise<Map<string, number[]>> {
  const times = checkTimes(w);
  const answer: RangeAnswer = await provider.queryRange(query, times[0]!, times.at(-1)!, w.intervalMs);
  if (answer.kind === 'query-error' || answer.kind === 'unreachable') throw new Error(`${answer.kind}: ${answer.message} (${query})`);
  const out = new Map<string, number[]>();
  if (answer.kind === 'no-data') return out;
  for (const series of answer.series) {
    const values = times.map(() => 0);
    for (const [t, v] of series.points) {
      const i = Math.round((t - times[0]!) / w.intervalMs);
      if (i >= 0 && i < values.length && Number.isFinite(v)) values[i] = v;
    }
    const key = series.labels.le ?? (Object.keys(series.labels).length ? JSON.stringify(series.labels) : '');
    out.set(key, values);
  }
  return out;
}

/** Check times: from + interval, from + 2·interval, … up to `to`. */
export function checkTimes(w: BacktestWindow): number[] {
  const times: number[] = [];
  for (let t = w.fromMs + w.intervalMs; t <= w.toMs; t += w.intervalMs) times.push(t);
  return times;
}

const cumulative = (xs: number[]) => xs.reduce<number[]>((acc, x) => [...acc, (acc.at(-1) ?? 0) + x], []);
const total = (m: Map<string, number[]>, n: number) => cumulative(m.get('') ?? new Array<number>(n).fill(0));

/** Prometheus' histogram_quantile over cumulative bucket counts (`le` → count). */
export function histogramQuantile(q: number, buckets: [le: number, count: number][]): number {
  const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
  const count = sorted.at(-1)?.[1] ?? 0;
  if (count === 0 || sorted.at(-1)![0] !== Infinity) return NaN;
  const rank = q * count;
  let i = sorted.findIndex(([, c]) => c >= rank);
  if (i === sorted.length - 1) return sorted.length > 1 ? sorted[sorted.length - 2]![0] : NaN;
  if (i < 0) i = 0;
  const [upper, c] = sorted[i]!;
  const [lower, prev] = i === 0 ? [0, 0] : sorted[i - 1]!;
  return lower + (upper - lower) * ((rank - prev) / Math.max(c - prev, 1e-12));
}

/** Replay one gate. */
export async function backtestGate(gate: GateConfig, prom: PrometheusConfig | undefined, provider: MetricsProvider, w: BacktestWindow): Promise<BacktestResult> {
  const times = checkTimes(w);
  const win = `${Math.round(w.intervalMs / 1000)}s`;
  const points: BacktestPoint[] = [];

  if (gate.type === 'errorRate') {
    const q = (version: string, errors: boolean) => {
      const template = errors ? gate.errors : gate.requests;
      if (template) return renderTemplate(template, { labels: { version, service: w.service, stable: w.stable }, raw: { window: win } });
      return `sum(increase(http_requests_total${selector(prom, version, errors ? 'code=~"5.."' : '')}[${win}]))`;
    };
    const [cr, ce, sr, se] = await Promise.all([q(w.candidate, false), q(w.candidate, true), q(w.stable, false), q(w.stable, true)].map((x) => increments(provider, x, w)));
    const [cR, cE, sR, sE] = [cr!, ce!, sr!, se!].map((m) => total(m, times.length));
    const maxIncrease = gate.maxIncrease ?? DEFAULT_MAX_INCREASE;
    const alpha = 1 - (gate.confidence ?? DEFAULT_CONFIDENCE);
    // The ladder's failure test runs over the whole window as one step; a pass is the band's.
    let memory: LadderMemory | undefined;
    let failedOnEvidence = false;
    times.forEach((atMs, i) => {
      const canary = { requests: Math.round(cR![i]!), errors: Math.min(Math.round(cE![i]!), Math.round(cR![i]!)) };
      const stable = { requests: Math.round(sR![i]!), errors: Math.min(Math.round(sE![i]!), Math.round(sR![i]!)) };
      if (gate.method !== 'confidence-sequence') {
        const l = ladderDecision({ step: 0, canary, stable, margin: maxIncrease, maxIncrease, alpha, lookSpacingMs: w.intervalMs }, memory);
        memory = l.memory;
        failedOnEvidence ||= l.verdict === 'failed';
        if (failedOnEvidence) return points.push({ atMs, verdict: 'failed', value: +(l.canaryRate * 100).toFixed(4), reason: `evidence of harm ${+l.evidence.toPrecision(3)}; canary ${canary.errors}/${canary.requests}, stable ${stable.errors}/${stable.requests}` });
      }
      if (canary.requests === 0) return points.push({ atMs, verdict: 'inconclusive', reason: 'no canary requests' });
      const d = errorRateDecision({ canary, stable }, { maxIncrease, alpha });
      points.push({ atMs, verdict: d.verdict, value: +(d.canaryRate * 100).toFixed(4), reason: `canary ${canary.errors}/${canary.requests}, stable ${stable.errors}/${stable.requests}` });
    });
  } else if (gate.type === 'latencyP99') {
    const h = gate.histogram ?? 'http_request_duration_seconds';
    const bucketsOf = async (version: string) => {
      const m = await increments(provider, `sum by (le) (increase(${h}_bucket${selector(prom, version)}[${win}]))`, w);
      const cum = new Map([...m].map(([le, xs]) => [le === '+Inf' ? Infinity : Number(le), cumulative(xs)] as const));
      return times.map((_, i) => [...cum].map(([le, xs]) => [le, xs[i]!] as [number, number]));
    };
    const canary = await bucketsOf(w.candidate);
    const stable = gate.maxFactor !== undefined ? await bucketsOf(w.stable) : undefined;
    const minRequests = gate.minRequests ?? DEFAULT_MIN_REQUESTS;
    times.forEach((atMs, i) => {
      const b = canary[i]!;
      const n = Math.round(b.find(([le]) => le === Infinity)?.[1] ?? 0);
      const p99 = histogramQuantile(0.99, b) * 1000;
      const limit = gate.max ?? (stable ? histogramQuantile(0.99, stable[i]!) * 1000 * gate.maxFactor! : NaN);
      if (n < minRequests || Number.isNaN(p99) || Number.isNaN(limit)) return points.push({ atMs, verdict: 'inconclusive', reason: `${n} of ${minRequests} requests` });
      points.push({ atMs, verdict: p99 > limit ? 'failed' : 'passed', value: +p99.toFixed(3), reason: `P99 ${p99.toFixed(1)}ms vs ${limit.toFixed(1)}ms` });
    });
  } else if (gate.type === 'journey') {
    for (const atMs of times) points.push({ atMs, verdict: 'inconclusive', reason: 'journeys run live against the versions; there is nothing to replay' });
  } else {
    const scope: QueryScope = { service: w.service, version: w.candidate, stable: w.stable, windowSeconds: w.intervalMs / 1000 };
    const m = await increments(provider, customQuery(gate, scope), w);
    const series = [...m.values()];
    times.forEach((atMs, i) => {
      if (series.length !== 1) return points.push({ atMs, verdict: series.length ? 'error' : 'inconclusive', reason: series.length ? `${series.length} series` : 'no data' });
      const v = series[0]![i]!;
      const pass = gate.direction === 'below' ? v <= gate.threshold : v >= gate.threshold;
      points.push({ atMs, verdict: pass ? 'passed' : 'failed', value: v, reason: `${v} vs ${gate.threshold}` });
    });
  }
  const firstPassed = points.find((p) => p.verdict === 'passed');
  const firstFailed = points.find((p) => p.verdict === 'failed');
  return { gate: gate.name, points, ...(firstPassed ? { firstPassedMs: firstPassed.atMs } : {}), ...(firstFailed ? { firstFailedMs: firstFailed.atMs } : {}) };
}
