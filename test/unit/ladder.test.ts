import { describe, expect, it } from 'vitest';
import {
  ALTERNATIVES, emptyMemory, ladderDecision, ladderMargins, lookAlpha, lookSpacing, marginShown, mixtureEvidence, normalQuantile, normalUpperTail, updateWealthAgainst, planMargins, requestsForMargin, stratifiedIncrease, updateWealth,
  type LadderMemory,
} from '../../src/gates/ladder.js';
import { lgamma } from '../../src/gates/stats.js';
import { planCanary } from '../../strategies/canary.js';
import { ladderGate, runCell, SCENARIOS } from '../../bench/gates.js';

const logPmf = (k: number, n: number, p: number) => lgamma(n + 1) - lgamma(k + 1) - lgamma(n - k + 1) + k * Math.log(p) + (n - k) * Math.log1p(-p);

describe('normal quantiles', () => {
  it('has the upper tail at known points', () => {
    expect(normalUpperTail(0)).toBeCloseTo(0.5, 15);
    expect(normalUpperTail(1.959963984540054)).toBeCloseTo(0.025, 14);
    expect(normalUpperTail(5) / 2.866515718791939e-7).toBeCloseTo(1, 12);
    expect(normalUpperTail(-1) + normalUpperTail(1)).toBeCloseTo(1, 15);
  });

  it.each([
    [0.5, 0],
    [0.05, 1.6448536269514722],
    [0.01, 2.3263478740408408],
    [0.001, 3.090232306167813],
    [1e-6, 4.753424308822899],
    [0.975, -1.959963984540054],
  ])('z for an upper tail of %d', (p, z) => {
    expect(normalQuantile(p)).toBeCloseTo(z, 10);
  });
});

describe('the failure test', () => {
  it('multiplies each alternative by the exact binomial likelihood ratio of how errors split', () => {
    const before = { requests: 99_998, errors: 499 }; // stable's rate from earlier intervals: 500/100,000
    const canary = { requests: 100, errors: 3 };
    const stable = { requests: 9_900, errors: 50 };
    const next = updateWealth(ALTERNATIVES.map(() => 0), canary, stable, before, 0.001);
    const E = canary.errors + stable.errors;
    const pi0 = canary.requests / (canary.requests + stable.requests);
    ALTERNATIVES.forEach((a, j) => {
      const theta = (0.005 + a.factor * 0.001) / 0.005;
      const pi1 = (100 * theta) / (100 * theta + 9_900);
      const brute = logPmf(canary.errors, E, pi1) - logPmf(canary.errors, E, pi0);
      expect(next[j]).toBeCloseTo(brute, 9);
    });
  });

  it('against a history baseline: the Bernoulli likelihood ratio of the candidate\'s own requests', () => {
    const reference = { requests: 999_998, errors: 4_999 }; // p0 = 5,000/1,000,000
    const canary = { requests: 400, errors: 7 };
    const next = updateWealthAgainst(ALTERNATIVES.map(() => 0), canary, reference, 0.001);
    ALTERNATIVES.forEach((a, j) => {
      const p1 = 0.005 + a.factor * 0.001;
      expect(next[j]).toBeCloseTo(logPmf(7, 400, p1) - logPmf(7, 400, 0.005), 9);
    });
  });

  it('learns nothing from an interval without errors or without one of the versions', () => {
    const start = ALTERNATIVES.map(() => 0);
    expect(updateWealth(start, { requests: 100, errors: 0 }, { requests: 9_900, errors: 0 }, { requests: 0, errors: 0 }, 0.001)).toEqual(start);
    expect(updateWealth(start, { requests: 0, errors: 0 }, { requests: 9_900, errors: 40 }, { requests: 0, errors: 0 }, 0.001)).toEqual(start);
    expect(mixtureEvidence(start)).toBeCloseTo(1, 12);
  });

  it('counts an interval once both versions have gained: checks between their scrapes lose nothing', () => {
    // The versions' series are scraped at different instants and checked faster than either:
    // each check sees the candidate's window grow, or stable's, never both at once.
    let memory: LadderMemory = emptyMemory();
    let canary = { requests: 0, errors: 0 };
    let stable = { requests: 0, errors: 0 };
    let evidence = 1;
    let checks = 0;
    for (let t = 1; t <= 20 && evidence < 100; t++) {
      if (t % 2) canary = { requests: canary.requests + 40, errors: canary.errors + 20 };
      else stable = { requests: stable.requests + 40, errors: stable.errors };
      const d = ladderDecision({ step: 0, canary, stable, margin: 0.05, maxIncrease: 0.05, alpha: 0.01, lookSpacingMs: 150_000 }, memory);
      memory = d.memory;
      evidence = d.evidence;
      checks = t;
    }
    // Half of the candidate's requests failing is plain within a few scrapes of each.
    expect(evidence).toBeGreaterThanOrEqual(100);
    expect(checks).toBeLessThanOrEqual(6);
  });

  it('carries its evidence across steps: a rollback at a later step counts what the earlier ones saw', () => {
    // Slightly worse at every step, never enough within one step alone.
    let memory: LadderMemory = emptyMemory();
    const evidence: number[] = [];
    for (const [step, share] of [[0, 0.05], [1, 0.25]] as const) {
      for (let t = 1; t <= 6; t++) {
        const n = 2_000 * t;
        const d = ladderDecision({ step, canary: { requests: n * share, errors: n * share * 0.015 }, stable: { requests: n * (1 - share), errors: n * (1 - share) * 0.005 }, margin: 0.01, maxIncrease: 0.001, alpha: 0.01, lookSpacingMs: 1000 }, memory);
        memory = d.memory;
        evidence.push(d.evidence);
      }
    }
    expect(evidence[5]!).toBeLessThan(100);
    expect(evidence.at(-1)!).toBeGreaterThan(evidence[5]! * 100);
    expect(memory.strata.map((s) => s.step)).toEqual([0, 1]);
  });
});

