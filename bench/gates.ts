/**
 * Error-rate gates in simulation, through the real decision code and the real default plan
 * (`planCanary()`: 1% for 30 minutes, 5%, 25% and 50% for 10 minutes each, then 100%): for each
 * total traffic and each true increase of the candidate's error rate over a 0.5% baseline, the
 * share of rollouts promoted, rolled back and paused, where, how fast, and the failed requests the
 * candidate's users got beyond stable's rate. Three gates on the same simulated traffic:
 * `ladder` (the default: `src/gates/ladder.ts`), `confidence-sequence` (the same proof at every
 * step: `src/gates/stats.ts`) and `naive` (fail when the observed increase exceeds 0.1 points
 * at any check). Not a test: it prints tables and asserts nothing.
 *
 * `node dist/bench/gates.js` prints tables; `--output json` one object per cell. `BENCH_RUNS` sets
 * the runs per cell (default 2000), `BENCH_SEED` the seed, `BENCH_RPS` a comma list of traffic.
 */
import { pathToFileURL } from 'node:url';
import { planCanary } from '../strategies/canary.js';
import { emptyMemory, ladderDecision, ladderMargins, lookSpacing, type Counts, type LadderMemory } from '../src/gates/ladder.js';
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


/** One check of a rollout's gate: the step, counts since the step's hold began, where in the hold. */
export interface RolloutCheck {
  step: number;
  canary: Counts;
  stable: Counts;
  /** Past the hold's end (ms), undefined during the hold; and the step's hold. */
  pastHoldMs?: number;
  holdMs: number;
}

/** A gate as one rollout sees it: a fresh one per rollout, called at every check. */
export type RolloutGate = () => (check: RolloutCheck) => 'passed' | 'failed' | 'inconclusive';

/** The gate names of the JSON cells. */
export type GateName = 'ladder' | 'confidence-sequence' | 'naive' | 'ladder-history';

/** Traffic of one simulated rollout. */
export interface RolloutScenario {
  /** Requests a second to the service, both versions together. */
  rps: number;
  stableRate: number;
  canaryRate: number;
  checkSeconds: number;
}

/** How one simulated rollout ended. */
export interface RolloutOutcome {
  end: 'promoted' | 'rolledBack' | 'paused';
  /** Step index where it ended (the 100% step for a promotion). */
  step: number;
  ms: number;
  /** Candidate errors beyond its requests × stable's true rate, until the end. */
  excessFailures: number;
}

const PLAN = planCanary({}, ['errors']);
const GATED = PLAN.steps.filter((s) => s.gates.length > 0);

/** The default ladder gate, with the margins the product derives from this traffic. */
export const ladderGate = (maxIncrease: number, alpha: number, traffic: { requestsPerSecond: number; errorRate: number }): RolloutGate => {
  const margins = ladderMargins(GATED, maxIncrease, alpha, traffic).map((m) => m.margin);
  return () => {
    let memory: LadderMemory = emptyMemory();
    return (c) => {
      const d = ladderDecision({ ...c, margin: margins[c.step]!, maxIncrease, alpha, lookSpacingMs: lookSpacing(c.holdMs) }, memory);
      memory = d.memory;
      return d.verdict;
    };
  };
};

/** The ladder against stable's hour before the rollout (`baseline: history`), drawn at the same rate. */
export const ladderHistoryGate = (maxIncrease: number, alpha: number, traffic: { requestsPerSecond: number; errorRate: number }, rand: () => number): RolloutGate => {
  const margins = ladderMargins(GATED, maxIncrease, alpha, traffic).map((m) => m.margin);
  return () => {
    const requests = Math.round(traffic.requestsPerSecond * 3600);
    let memory: LadderMemory = { ...emptyMemory(), reference: { requests, errors: binomial(rand, requests, traffic.errorRate) } };
    return (c) => {
      const d = ladderDecision({ ...c, margin: margins[c.step]!, maxIncrease, alpha, lookSpacingMs: lookSpacing(c.holdMs), reference: memory.reference! }, memory);
      memory = d.memory;
      return d.verdict;
    };
  };
};

/** Today's gate: the confidence sequences of the current step's window, at every check. */
export const confidenceSequenceGate = (maxIncrease: number, alpha: number): RolloutGate => () => (c) => errorRateDecision({ canary: c.canary, stable: c.stable }, { maxIncrease, alpha }).verdict;

/** Fail at any check whose observed increase (this step's window) exceeds `maxIncrease`. */
export const naiveRolloutGate = (maxIncrease: number): RolloutGate => () => (c) => naiveGate(maxIncrease)({ canary: c.canary, stable: c.stable });

/**
 * One rollout of the default plan as the engine drives it: every check interval both versions
 * serve their share (requests split at random by weight), the gate is checked, a failure rolls
 * back at once, and once a step's hold is over it moves on when the gate passed, or keeps
 * checking until the plan's inconclusive limit and then pauses.
 */
