import { describe, expect, it } from 'vitest';
import { betaMixtureBounds, DEFAULT_PRIOR, errorRateDecision, lgamma, logBeta } from '../../src/gates/stats.js';
import { mulberry32, naiveGate, sequenceGate, simulateHold } from '../../bench/gates.js';

/** Reference values of ln Γ(x) from mpmath at 30 digits. */
const LGAMMA: [number, number][] = [
  [1e-8, 18.420680738180208905],
  [1e-3, 6.9071788853838536825],
  [0.1, 2.2527126517342059599],
  [0.5, 0.57236494292470008707],
  [1.5, -0.12078223763524522235],
  [3, 0.69314718055994530942],
  [10, 12.801827480081469611],
  [100, 359.13420536957539878],
  [12345.678, 103959.91990554606092],
  [1e6, 12815504.56914761166],
];

describe('lgamma and logBeta', () => {
  it.each(LGAMMA)('lgamma(%d) matches the reference to 1e-10 relative', (x, expected) => {
    expect(Math.abs(lgamma(x) - expected) / Math.abs(expected)).toBeLessThan(1e-10);
  });

  it('has the closed forms and the zeros', () => {
    expect(lgamma(0.5)).toBeCloseTo(Math.log(Math.sqrt(Math.PI)), 13);
    expect(lgamma(10)).toBeCloseTo(Math.log(362880), 12);
    expect(Math.abs(lgamma(1))).toBeLessThan(1e-14);
    expect(Math.abs(lgamma(2))).toBeLessThan(1e-14);
    expect(lgamma(0)).toBeNaN();
    expect(lgamma(-1)).toBeNaN();
  });

  it('gives the beta function', () => {
    expect(logBeta(2, 3)).toBeCloseTo(Math.log(1 / 12), 13);
    expect(logBeta(1, 49)).toBeCloseTo(-Math.log(49), 13);
    expect(logBeta(0.3, 7.5)).toBeCloseTo(logBeta(7.5, 0.3), 13);
  });
});

/** log M_n(p) straight from its definition, for the grid scan. */
function logMartingale(s: number, n: number, p: number, prior = DEFAULT_PRIOR): number {
  const likelihood = (s > 0 ? s * Math.log(p) : 0) + (n - s > 0 ? (n - s) * Math.log(1 - p) : 0);
  return logBeta(prior.a + s, prior.b + n - s) - logBeta(prior.a, prior.b) - likelihood;
}

/** The confidence sequence by brute force: every p on a grid of step 1e-6 with M_n(p) < 1/α. */
function gridBounds(s: number, n: number, alpha: number): { lower: number; upper: number } {
  const steps = 1_000_000;
  let lower = Infinity;
  let upper = -Infinity;
  for (let i = 0; i <= steps; i++) {
    const p = i / steps;
    if (logMartingale(s, n, p) < Math.log(1 / alpha)) {
      lower = Math.min(lower, p);
      upper = Math.max(upper, p);
    }
  }
  return { lower, upper };
}

describe('betaMixtureBounds', () => {
  it('contains the observed rate and narrows as requests grow', () => {
    let previous = { lower: 0, upper: 1 };
    for (const n of [100, 1_000, 10_000, 100_000, 1_000_000]) {
      const s = n * 0.005;
      const b = betaMixtureBounds(s, n, 0.005);
      expect(b.lower).toBeLessThanOrEqual(s / n);
      expect(b.upper).toBeGreaterThanOrEqual(s / n);
      expect(b.upper - b.lower).toBeLessThan(previous.upper - previous.lower);
      previous = b;
    }
    expect(previous.upper - previous.lower).toBeLessThan(0.001);
  });

  it('has a lower bound of 0 with no errors and an upper bound of 1 with only errors', () => {
    const none = betaMixtureBounds(0, 500, 0.005);
    expect(none.lower).toBe(0);
    expect(none.upper).toBeGreaterThan(0);
    expect(none.upper).toBeLessThan(0.05);
    expect(betaMixtureBounds(20, 20, 0.005).upper).toBe(1);
    expect(betaMixtureBounds(0, 0, 0.005)).toEqual({ lower: 0, upper: 1 });
  });

  it.each([
    [0, 50],
    [3, 600],
    [30, 1_000],
    [297, 59_400],
    [10, 10],
    [7, 12],
  ])('agrees with a grid scan of M_n(p) to 1e-6 at %d of %d', (s, n) => {
    const exact = betaMixtureBounds(s, n, 0.005);
    const grid = gridBounds(s, n, 0.005);
    expect(Math.abs(exact.lower - grid.lower)).toBeLessThanOrEqual(1e-6);
    expect(Math.abs(exact.upper - grid.upper)).toBeLessThanOrEqual(1e-6);
  });

  it('rounds and clamps fractional counts from increase()', () => {
    expect(betaMixtureBounds(3.4, 99.6, 0.005)).toEqual(betaMixtureBounds(3, 100, 0.005));
    expect(betaMixtureBounds(12, 10, 0.005)).toEqual(betaMixtureBounds(10, 10, 0.005));
    expect(() => betaMixtureBounds(1, 10, 0)).toThrow(RangeError);
  });
});

