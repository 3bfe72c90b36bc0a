/**
 * Every gate's value and verdict on exact series backfilled into a real Prometheus: a healthy
 * hour, then an incident in the canary ten minutes before the end. Covers no data, NaN, a
 * counter reset, a label value that needs escaping, `deploy plan` catching a PromQL typo, and
 * `deploy gates backtest` finding the incident.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GateConfig, PrometheusConfig } from '../../src/config/schema.js';
import { evaluateGate } from '../../src/gates/evaluate.js';
import { PrometheusClient } from '../../src/metrics/prometheus/client.js';
import { PrometheusMetrics } from '../../src/metrics/prometheus/metrics.js';
import { backfillOpenMetrics, startPrometheus, type PrometheusProcess } from '../../src/sandbox/prometheus-process.js';
import { DEPLOY, jsonLines } from '../helpers/sandbox.js';

const STEP_S = 15;
const END_S = Math.floor(Date.now() / 1000 / STEP_S) * STEP_S - 2 * STEP_S;
const START_S = END_S - 3600;
const INCIDENT_S = END_S - 600;
const RESET_S = END_S - 120;
const JOB = 'patient"api';
const LABELS = 'job="patient\\"api"';
const BUCKETS = ['0.1', '0.25', '0.5', '1', '+Inf'];

/** Lines of a counter that grows by `inc(t)` every 15 s (restarting from 0 at `resetAt`). */
function counter(name: string, labels: string, inc: (t: number) => number, resetAt?: number): string[] {
  const lines: string[] = [];
  let value = 0;
  for (let t = START_S; t <= END_S; t += STEP_S) {
    value = t === resetAt ? inc(t) : value + inc(t);
    lines.push(`${name}{${labels}} ${value} ${t}`);
  }
  return lines;
}

function openMetrics(): string {
  const bad = (t: number) => t > INCIDENT_S;
  const lines = [
    '# TYPE http_requests counter',
    // stable v1: 2,000 requests per 15 s at 0.5% errors; its 200s counter restarts 2 minutes before the end
    ...counter('http_requests_total', `version="v1",code="200",${LABELS}`, () => 1990, RESET_S),
    ...counter('http_requests_total', `version="v1",code="500",${LABELS}`, () => 10),
    // canary v2: 200 per 15 s at 0.5%, then 10% errors after the incident
    ...counter('http_requests_total', `version="v2",code="200",${LABELS}`, (t) => (bad(t) ? 180 : 199)),
    ...counter('http_requests_total', `version="v2",code="500",${LABELS}`, (t) => (bad(t) ? 20 : 1)),
    // v4 carries an org label: acme (small) fails 20% of its requests, bravo (large) is healthy
    ...counter('http_requests_total', `version="v4",org="acme",code="200",${LABELS}`, () => 16),
    ...counter('http_requests_total', `version="v4",org="acme",code="500",${LABELS}`, () => 4),
    ...counter('http_requests_total', `version="v4",org="bravo",code="200",${LABELS}`, () => 1990),
    ...counter('http_requests_total', `version="v4",org="bravo",code="500",${LABELS}`, () => 10),
    '# TYPE http_request_duration_seconds histogram',
  ];
  // v1 always fast (all under 100 ms); v2 fast, then 5% of requests between 0.5 s and 1 s.
  for (const [version, slowShare] of [['v1', () => 0], ['v2', (t: number) => (bad(t) ? 0.05 : 0)]] as const) {
    const n = version === 'v1' ? 2000 : 200;
    for (const le of BUCKETS) {
      const inc = (t: number) => (le === '1' || le === '+Inf' ? n : Math.round(n * (1 - slowShare(t))));
      lines.push(...counter('http_request_duration_seconds_bucket', `version="${version}",le="${le}",${LABELS}`, inc));
    }
    lines.push(...counter('http_request_duration_seconds_count', `version="${version}",${LABELS}`, () => n));
  }
  return `${lines.join('\n')}\n# EOF\n`;
}

