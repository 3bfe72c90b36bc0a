/**
 * Replaying gates over a past window: what each gate would have said at every check between
 * `from` and `to`, had a step started at `from`. The metrics source answers what each check
 * would have seen since `from` (Prometheus: per-interval increases summed up to the check), so
 * each check sees exactly the window a live gate would have seen.
 */
import type { GateConfig } from '../config/schema.js';
import type { Measurement, Metrics, ReplayScope } from '../metrics/metrics.js';
import { DEFAULT_CONFIDENCE, DEFAULT_MAX_INCREASE, DEFAULT_MIN_REQUESTS, p99InMs, saidP99 } from './evaluate.js';
import { ladderDecision, type LadderMemory } from './ladder.js';
import { errorRateDecision } from './stats.js';
import type { LatencyBucket, Verdict } from './types.js';

/** One check of a replay. */
export interface BacktestPoint {
  atMs: number;
  verdict: Verdict;
  value?: number;
  /** A P99 from a histogram: the bucket (ms) `value`, its estimate, lies in. */
  bucket?: LatencyBucket;
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

/** A replay's answer, or undefined for no data. A failure ends the replay: it would fail at every check. */
function replayed<T>(answer: Measurement<T>): T | undefined {
  if (answer.kind === 'query-error' || answer.kind === 'unreachable') throw new Error(`${answer.kind}: ${answer.message} (${answer.query})`);
  return answer.kind === 'data' ? answer.value : undefined;
}

/** Check times: from + interval, from + 2·interval, … up to `to`. */
export function checkTimes(w: BacktestWindow): number[] {
  const times: number[] = [];
  for (let t = w.fromMs + w.intervalMs; t <= w.toMs; t += w.intervalMs) times.push(t);
  return times;
}

/** Replay one gate. */
export async function backtestGate(gate: GateConfig, metrics: Metrics, w: BacktestWindow): Promise<BacktestResult> {
  const times = checkTimes(w);
  const scope = (version: string): ReplayScope => ({ service: w.service, version, stable: w.stable, times, intervalMs: w.intervalMs });
  const zeros = times.map(() => 0);
  const points: BacktestPoint[] = [];

  if (gate.type === 'errorRate') {
    const [c, s] = (await Promise.all([w.candidate, w.stable].map((v) => metrics.replayRequestCounts(gate, scope(v))))).map(replayed);
    const [cR, cE, sR, sE] = [c?.requests, c?.errors, s?.requests, s?.errors].map((xs) => xs ?? zeros);
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
    const latencyOf = async (version: string) => replayed(await metrics.replayLatency(gate, scope(version))) ?? { p99: times.map(() => NaN), requests: zeros };
    const canary = await latencyOf(w.candidate);
    const stable = gate.maxFactor !== undefined ? await latencyOf(w.stable) : undefined;
    const minRequests = gate.minRequests ?? DEFAULT_MIN_REQUESTS;
    times.forEach((atMs, i) => {
      const n = Math.round(canary.requests[i]!);
      const p99 = p99InMs({ seconds: canary.p99[i]!, ...(canary.buckets?.[i] ? { bucket: canary.buckets[i] } : {}) });
      const limit = gate.max ?? (stable ? +(stable.p99[i]! * 1000 * gate.maxFactor!).toFixed(3) : NaN);
      if (n < minRequests || !p99 || Number.isNaN(limit)) return points.push({ atMs, verdict: 'inconclusive', reason: `${n} of ${minRequests} requests` });
      // As a live check judges it: beyond the histogram's highest bound, a limit above it cannot be judged.
      const beyond = p99.bucket !== undefined && p99.bucket.upper === undefined;
      const verdict = beyond ? (limit > p99.bucket!.lower ? 'inconclusive' : 'failed') : p99.ms > limit ? 'failed' : 'passed';
      points.push({ atMs, verdict, value: p99.ms, ...(p99.bucket ? { bucket: p99.bucket } : {}), reason: `P99 ${saidP99(p99, limit)} vs ${+limit.toFixed(1)}ms` });
    });
  } else if (gate.type === 'journey') {
    for (const atMs of times) points.push({ atMs, verdict: 'inconclusive', reason: 'journeys run live against the versions; there is nothing to replay' });
  } else {
    const series = replayed(await metrics.replayQueryValues(gate, scope(w.candidate))) ?? [];
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