describe('the pass test', () => {
  it('never passes a candidate worse by the margin more often than its level: exact binomial sums', () => {
    const a1 = lookAlpha(0, 0.01);
    const z = normalQuantile(a1);
    for (const p of [0, 0.001, 0.005, 0.02]) {
      for (const margin of [0.001, 0.01, 0.05]) {
        for (const n of [200, 2_000, 20_000, 200_000]) {
          const ns = 50 * n;
          const es = Math.round(ns * p);
          let size = 0;
          for (let k = 0; k <= n; k++) {
            const r = stratifiedIncrease([{ step: 0, canary: { requests: n, errors: k }, stable: { requests: ns, errors: es } }], margin);
            if (!(r.z < -z)) break; // passing is monotone in the candidate's errors
            size += Math.exp(logPmf(k, n, p + margin));
          }
          expect(size, `p ${p}, margin ${margin}, n ${n}`).toBeLessThanOrEqual(a1);
        }
      }
    }
  });

  it('with no errors at all passes no earlier than the exact bound (1 − δ)ⁿ ≤ α allows', () => {
    const a1 = lookAlpha(0, 0.01);
    for (const margin of [0.001, 0.005, 0.02]) {
      const exact = Math.ceil(Math.log(a1) / Math.log1p(-margin));
      const passes = (n: number) => stratifiedIncrease([{ step: 0, canary: { requests: n, errors: 0 }, stable: { requests: 100 * n, errors: 0 } }], margin).z < -normalQuantile(a1);
      expect(passes(exact - 1)).toBe(false);
      expect(passes(Math.ceil(1.3 * exact))).toBe(true);
    }
  });

  it('compares each step within its own window: a baseline that moves between steps fakes no increase', () => {
    // Stable and candidate are equal within each step; the rate is 0.2% in step 1 and 2% in step 2.
    const strata = [
      { step: 0, canary: { requests: 10_000, errors: 20 }, stable: { requests: 990_000, errors: 1_980 } },
      { step: 1, canary: { requests: 250_000, errors: 5_000 }, stable: { requests: 750_000, errors: 15_000 } },
    ];
    expect(Math.abs(stratifiedIncrease(strata, 0.001).increase)).toBeLessThan(1e-12);
    // Pooled naively, the candidate's share would sit mostly in the 2% step and look 1.3 points worse.
    const pooledCanary = 5_020 / 260_000;
    const pooledStable = 16_980 / 1_740_000;
    expect(pooledCanary - pooledStable).toBeGreaterThan(0.009);
  });

  it('looks once at the hold end and then once a spacing, spending the looks a stopped driver missed', () => {
    const check = { step: 0, canary: { requests: 1_000, errors: 0 }, stable: { requests: 99_000, errors: 0 }, margin: 0.001, maxIncrease: 0.001, alpha: 0.01, lookSpacingMs: 60_000 };
    const during = ladderDecision(check);
    expect([during.verdict, during.memory.looks]).toEqual(['inconclusive', undefined]);
    const first = ladderDecision({ ...check, pastHoldMs: 0 }, during.memory);
    expect(first.memory.looks).toEqual({ step: 0, taken: 1 });
    // Too few requests for +0.1 points: the next look is a spacing later, not at the next check.
    const again = ladderDecision({ ...check, canary: { requests: 20_000, errors: 0 }, stable: { requests: 1_980_000, errors: 0 }, pastHoldMs: 10_000 }, first.memory);
    expect([again.verdict, again.memory.looks]).toEqual(['inconclusive', { step: 0, taken: 1 }]);
    const later = ladderDecision({ ...check, canary: { requests: 20_000, errors: 0 }, stable: { requests: 1_980_000, errors: 0 }, pastHoldMs: 200_000 }, again.memory);
    expect([later.verdict, later.memory.looks]).toEqual(['passed', { step: 0, taken: 4 }]);
    // The levels of all looks sum to α.
    const total = Array.from({ length: 10_000 }, (_, j) => lookAlpha(j, 0.01)).reduce((a, b) => a + b, 0);
    expect(total).toBeLessThanOrEqual(0.01);
    expect(total).toBeGreaterThan(0.0099);
  });
});

