/**
 * Error-rate gate quality in simulation: how often a healthy canary is wrongly rolled back, how
 * soon a bad one is caught, and how often a healthy one earns a pass, for the confidence-sequence
 * gate (`src/gates/stats.ts`) beside a naive threshold gate, on the same simulated traffic.
 * Not a test: it prints a table and asserts nothing. Run after `tsc -p tsconfig.json` with
 * `node dist/bench/gates.js`; `BENCH_RUNS` sets the runs per scenario (default 1000), `BENCH_SEED`
 * the seed. Also prints the Neyman–Pearson bound on detection within 60 s, so the table's
 * "caught within 60 s" can be read against what any test could do, and the comparison of mixing
 * priors behind `DEFAULT_PRIOR` (`BENCH_PRIOR_RUNS` runs each, default 600).
 */
import { pathToFileURL } from 'node:url';
import { errorRateDecision, lgamma, type ErrorRateEvidence } from '../src/gates/stats.js';

/** A gate under test: evidence since the hold began → verdict. */
export type SimulatedGate = (evidence: ErrorRateEvidence) => 'passed' | 'failed' | 'inconclusive';

/** Traffic of one simulated hold. */
export interface HoldScenario {
  canaryRate: number;
  stableRate: number;
  /** Requests each version serves between two checks. */
  canaryPerCheck: number;
  stablePerCheck: number;
  checks: number;
  checkSeconds: number;
}

/** What one gate did over one simulated hold. */
export interface HoldOutcome {
  /** Seconds into the hold of the first `failed` (the rollback), if any. */
  failedAt?: number;
  /** Seconds into the hold of the first `passed`, if any (before a rollback). */
  firstPassedAt?: number;
  /** The verdict at the last check, or `failed` once rolled back. */
  final: 'passed' | 'failed' | 'inconclusive';
}