let dir: string;
let prometheus: PrometheusProcess;
let provider: PrometheusMetrics;
const prom: PrometheusConfig = { url: '', labels: { job: JOB } };

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'cutover-gates-'));
  await backfillOpenMetrics({ dataDir: path.join(dir, 'prom'), openmetrics: openMetrics() });
  prometheus = await startPrometheus({ dataDir: path.join(dir, 'prom') });
  prom.url = prometheus.url;
  provider = new PrometheusMetrics(new PrometheusClient({ url: prometheus.url, timeoutMs: 2_000, retries: 1 }), prom);
});
afterAll(async () => {
  await prometheus?.stop();
  await rm(dir, { recursive: true, force: true });
});

const at = (endS: number, minutes: number) => ({ service: 'patient-api', stable: 'v1', candidate: 'v2', startMs: (endS - minutes * 60) * 1000, atMs: endS * 1000 });
const errors = (extra: Partial<Extract<GateConfig, { type: 'errorRate' }>> = {}): GateConfig => ({ name: 'errors', type: 'errorRate', ...extra });
const latency: GateConfig = { name: 'p99', type: 'latencyP99', max: 500, minRequests: 100 };

describe('gates on backfilled series', () => {
  it('error rate: fails during the incident, with values and sample sizes', async () => {
    const r = await evaluateGate(errors(), provider, at(END_S, 5));
    expect(r.verdict).toBe('failed');
    expect(r.value).toBeCloseTo(10, 0);
    expect(r.baseline).toBeCloseTo(0.5, 1);
    expect(r.samples?.canary).toBeGreaterThan(3500);
    expect(r.queries[0]).toBe(`sum(increase(http_requests_total{version="v2",job="patient\\"api"}[300s]))`);
  });

  it('error rate: before the incident, passes with a 1-point allowance and stays inconclusive at 0.1 points', async () => {
    const wide = await evaluateGate(errors({ maxIncrease: 0.01 }), provider, at(INCIDENT_S - 60, 20));
    expect(wide.verdict).toBe('passed');
    const strict = await evaluateGate(errors(), provider, at(INCIDENT_S - 60, 20));
    expect(strict.verdict).toBe('inconclusive');
    expect(strict.samples!.needed!).toBeGreaterThan(strict.samples!.canary);
    expect(strict.samples!.detectableIncrease!).toBeGreaterThan(0.1);
  });

  it('error rate: counts stable correctly across its counter reset', async () => {
    const r = await evaluateGate(errors({ maxIncrease: 0.2 }), provider, at(END_S, 5));
    // 20 scrapes × 2,000 requests, the reset included: extrapolation keeps it within a step.
    expect(r.samples?.stable).toBeGreaterThan(38_000);
    expect(r.samples?.stable).toBeLessThan(42_500);
  });

  it('per org: one org failing is caught even when the cohort as a whole passes', async () => {
    const whole = await evaluateGate(errors({ maxIncrease: 0.01 }), provider, { ...at(END_S, 10), candidate: 'v4' });
    expect(whole.verdict).toBe('passed');
    const perOrg = await evaluateGate(errors({ maxIncrease: 0.01, perOrg: true }), provider, { ...at(END_S, 10), candidate: 'v4' });
    expect(perOrg.verdict).toBe('failed');
    expect(perOrg.reason).toMatch(/^org acme: errors 20% \(\d+\/\d+\)/);
    expect(perOrg.queries.at(-2)).toBe(`sum by (org) (increase(http_requests_total{version="v4",job="patient\\"api"}[600s]))`);
  });

  it('no data is inconclusive, never a pass', async () => {
    const r = await evaluateGate(errors(), provider, { ...at(END_S, 5), candidate: 'v3' });
    expect(r.verdict).toBe('inconclusive');
    expect(r.reason).toMatch(/no requests to v3/);
  });

  it('latency P99: passes before the incident, fails during it', async () => {
    const before = await evaluateGate(latency, provider, at(INCIDENT_S - 60, 10));
    expect(before.verdict).toBe('passed');
    expect(before.value).toBeLessThanOrEqual(100);
    // Every answer within 100 ms: the bound alone settles the 500 ms limit.
    expect(before).toMatchObject({ bucket: { lower: 0, upper: 100 }, reason: 'v2 P99 ≤ 100ms ≤ 500ms' });
    const during = await evaluateGate(latency, provider, at(END_S, 5));
    expect(during.verdict).toBe('failed');
    expect(during.value).toBeGreaterThan(500);
    expect(during.bucket).toEqual({ lower: 500, upper: 1000 });
    expect(during.reason).toMatch(/^v2 P99 ≤ 1000ms \(estimated [\d.]+ms\) > 500ms$/);
  });

  it('a custom query: NaN is inconclusive, a value is compared with the threshold', async () => {
    const nan = await evaluateGate({ name: 'q', type: 'query', query: 'sum(http_requests_total{version="none"}) / 0 * 0 + (0/0)', threshold: 1, direction: 'below' }, provider, at(END_S, 5));
    expect(nan.verdict).toBe('inconclusive');
    expect(nan.reason).toMatch(/NaN|no data/);
    const ratio = `sum(increase(http_requests_total{version="{{version}}",code="500"}[{{window}}])) / sum(increase(http_requests_total{version="{{version}}"}[{{window}}]))`;
    const r = await evaluateGate({ name: 'q', type: 'query', query: ratio, threshold: 0.02, direction: 'below' }, provider, at(END_S, 5));
    expect(r.verdict).toBe('failed');
    expect(r.value).toBeCloseTo(0.1, 2);
  });
});