export function simulateRollout(s: RolloutScenario, gate: RolloutGate, rand: () => number): RolloutOutcome {
  const check = gate();
  let ms = 0;
  let excess = 0;
  for (const step of PLAN.steps) {
    if (step.gates.length === 0) return { end: 'promoted', step: step.index, ms, excessFailures: excess };
    const canary = { requests: 0, errors: 0 };
    const stable = { requests: 0, errors: 0 };
    const perCheck = Math.round(s.rps * s.checkSeconds);
    for (let t = s.checkSeconds * 1000; ; t += s.checkSeconds * 1000) {
      const nc = binomial(rand, perCheck, step.weight / 100);
      const ec = binomial(rand, nc, s.canaryRate);
      canary.requests += nc;
      canary.errors += ec;
      stable.requests += perCheck - nc;
      stable.errors += binomial(rand, perCheck - nc, s.stableRate);
      excess += ec - nc * s.stableRate;
      const over = t >= step.holdMs;
      const verdict = check({ step: step.index, canary, stable, holdMs: step.holdMs, ...(over ? { pastHoldMs: t - step.holdMs } : {}) });
      if (verdict === 'failed') return { end: 'rolledBack', step: step.index, ms: ms + t, excessFailures: excess };
      if (over && verdict === 'passed') {
        ms += t;
        break;
      }
      if (t >= step.holdMs + PLAN.inconclusive.afterMs) return { end: 'paused', step: step.index, ms: ms + t, excessFailures: excess };
    }
  }
  return { end: 'promoted', step: PLAN.steps.length - 1, ms, excessFailures: excess };
}

/** One cell of the table: a gate at a traffic level under a scenario. */
export interface Cell {
  gate: GateName;
  rps: number;
  scenario: string;
  runs: number;
  promoted: number;
  rolledBack: number;
  paused: number;
  medianMs: number;
  p95Ms: number;
  meanExcessFailures: number;
  /** Where rollbacks and pauses happened: share of runs by step weight. */
  rolledBackAt: Record<string, number>;
  pausedAt: Record<string, number>;
  /** Share of runs promoted within the sum of the holds + 10%. */
  promotedInTime: number;
}

export const SCENARIOS: readonly { name: string; increase: number }[] = [
  { name: 'healthy', increase: 0 },
  { name: '+0.1', increase: 0.001 },
  { name: '+0.5', increase: 0.005 },
  { name: '+1', increase: 0.01 },
  { name: '+5', increase: 0.05 },
];

/** Run one cell. */
export function runCell(gateName: GateName, gate: RolloutGate, rps: number, scenario: { name: string; increase: number }, runs: number, seed: number, baseline = 0.005): Cell {
  const rand = mulberry32(seed);
  const outcomes = Array.from({ length: runs }, () => simulateRollout({ rps, stableRate: baseline, canaryRate: baseline + scenario.increase, checkSeconds: 10 }, gate, rand));
  const share = (f: (o: RolloutOutcome) => boolean) => outcomes.filter(f).length / runs;
  const byStep = (end: RolloutOutcome['end']) => {
    const out: Record<string, number> = {};
    for (const o of outcomes) if (o.end === end) out[`${PLAN.steps[o.step]!.weight}%`] = (out[`${PLAN.steps[o.step]!.weight}%`] ?? 0) + 1 / runs;
    return out;
  };
  const holds = PLAN.steps.reduce((t, s) => t + s.holdMs, 0);
  return {
    gate: gateName,
    rps,
    scenario: scenario.name,
    runs,
    promoted: share((o) => o.end === 'promoted'),
    rolledBack: share((o) => o.end === 'rolledBack'),
    paused: share((o) => o.end === 'paused'),
    medianMs: quantile(outcomes.map((o) => o.ms), 0.5),
    p95Ms: quantile(outcomes.map((o) => o.ms), 0.95),
    meanExcessFailures: +(outcomes.reduce((t, o) => t + o.excessFailures, 0) / runs).toFixed(1),
    rolledBackAt: byStep('rolledBack'),
    pausedAt: byStep('paused'),
    promotedInTime: share((o) => o.end === 'promoted' && o.ms <= holds * 1.1),
  };
}

/**
 * A plain Wald SPRT of 0.5% against 1.5% on the candidate's own requests, stable's rate taken as
 * known, α = β = 1%, checked every 10 s: the reference a gate that must also estimate stable's
 * rate is measured against. Returns the seconds to a rollback of each run (∞ when not caught).
 */
export function sprtReference(canaryPerSecond: number, p0: number, p1: number, alpha: number, runs: number, seed: number, maxSeconds = 1800): number[] {
  const rand = mulberry32(seed);
  const upper = Math.log((1 - alpha) / alpha);
  const lower = Math.log(alpha / (1 - alpha));
  const perError = Math.log(p1 / p0);
  const perSuccess = Math.log((1 - p1) / (1 - p0));
  return Array.from({ length: runs }, () => {
    let llr = 0;
    for (let t = 10; t <= maxSeconds; t += 10) {
      const n = canaryPerSecond * 10;
      const e = binomial(rand, n, p1);
      llr += e * perError + (n - e) * perSuccess;
      if (llr >= upper) return t;
      if (llr <= lower) return Number.POSITIVE_INFINITY;
    }
    return Number.POSITIVE_INFINITY;
  });
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
};
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const minutes = (ms: number) => (ms >= 600_000 ? `${(ms / 60_000).toFixed(1)} min` : `${Math.round(ms / 1000)} s`);
const where = (at: Record<string, number>) =>
  Object.entries(at)
    .map(([w, x]) => `${w} ${pct(x)}`)
    .join(', ');

