/**
 * The error-rate ladder on exact series backfilled into a real Prometheus: two rollouts of the
 * same plan (5%, 25%, 50% held 10 minutes each), one healthy, one whose errors rise three
 * minutes into its 25% step. The gate is checked every minute as the driver checks it, its
 * memory carried from check to check; every verdict, margin and the failed requests beyond
 * stable's rate are compared with what the series say. `deploy plan` then reads today's traffic
 * from the same Prometheus and prints each step's margin.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GateConfig, PrometheusConfig } from '../../src/config/schema.js';
import { evaluateGate } from '../../src/gates/evaluate.js';
import type { LadderMemory } from '../../src/gates/ladder.js';
import { PrometheusClient } from '../../src/metrics/prometheus/client.js';
import { PrometheusMetrics } from '../../src/metrics/prometheus/metrics.js';
import type { GateResult } from '../../src/gates/types.js';
import { backfillOpenMetrics, startPrometheus, type PrometheusProcess } from '../../src/sandbox/prometheus-process.js';
import { planCanary } from '../../strategies/canary.js';
import { DEPLOY } from '../helpers/sandbox.js';

const STEP_S = 15;
const HOLD_S = 600;
const END_S = Math.floor(Date.now() / 1000 / STEP_S) * STEP_S - 2 * STEP_S;
const ROLLOUT_S = END_S - 3 * HOLD_S - 60;
const BEFORE_S = ROLLOUT_S - 1200;
const WEIGHTS = [5, 25, 50];
/** 4,000 requests every 15 s, 0.5% errors: every share below is a whole number of requests. */
const PER_SCRAPE = 4000;
const FAULT_S = ROLLOUT_S + HOLD_S + 180;

const weightAt = (t: number) => (t < ROLLOUT_S ? 0 : WEIGHTS[Math.min(2, Math.floor((t - ROLLOUT_S) / HOLD_S))]!);

/** One job's rollout: stable v1 and the candidate, which fails `badRate` of its requests after `faultAt`. */
function rollout(job: string, candidate: string, badRate: number, faultAt = Number.POSITIVE_INFINITY): string[] {
  const lines: string[] = [];
  const totals: Record<string, number> = {};
  const add = (labels: string, t: number, inc: number) => {
    totals[labels] = (totals[labels] ?? 0) + inc;
    lines.push(`http_requests_total{${labels}} ${totals[labels]} ${t}`);
  };
  for (let t = BEFORE_S; t <= END_S; t += STEP_S) {
    const canary = (PER_SCRAPE * weightAt(t)) / 100;
    const stable = PER_SCRAPE - canary;
    const canaryErrors = t > faultAt ? Math.round(canary * badRate) : canary * 0.005;
    add(`version="v1",code="200",job="${job}"`, t, stable * 0.995);
    add(`version="v1",code="500",job="${job}"`, t, stable * 0.005);
    add(`version="${candidate}",code="200",job="${job}"`, t, canary - canaryErrors);
    add(`version="${candidate}",code="500",job="${job}"`, t, canaryErrors);
  }
  return lines;
}

/** One job's latency histogram: 0.5% of requests slower than 500 ms, the candidate's `slowRate` after `faultAt`. */
function histogram(job: string, candidate: string, slowRate: number, faultAt = Number.POSITIVE_INFINITY): string[] {
  const lines: string[] = [];
  const totals: Record<string, number> = {};
  const add = (series: string, t: number, inc: number) => {
    totals[series] = (totals[series] ?? 0) + inc;
    lines.push(`${series} ${totals[series]} ${t}`);
  };
  for (let t = BEFORE_S; t <= END_S; t += STEP_S) {
    const canary = (PER_SCRAPE * weightAt(t)) / 100;
    for (const [version, n, slow] of [['v1', PER_SCRAPE - canary, 0.005], [candidate, canary, t > faultAt ? slowRate : 0.005]] as const) {
      for (const le of ['0.1', '0.5', '1', '+Inf']) add(`http_request_duration_seconds_bucket{version="${version}",le="${le}",job="${job}"}`, t, le === '0.1' || le === '0.5' ? n - Math.round(n * slow) : n);
      add(`http_request_duration_seconds_count{version="${version}",job="${job}"}`, t, n);
    }
  }
  return lines;
}

let dir: string;
let prometheus: PrometheusProcess;
let client: PrometheusClient;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'cutover-ladder-'));
  const openmetrics = [
    '# TYPE http_requests counter',
    ...rollout('good', 'v2', 0),
    ...rollout('bad', 'v3', 0.03, FAULT_S),
    '# TYPE http_request_duration_seconds histogram',
    ...histogram('good', 'v2', 0),
    ...histogram('slow', 'v3', 0.05, FAULT_S),
    '# EOF',
    '',
  ].join('\n');
  await backfillOpenMetrics({ dataDir: path.join(dir, 'prom'), openmetrics });
  prometheus = await startPrometheus({ dataDir: path.join(dir, 'prom') });
  client = new PrometheusClient({ url: prometheus.url, timeoutMs: 2_000, retries: 1 });
});
afterAll(async () => {
  await prometheus?.stop();
  await rm(dir, { recursive: true, force: true });
});