describe('margins over the ladder', () => {
  const gated = planCanary({}, ['errors']).steps.filter((s) => s.gates.length > 0);

  it('without traffic: 10 × maxIncrease at the first step down to maxIncrease before 100%', () => {
    expect(ladderMargins(gated, 0.001, 0.01).map((m) => +m.margin.toFixed(5))).toEqual([0.01, 0.00464, 0.00215, 0.001]);
  });

  it('with traffic: the last step always carries maxIncrease, the others tighten as traffic grows and never go below it', () => {
    let previous: number[] | undefined;
    for (const rps of [50, 100, 300, 1_000, 3_000, 10_000, 100_000]) {
      const m = ladderMargins(gated, 0.001, 0.01, { requestsPerSecond: rps, errorRate: 0.005 }).map((x) => x.margin);
      expect(m.at(-1)).toBe(0.001);
      for (const x of m) expect(x).toBeGreaterThanOrEqual(0.001);
      for (let i = 1; i < m.length; i++) expect(m[i]!).toBeLessThanOrEqual(m[i - 1]!);
      if (previous) m.forEach((x, i) => expect(x).toBeLessThanOrEqual(previous![i]!));
      previous = m;
    }
    expect(previous!.every((x) => x === 0.001)).toBe(true);
  });

  it('a margin shown by n requests is what n requests need, and zero errors need z²/δ', () => {
    for (const p of [0, 0.005, 0.05]) {
      for (const n of [1_000, 50_000]) {
        const delta = marginShown(n, p, 0.01, 0.95);
        expect(requestsForMargin(delta, p, 0.01, 0.95) / n).toBeGreaterThan(0.9);
        expect(requestsForMargin(delta, p, 0.01, 0.95) / n).toBeLessThan(1.1);
      }
    }
    const z = normalQuantile(lookAlpha(0, 0.01));
    expect(requestsForMargin(0.001, 0, 0.01, 0.5)).toBe(Math.ceil((z * z * 0.999) / 0.001));
  });

  it('keeps a margin written in deploy.yaml and gives steps without the gate none', () => {
    const plan = planCanary({ steps: [{ weight: 1, hold: 60_000, margin: 0.02 }, { weight: 10, hold: 60_000 }, { weight: 100 }] }, ['errors']);
    expect(planMargins(plan, 'errors', 0.001, 0.01)).toEqual([0.02, 0.001, undefined]);
    expect(planMargins(plan, 'other', 0.001, 0.01)).toEqual([undefined, undefined, undefined]);
  });

  it('spaces later looks a quarter of the hold apart', () => {
    expect(lookSpacing(600_000)).toBe(150_000);
    expect(lookSpacing(2_000)).toBe(1_000);
  });
});

describe('the whole ladder in simulation (the real decision code over the default plan)', () => {
  const gate = (rps: number) => ladderGate(0.001, 0.01, { requestsPerSecond: rps, errorRate: 0.005 });
  const scenario = (name: string) => SCENARIOS.find((s) => s.name === name)!;

  it('rolls back at most 1% of healthy releases and promotes 99% of them in time at 1,000 req/s', () => {
    const cell = runCell('ladder', gate(1_000), 1_000, scenario('healthy'), 1_500, 11);
    // 1% plus three standard errors of 1,500 runs.
    expect(cell.rolledBack).toBeLessThanOrEqual(0.01 + 3 * Math.sqrt(0.01 * 0.99 / 1_500));
    expect(cell.promotedInTime).toBeGreaterThanOrEqual(0.98);
  });

  it('lets a release worse by 0.1 points reach 100% in at most 1% of rollouts', () => {
    for (const rps of [300, 1_000]) {
      const cell = runCell('ladder', gate(rps), rps, scenario('+0.1'), 1_500, 12 + rps);
      expect(cell.promoted, `${rps} req/s`).toBeLessThanOrEqual(0.01 + 3 * Math.sqrt(0.01 * 0.99 / 1_500));
    }
  });

  it('rolls a +1-point release back at the 1% step within 90 s (median) at 1,000 req/s', () => {
    const cell = runCell('ladder', gate(1_000), 1_000, scenario('+1'), 400, 13);
    expect(cell.rolledBack).toBe(1);
    expect(Object.keys(cell.rolledBackAt)).toEqual(['1%']);
    expect(cell.medianMs).toBeLessThanOrEqual(100_000);
    expect(cell.meanExcessFailures).toBeLessThanOrEqual(14);
  });
});