describe('errorRateDecision', () => {
  const options = { maxIncrease: 0.001, alpha: 0.01 };

  it('fails a clearly worse canary', () => {
    const d = errorRateDecision({ canary: { requests: 1000, errors: 30 }, stable: { requests: 100_000, errors: 50 } }, options);
    expect(d.verdict).toBe('failed');
    expect(d.difference.lower).toBeGreaterThan(0.001);
    expect(d.canaryRate).toBe(0.03);
    expect(d.stableRate).toBe(0.0005);
  });

  it('passes equal rates once there is plenty of traffic', () => {
    const d = errorRateDecision({ canary: { requests: 1_000_000, errors: 5_000 }, stable: { requests: 10_000_000, errors: 50_000 } }, options);
    expect(d.verdict).toBe('passed');
    expect(d.difference.upper).toBeLessThanOrEqual(0.001);
    expect(d.requestsNeeded).toBe(1_000_000);
  });

  it('is inconclusive on a handful of requests, and says how many more it needs', () => {
    const d = errorRateDecision({ canary: { requests: 20, errors: 0 }, stable: { requests: 2_000, errors: 10 } }, options);
    expect(d.verdict).toBe('inconclusive');
    expect(d.difference.lower).toBeLessThanOrEqual(0);
    expect(d.difference.upper).toBeGreaterThan(0.001);
    expect(d.detectableIncrease).toBeGreaterThan(0.001);
    expect(d.requestsNeeded).toBeGreaterThan(20);
  });

  it('is inconclusive with no canary traffic and estimates the requests from stable', () => {
    const d = errorRateDecision({ canary: { requests: 0, errors: 0 }, stable: { requests: 10_000, errors: 50 } }, options);
    expect(d.verdict).toBe('inconclusive');
    expect(d.canaryRate).toBe(0);
    expect(Number.isFinite(d.requestsNeeded)).toBe(true);
    expect(d.requestsNeeded).toBeGreaterThan(10_000);
  });

  it('never fails on one unlucky error, however early', () => {
    const d = errorRateDecision({ canary: { requests: 10, errors: 1 }, stable: { requests: 990, errors: 5 } }, options);
    expect(d.verdict).toBe('inconclusive');
  });

  it('keeps the observed difference inside its bounds', () => {
    const d = errorRateDecision({ canary: { requests: 5_000, errors: 40 }, stable: { requests: 500_000, errors: 2_500 } }, options);
    const observed = d.canaryRate - d.stableRate;
    expect(d.difference.lower).toBeLessThanOrEqual(observed);
    expect(d.difference.upper).toBeGreaterThanOrEqual(observed);
    expect(d.detectableIncrease).toBeCloseTo(d.difference.upper - observed, 12);
  });
});

describe('soundness over repeated checks', () => {
  it('wrongly fails at most 1% of healthy canaries checked 360 times, where a naive threshold fails most', () => {
    // 2,000 holds at 0.5% errors on both sides: 10 canary and 990 stable requests per 5 s check.
    const rand = mulberry32(0x5eed);
    const scenario = { canaryRate: 0.005, stableRate: 0.005, canaryPerCheck: 10, stablePerCheck: 990, checks: 360, checkSeconds: 5 };
    const gates = [sequenceGate(0.001, 0.01), naiveGate(0.001)];
    const failed = [0, 0];
    const runs = 2_000;
    for (let run = 0; run < runs; run++) {
      simulateHold(scenario, gates, rand).forEach((o, g) => {
        if (o.failedAt !== undefined) failed[g]!++;
      });
    }
    expect(failed[0]! / runs).toBeLessThanOrEqual(0.01);
    expect(failed[1]! / runs).toBeGreaterThan(0.2);
  });
});