const errorsGate: GateConfig = { name: 'errors', type: 'errorRate' };
const slowGate: GateConfig = { name: 'errors', type: 'latencyP99', method: 'ladder', max: 500 };
const traffic = { requestsPerSecond: PER_SCRAPE / STEP_S, errorRate: 0.005, windowSeconds: 600 };
const plan = { ...planCanary({ steps: WEIGHTS.map((weight) => ({ weight, hold: HOLD_S * 1000 })) }, ['errors']), traffic };

/** Check the gate every minute through the rollout, as the driver does, until it fails or the last hold ends. */
async function drive(job: string, candidate: string, gate: GateConfig = errorsGate): Promise<{ t: number; step: number; r: GateResult }[]> {
  const prom: PrometheusConfig = { url: prometheus.url, labels: { job } };
  const checks: { t: number; step: number; r: GateResult }[] = [];
  let memory: LadderMemory | undefined;
  for (let t = ROLLOUT_S + 60; t <= ROLLOUT_S + 3 * HOLD_S; t += 60) {
    const step = Math.min(2, Math.floor((t - ROLLOUT_S - 1) / HOLD_S));
    const start = ROLLOUT_S + step * HOLD_S;
    const r = await evaluateGate(gate, new PrometheusMetrics(client, prom), {
      service: 'patient-api', stable: 'v1', candidate, startMs: start * 1000, atMs: t * 1000,
      plan, step, holdUntilMs: (start + HOLD_S) * 1000, rolloutStartMs: ROLLOUT_S * 1000, ...(memory ? { memory: { errors: memory } } : {}),
    });
    memory = r.memory as LadderMemory;
    checks.push({ t, step, r });
    if (r.verdict === 'failed') break;
  }
  return checks;
}