/** mulberry32: a small, fast, seedable PRNG, so every figure can be reproduced exactly. */
export function mulberry32(seed: number): () => number {
  let t = seed >>> 0;
  return () => {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A Binomial(n, p) draw. Exact by CDF inversion while n·p is moderate (cost about n·p steps,
 * and the per-check error counts here have means of a few dozen at most); beyond that a
 * rounded normal draw, whose error is negligible at such means.
 */
export function binomial(rand: () => number, n: number, p: number): number {
  if (p <= 0 || n <= 0) return 0;
  if (p >= 1) return n;
  if (p > 0.5) return n - binomial(rand, n, 1 - p);
  const mean = n * p;
  if (mean > 500) {
    const z = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
    return Math.min(n, Math.max(0, Math.round(mean + z * Math.sqrt(mean * (1 - p)))));
  }
  const u = rand();
  const odds = p / (1 - p);
  let k = 0;
  let pk = Math.exp(n * Math.log1p(-p));
  let cdf = pk;
  while (u > cdf && k < n) {
    pk *= ((n - k) / (k + 1)) * odds;
    k++;
    cdf += pk;
  }
  return k;
}

/**
 * One hold: both versions serve traffic, every gate is checked after each interval on the same
 * cumulative counts, and a gate that fails stops there (its rollback ends the hold for it).
 */
export function simulateHold(scenario: HoldScenario, gates: SimulatedGate[], rand: () => number): HoldOutcome[] {
  const outcomes: HoldOutcome[] = gates.map(() => ({ final: 'inconclusive' }));
  const canary = { requests: 0, errors: 0 };
  const stable = { requests: 0, errors: 0 };
  for (let check = 1; check <= scenario.checks; check++) {
    canary.requests += scenario.canaryPerCheck;
    canary.errors += binomial(rand, scenario.canaryPerCheck, scenario.canaryRate);
    stable.requests += scenario.stablePerCheck;
    stable.errors += binomial(rand, scenario.stablePerCheck, scenario.stableRate);
    const at = check * scenario.checkSeconds;
    let running = 0;
    gates.forEach((gate, i) => {
      const o = outcomes[i]!;
      if (o.failedAt !== undefined) return;
      running++;
      o.final = gate({ canary, stable });
      if (o.final === 'failed') o.failedAt = at;
      else if (o.final === 'passed') o.firstPassedAt ??= at;
    });
    if (running === 0) break;
  }
  return outcomes;
}

/** The gate as shipped: confidence sequences, 0.1 points allowed, α = 1%. */
export const sequenceGate = (maxIncrease: number, alpha = 0.01): SimulatedGate => (e) => errorRateDecision(e, { maxIncrease, alpha }).verdict;

/** What a threshold on observed rates does: fail as soon as p̂_c − p̂_s > δ, pass otherwise. */
export const naiveGate = (maxIncrease: number): SimulatedGate => (e) => {
  if (e.canary.requests === 0) return 'inconclusive';
  const diff = e.canary.errors / e.canary.requests - (e.stable.requests ? e.stable.errors / e.stable.requests : 0);
  return diff > maxIncrease ? 'failed' : 'passed';
};

/** log of the Binomial(n, p) probability of k. */
function logBinomialPmf(k: number, n: number, p: number): number {
  return lgamma(n + 1) - lgamma(k + 1) - lgamma(n - k + 1) + k * Math.log(p) + (n - k) * Math.log1p(-p);
}

/**
 * The most powerful level-α test of p0 against p1 > p0 after n trials (Neyman–Pearson: reject
 * for many errors), without and with randomization at the boundary count. A sequential test
 * whose false alarms over the hold are ≤ α has a "failed by n" event of probability ≤ α under p0,
 * so its chance of catching p1 by n is at most the randomized power.
 */
export function neymanPearsonBound(n: number, p0: number, p1: number, alpha: number): { critical: number; size: number; power: number; randomizedPower: number } {
  const pmf0 = Array.from({ length: n + 1 }, (_, k) => Math.exp(logBinomialPmf(k, n, p0)));
  const pmf1 = Array.from({ length: n + 1 }, (_, k) => Math.exp(logBinomialPmf(k, n, p1)));
  let critical = n + 1;
  let size = 0;
  while (critical > 0 && size + pmf0[critical - 1]! <= alpha) size += pmf0[--critical]!;
  const power = pmf1.slice(critical).reduce((x, y) => x + y, 0);
  const boundary = critical - 1;
  const gamma = boundary >= 0 ? (alpha - size) / pmf0[boundary]! : 0;
  return { critical, size, power, randomizedPower: power + (boundary >= 0 ? gamma * pmf1[boundary]! : 0) };
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
};
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const secs = (x: number) => (Number.isFinite(x) ? `${x} s` : 'not caught');

function main(): void {
  const runs = Number(process.env.BENCH_RUNS ?? 1000);
  const seed = Number(process.env.BENCH_SEED ?? 20240601);
  const maxIncrease = 0.001;
  const base = { stableRate: 0.005, canaryPerCheck: 50, stablePerCheck: 4950, checks: 360, checkSeconds: 5 };
  const gates = [sequenceGate(maxIncrease), naiveGate(maxIncrease)];
  const names = ['confidence sequence', 'naive threshold'];
  const started = performance.now();
  const run = (canaryRate: number, salt: number) => {
    const rand = mulberry32(seed ^ salt);
    const all = Array.from({ length: runs }, () => simulateHold({ ...base, canaryRate }, gates, rand));
    return gates.map((_, g) => all.map((o) => o[g]!));
  };
  const healthy = run(0.005, 0x1111);
  const plusOne = run(0.015, 0x2222);
  const plusTenth = run(0.006, 0x3333);

  const share = (os: HoldOutcome[], f: (o: HoldOutcome) => boolean) => os.filter(f).length / os.length;
  const catchTimes = (os: HoldOutcome[]) => os.map((o) => o.failedAt ?? Infinity);
  const rows: [string, (os: HoldOutcome[][][], g: number) => string][] = [
    ['healthy: false rollbacks', (os, g) => pct(share(os[0]![g]!, (o) => o.failedAt !== undefined))],
    ['healthy: passed at end of hold', (os, g) => pct(share(os[0]![g]!, (o) => o.final === 'passed'))],
    ['healthy: median time to first pass', (os, g) => secs(quantile(os[0]![g]!.map((o) => o.firstPassedAt ?? Infinity), 0.5)).replace('not caught', 'never')],
  ];
  for (const [label, i] of [['+1 pt', 1], ['+0.1 pt', 2]] as const) {
    rows.push(
      [`${label}: caught`, (os, g) => pct(share(os[i]![g]!, (o) => o.failedAt !== undefined))],
      [`${label}: median time to catch`, (os, g) => secs(quantile(catchTimes(os[i]![g]!), 0.5))],
      [`${label}: p95 time to catch`, (os, g) => secs(quantile(catchTimes(os[i]![g]!), 0.95))],
      [`${label}: caught within 60 s`, (os, g) => pct(share(os[i]![g]!, (o) => (o.failedAt ?? Infinity) <= 60))],
      [`${label}: passed at end of hold`, (os, g) => pct(share(os[i]![g]!, (o) => o.final === 'passed'))],
    );
  }
  const elapsed = (performance.now() - started) / 1000;
  const outcomes = [healthy, plusOne, plusTenth];

  console.log('error-rate gate in simulation: 1000 req/s, canary at 1% (50 requests per check), stable at 0.5% errors,');
  console.log(`checked every 5 s over a 30-minute hold; allowed increase 0.1 points, α = 1%; ${runs} runs per scenario, seed ${seed}\n`);
  console.log(`${''.padEnd(36)} ${names.map((n) => n.padStart(20)).join(' ')}`);
  for (const [label, cell] of rows) console.log(`${label.padEnd(36)} ${names.map((_, g) => cell(outcomes, g).padStart(20)).join(' ')}`);
  console.log('\n(+0.1 pt is exactly the allowed increase: neither verdict is owed there, and a sound gate fails or');
  console.log(' passes it with probability ≤ α; it shows what the naive gate does at its own threshold.)');

  // What the gate itself would report for a healthy canary at the end of the hold, at expected counts.
  const end = { canary: { requests: 50 * 360, errors: 0.005 * 50 * 360 }, stable: { requests: 4950 * 360, errors: 0.005 * 4950 * 360 } };
  const atEnd = errorRateDecision(end, { maxIncrease, alpha: 0.01 });
  console.log(`\na healthy canary at expected counts after the hold (${end.canary.requests} canary requests): ${atEnd.verdict},`);
  console.log(`  it cannot yet rule out ${(100 * atEnd.detectableIncrease).toFixed(3)} points above the observed rate; about ${atEnd.requestsNeeded} canary requests to pass`);

  const np = neymanPearsonBound(600, 0.005, 0.015, 0.01);
  console.log('\nbest possible within 60 s (600 canary requests), for ANY test with ≤ 1% false alarms, stable rate known:');
  console.log(`  Neyman–Pearson test of 0.5% vs 1.5%: fail at ≥ ${np.critical} errors (size ${pct(np.size)}), power ${pct(np.power)};`);
  console.log(`  randomized at the boundary to size exactly 1%: power ${pct(np.randomizedPower)}`);
  console.log(`\nsimulated in ${elapsed.toFixed(1)} s (node ${process.version})`);
  priorComparison(Number(process.env.BENCH_PRIOR_RUNS ?? 600), seed);
}

/**
 * Median seconds to catch +1 point over several baselines for several mixing priors, on the
 * same simulated traffic for each prior: the evidence for `DEFAULT_PRIOR`.
 */
function priorComparison(runs: number, seed: number): void {
  const started = performance.now();
  const priors = [[1, 1], [1, 19], [1, 49], [1, 99], [2, 198]] as const;
  const baselines = [0.001, 0.005, 0.025, 0.05];
  console.log(`\nmixing prior: median time to catch +1 point (10 canary, 990 stable req/s; ${runs} runs each)\n`);
  console.log(`${'baseline'.padEnd(14)} ${baselines.map((b) => pct(b).padStart(12)).join(' ')}`);
  for (const [a, b] of priors) {
    const gate: SimulatedGate = (e) => errorRateDecision(e, { maxIncrease: 0.001, alpha: 0.01, prior: { a, b } }).verdict;
    const cells = baselines.map((stableRate, i) => {
      const rand = mulberry32(seed + i);
      const scenario = { stableRate, canaryRate: stableRate + 0.01, canaryPerCheck: 50, stablePerCheck: 4950, checks: 360, checkSeconds: 5 };
      const times = Array.from({ length: runs }, () => simulateHold(scenario, [gate], rand)[0]!.failedAt ?? Infinity);
      return secs(quantile(times, 0.5)).replace('not caught', '> 30 min');
    });
    console.log(`${`Beta(${a}, ${b})`.padEnd(14)} ${cells.map((c) => c.padStart(12)).join(' ')}`);
  }
  console.log(`\nprior comparison in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