function main(): void {
  const json = process.argv.includes('--output') && process.argv[process.argv.indexOf('--output') + 1] === 'json';
  const runs = Number(process.env.BENCH_RUNS ?? 2000);
  const seed = Number(process.env.BENCH_SEED ?? 20261129);
  const rpsList = (process.env.BENCH_RPS ?? '100,300,1000,10000').split(',').map(Number);
  const maxIncrease = 0.001;
  const alpha = 0.01;
  const started = performance.now();
  const gates: [GateName, (rps: number) => RolloutGate][] = [
    ['ladder', (rps) => ladderGate(maxIncrease, alpha, { requestsPerSecond: rps, errorRate: 0.005 })],
    ['confidence-sequence', () => confidenceSequenceGate(maxIncrease, alpha)],
    ['naive', () => naiveRolloutGate(maxIncrease)],
    // Text only: the JSON cells keep the three gates they promise.
    ...(json ? [] : [['ladder-history', (rps: number) => ladderHistoryGate(maxIncrease, alpha, { requestsPerSecond: rps, errorRate: 0.005 }, mulberry32(seed ^ rps))] as [GateName, (rps: number) => RolloutGate]]),
  ];
  if (!json) {
    console.log('error-rate gates over the default ladder (1% 30 min, 5%, 25%, 50% 10 min each, 100%), checked every 10 s,');
    console.log(`baseline 0.5% errors, 0.1-point rule, α = 1%; ${runs} rollouts per cell, seed ${seed}\n`);
  }
  const only = process.env.BENCH_GATES?.split(',');
  for (const [name, make] of gates.filter(([n]) => !only || only.includes(n))) {
    if (!json) {
      console.log(`gate: ${name}`);
      console.log(`${'req/s'.padStart(6)} ${'scenario'.padEnd(8)} ${'promoted'.padStart(9)} ${'in time'.padStart(8)} ${'rolled back'.padStart(11)} ${'paused'.padStart(7)} ${'median'.padStart(9)} ${'p95'.padStart(9)} ${'excess'.padStart(7)}  where`);
    }
    for (const rps of rpsList) {
      for (const [i, scenario] of SCENARIOS.entries()) {
        if (process.env.BENCH_SCENARIOS && !process.env.BENCH_SCENARIOS.split(',').includes(scenario.name)) continue;
        const cell = runCell(name, make(rps), rps, scenario, runs, seed + i * 7919 + rps);
        if (json) {
          const { rolledBackAt: _r, pausedAt: _p, promotedInTime: _t, ...row } = cell;
          console.log(JSON.stringify(row));
          continue;
        }
        const at = [cell.rolledBack ? `rolled back at ${where(cell.rolledBackAt)}` : '', cell.paused ? `paused at ${where(cell.pausedAt)}` : ''].filter(Boolean).join('; ');
        console.log(
          `${String(rps).padStart(6)} ${scenario.name.padEnd(8)} ${pct(cell.promoted).padStart(9)} ${pct(cell.promotedInTime).padStart(8)} ${pct(cell.rolledBack).padStart(11)} ${pct(cell.paused).padStart(7)} ${minutes(cell.medianMs).padStart(9)} ${minutes(cell.p95Ms).padStart(9)} ${String(cell.meanExcessFailures).padStart(7)}  ${at}`,
        );
      }
    }
    if (!json) console.log('');
  }
  if (json) return;
  console.log('ladder-history: baseline: history, stable\'s hour before the rollout as the reference. The simulated rate never moves,');
  console.log('which is exactly what that option assumes; a real baseline that drifts makes it wrong in the direction of the drift.\n');
  console.log('columns: promoted / in time (within the sum of the holds + 10%) / rolled back / paused as shares of runs;');
  console.log('median and p95 time to the end of the rollout (promotion, rollback or pause); mean excess failed requests.\n');

  const ref = sprtReference(10, 0.005, 0.015, alpha, runs, seed);
  console.log('reference, +1 point at 10 canary req/s (1% of 1,000 req/s), stable\'s 0.5% known:');
  console.log(`  Wald SPRT 0.5% vs 1.5% (α = β = 1%): median ${quantile(ref, 0.5)} s, p95 ${quantile(ref, 0.95)} s`);
  let n = 10;
  while (neymanPearsonBound(n, 0.005, 0.015, alpha).randomizedPower < 0.5) n += 10;
  console.log(`  no test with ≤ 1% false alarms catches half of the runs before ${n} requests (${n / 10} s): the Neyman–Pearson bound`);
  console.log(`\nsimulated in ${((performance.now() - started) / 1000).toFixed(1)} s (node ${process.version})`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