describe('the error-rate ladder on backfilled series', () => {
  it('a healthy candidate: inconclusive through each hold, passed at each hold end on its margin, 0.1 points at the last', async () => {
    const checks = await drive('good', 'v2');
    expect(checks.some((c) => c.r.verdict === 'failed' || c.r.verdict === 'error')).toBe(false);
    for (const step of [0, 1, 2]) {
      const ofStep = checks.filter((c) => c.step === step);
      const end = ofStep.at(-1)!;
      expect(end.t, `step ${step}`).toBe(ROLLOUT_S + (step + 1) * HOLD_S);
      expect(ofStep.slice(0, -1).every((c) => c.r.verdict === 'inconclusive'), `step ${step} during its hold`).toBe(true);
      expect(end.r.verdict, `step ${step}: ${end.r.reason}`).toBe('passed');
    }
    const margins = [0, 1, 2].map((s) => checks.filter((c) => c.step === s).at(-1)!.r.samples!.margin!);
    expect(margins[2]).toBe(0.1);
    expect(margins[0]).toBeGreaterThan(margins[1]!);
    expect(margins[1]).toBeGreaterThan(margins[2]!);
    // During a hold the reason says why it holds, in requests.
    expect(checks[0]!.r.reason).toMatch(/^[\d,]+ of ~[\d,]+ requests needed to rule out \+[\d.]+ points$/);
    // Every step's requests: 200 a scrape at 5%, 1,000 at 25%, 2,000 at 50% (within a scrape's worth each).
    const last = checks.at(-1)!.r;
    expect(last.samples!.canary).toBeGreaterThan(0.97 * 40 * (200 + 1000 + 2000));
    expect(last.samples!.canary).toBeLessThan(1.03 * 40 * (200 + 1000 + 2000));
    expect(Math.abs(last.samples!.excessFailures!)).toBeLessThan(20);
  });

  it('a candidate failing 3% after three minutes of its 25% step is rolled back within two checks, its excess failures counted', async () => {
    const checks = await drive('bad', 'v3');
    const failed = checks.at(-1)!;
    expect(failed.r.verdict, failed.r.reason).toBe('failed');
    expect(failed.step).toBe(1);
    expect(failed.t - FAULT_S).toBeLessThanOrEqual(120);
    expect(checks.slice(0, -1).every((c) => c.r.verdict !== 'failed')).toBe(true);
    // 1,000 requests a scrape at 3% instead of 0.5%: 25 excess per scrape since the fault.
    const scrapes = (failed.t - FAULT_S) / STEP_S;
    expect(failed.r.samples!.excessFailures!).toBeGreaterThan(25 * (scrapes - 2));
    expect(failed.r.samples!.excessFailures!).toBeLessThan(25 * (scrapes + 2));
    expect(failed.r.samples!.evidence!).toBeGreaterThanOrEqual(100);
    expect(failed.r.reason).toMatch(/^v3 errors [\d.]+% vs v1 0\.5%: [\d,]+ failed requests more than v1's rate gives/);
  });

  it('baseline: history judges against stable before the rollout, says so, and still catches the regression', async () => {
    const history: GateConfig = { ...errorsGate, baseline: 'history' };
    const good = await drive('good', 'v2', history);
    for (const step of [0, 1, 2]) expect(good.filter((c) => c.step === step).at(-1)!.r.verdict, `step ${step}`).toBe('passed');
    expect(good.some((c) => c.r.verdict === 'failed')).toBe(false);
    // The 20 minutes of v1 alone before the rollout: 80 scrapes of 4,000 requests.
    expect(good[0]!.r.queries.at(-2)).toBe('sum(increase(http_requests_total{version="v1",job="good"}[3600s]))');
    expect(good.at(-1)!.r.reason).toMatch(/vs v1 0\.5% in the hour before the rollout \(3[12]\d,\d{3} requests\)/);
    const bad = await drive('bad', 'v3', history);
    expect(bad.at(-1)!.r.verdict).toBe('failed');
    expect(bad.at(-1)!.t - FAULT_S).toBeLessThanOrEqual(120);
  });

  it('method: confidence-sequence keeps the same proof at every step: the 5% step cannot pass 0.1 points', async () => {
    const prom: PrometheusConfig = { url: prometheus.url, labels: { job: 'good' } };
    const end = ROLLOUT_S + HOLD_S;
    const r = await evaluateGate({ ...errorsGate, method: 'confidence-sequence' }, new PrometheusMetrics(client, prom), { service: 'patient-api', stable: 'v1', candidate: 'v2', startMs: ROLLOUT_S * 1000, atMs: end * 1000, plan, step: 0, holdUntilMs: end * 1000 });
    expect(r.verdict).toBe('inconclusive');
    expect(r.memory).toBeUndefined();
  });
});

describe('the latency gate in its ladder form on backfilled series', () => {
  it('passes a candidate as fast as stable at every hold end, on the share of requests slower than max', async () => {
    const checks = await drive('good', 'v2', slowGate);
    expect(checks.some((c) => c.r.verdict === 'failed')).toBe(false);
    for (const step of [0, 1, 2]) expect(checks.filter((c) => c.step === step).at(-1)!.r.verdict, `step ${step}`).toBe('passed');
    expect(checks.at(-1)!.r.samples!.margin).toBe(1);
    expect(checks.at(-1)!.r.queries[1]).toBe('sum(increase(http_request_duration_seconds_bucket{version="v2",job="good",le="0.5"}[600s]))');
  });

  it('rolls back a candidate whose requests slower than 500 ms rise from 0.5% to 5% at the 25% step', async () => {
    const checks = await drive('slow', 'v3', slowGate);
    const failed = checks.at(-1)!;
    expect(failed.r.verdict, failed.r.reason).toBe('failed');
    expect(failed.step).toBe(1);
    expect(failed.t - FAULT_S).toBeLessThanOrEqual(120);
    expect(failed.r.reason).toMatch(/^v3 requests slower than 500ms [\d.]+% vs v1 0\.5%: [\d,]+ requests slower than 500ms more than v1's rate gives/);
  });
});

describe('deploy plan with the traffic Prometheus has', () => {
  it('prints each step margin from today’s traffic and warns when a step cannot reach it', async () => {
    const file = path.join(dir, 'deploy.yaml');
    await writeFile(
      file,
      `service: patient-api\nstable: v1\nversions:\n  v1: { endpoints: ["127.0.0.1:9001"] }\n  v2: { endpoints: ["127.0.0.1:9002"] }\nrouter:\n  type: none\nstate:\n  type: local\n  dir: state\nprometheus:\n  url: ${prometheus.url}\n  labels: { job: good }\ngates:\n  - { name: errors, type: errorRate }\nstrategy:\n  canary:\n    steps:\n      - { weight: 1, hold: 30m }\n      - { weight: 5, hold: 10m }\n      - { weight: 50, hold: 1m }\n      - { weight: 100 }\n`,
    );
    const r = await execa(DEPLOY, ['plan', '-f', file, '-o', 'json'], { reject: false, env: { CI: 'true' } });
    expect(r.exitCode, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { traffic: { requestsPerSecond: number }; margins: { step: number; margin: number; requestsNeeded: number; requestsExpected: number }[]; warnings: string[] };
    // The last ten minutes of the backfill: v1 served half of 4,000 requests a scrape.
    expect(out.traffic.requestsPerSecond).toBeGreaterThan(0.9 * (2000 / 15));
    expect(out.traffic.requestsPerSecond).toBeLessThan(1.1 * (2000 / 15));
    // Steps as the text counts them: the warning's step 3 is the margin of step 3.
    expect(out.margins.map((m) => m.step)).toEqual([1, 2, 3]);
    expect(out.margins[2]!.margin).toBe(0.001);
    // 50% for one minute at ~130 req/s brings ~20,000 candidate requests in all, short of what +0.1 points needs.
    expect(out.warnings.some((w) => /^warning: step 3 cannot rule out \+0\.1 points in its hold/.test(w))).toBe(true);
    const text = await execa(DEPLOY, ['plan', '-f', file], { reject: false, env: { CI: 'true' } });
    expect(text.stdout).toMatch(/errors: rules out \+0\.1 points, ~[\d,]+ candidate requests needed, ~[\d,]+ expected by the hold's end/);
    expect(text.stdout).toMatch(/traffic of v1 over the last 10m: [\d.]+ req\/s, 0\.5% errors; margins derived from it/);
  });
});