describe('the CLI on backfilled series', () => {
  async function config(gates: string): Promise<string> {
    const file = path.join(dir, `deploy-${Math.random().toString(36).slice(2)}.yaml`);
    await writeFile(
      file,
      `service: patient-api\nstable: v1\nversions:\n  v1: { endpoints: ["127.0.0.1:9001"] }\n  v2: { endpoints: ["127.0.0.1:9002"] }\nrouter:\n  type: none\nstate:\n  type: local\n  dir: state-${path.basename(file, '.yaml')}\nprometheus:\n  url: ${prometheus.url}\n  labels: { job: 'patient"api' }\ngates:\n${gates}`,
    );
    return file;
  }

  it('deploy plan sends every query once and names a gate whose PromQL is wrong (exit 2)', async () => {
    const file = await config(`  - name: broken\n    type: query\n    query: sum(rate(http_requests_total[{{window}}])\n    threshold: 1\n    direction: below\n`);
    const r = await execa(DEPLOY, ['plan', '-f', file], { reject: false, env: { CI: 'true' } });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/gate broken: Prometheus rejected its query: bad_data/);
    const ok = await execa(DEPLOY, ['plan', '-f', await config(`  - name: errors\n    type: errorRate\n`)], { reject: false, env: { CI: 'true' } });
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/every query accepted/);
  });

  it('deploy gates backtest finds the incident, and nothing before it', async () => {
    const file = await config(`  - name: errors\n    type: errorRate\n  - name: p99\n    type: latencyP99\n    max: 500ms\n`);
    const from = new Date((END_S - 1200) * 1000).toISOString();
    const to = new Date(END_S * 1000).toISOString();
    const r = await execa(DEPLOY, ['gates', 'backtest', '--from', from, '--to', to, '--candidate', 'v2', '--interval', '30s', '-o', 'json', '-f', file], { reject: false, env: { CI: 'true' } });
    expect(r.exitCode, r.stderr).toBe(0);
    const results = jsonLines(r.stdout) as { gate: string; firstFailedAt?: string; points: { at: string; verdict: string; reason: string; bucket?: unknown }[] }[];
    // The replayed P99 comes with its bucket as a live check's does.
    const failedP99 = results.find((g) => g.gate === 'p99')!.points.find((p) => p.verdict === 'failed')!;
    expect(failedP99.bucket).toEqual({ lower: 500, upper: 1000 });
    expect(failedP99.reason).toMatch(/^P99 ≤ 1000ms \(estimated [\d.]+ms\) vs 500ms$/);
    for (const g of results) {
      expect(g.firstFailedAt, g.gate).toBeDefined();
      const failedS = Date.parse(g.firstFailedAt!) / 1000;
      expect(failedS, g.gate).toBeGreaterThan(INCIDENT_S);
      expect(failedS, g.gate).toBeLessThanOrEqual(INCIDENT_S + 300);
      expect(g.points.filter((p) => Date.parse(p.at) / 1000 <= INCIDENT_S).every((p) => p.verdict !== 'failed')).toBe(true);
    }
    const text = await execa(DEPLOY, ['gates', 'backtest', '--from', from, '--to', to, '--candidate', 'v2', '-f', file], { reject: false, env: { CI: 'true' } });
    expect(text.stdout).toMatch(/errors: would have failed at/);
  });
});
