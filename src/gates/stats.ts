/**
 * The statistics behind the error-rate gate: time-uniform confidence sequences for the canary's
 * and the stable version's error rates, and the verdict drawn from them.
 *
 * Method: Robbins' beta-binomial mixture martingale. For Bernoulli data with S errors in n
 * requests, M_n(p) = [B(a+S, b+n−S) / B(a, b)] / [p^S (1−p)^(n−S)] is a nonnegative martingale
 * with mean 1 when the true rate is p, so by Ville's inequality P(∃n: M_n(p) ≥ 1/α) ≤ α and
 * {p : M_n(p) < 1/α} covers the true rate at every n at once with probability ≥ 1−α.
 *
 * Why this and not a textbook test:
 * - Anytime-valid. The gate is checked every few seconds through a 30-minute hold. A fixed-sample
 *   test repeated at every check has its false-failure rate compound with the number of looks
 *   (hundreds of them); a confidence sequence's guarantee already holds over all looks, so a
 *   healthy canary is wrongly rolled back with probability ≤ α however often it is checked.
 * - Exact. No normal approximation, which is worst exactly where canaries live: a handful of
 *   errors out of a few hundred requests, rates well under 1%.
 * - The price is a wider band than a fixed-sample interval at the same n: about twice as wide at
 *   canary sizes, so a pass at 0.5% ± 0.1 points takes about 125,000 canary requests where one
 *   fixed-sample test would take about 27,000. `bench/gates.ts` measures what that costs.
 *
 * The two sequences (canary, stable) each get α/2; by the union bound both cover their rates at
 * all times with probability ≥ 1−α, and while they do, a canary within the allowed increase is
 * never failed and one beyond it is never passed.
 */

const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);
// Godfrey's Lanczos coefficients for g = 7, n = 9: about 15 significant digits of Γ for x ≥ 0.5.
const LANCZOS_G = 7;
const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905,
  -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/**
 * Natural log of the gamma function for x > 0 (Lanczos approximation, reflection below 0.5).
 * Relative error about 1e-14 away from the zeros at x = 1 and x = 2, where the absolute error
 * stays about 1e-15. NaN for x ≤ 0, which no caller here has a use for.
 */
export function lgamma(x: number): number {
  if (!(x > 0)) return Number.NaN;
  // Γ(x)Γ(1−x) = π / sin(πx): the series is accurate for x ≥ 0.5 only.
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lgamma(1 - x);
  const z = x - 1;
  let sum = LANCZOS[0]!;
  for (let i = 1; i < LANCZOS.length; i++) sum += LANCZOS[i]! / (z + i);
  const t = z + LANCZOS_G + 0.5;
  return HALF_LOG_2PI + (z + 0.5) * Math.log(t) - t + Math.log(sum);
}

/** Natural log of the beta function B(a, b) = Γ(a)Γ(b)/Γ(a+b), for a, b > 0. */
export function logBeta(a: number, b: number): number {
  return lgamma(a) + lgamma(b) - lgamma(a + b);
}

/**
 * The mixing prior Beta(1, 49): density 49(1−p)^48, mean 2%, with 87% of its weight on rates
 * from 0.1% to 5%, where the services this gates live. The coverage guarantee holds for any
 * prior; only the band's width depends on it, and the band is tightest where the prior has
 * weight. Chosen by simulation (the prior table of `bench/gates.ts`: 10 canary and 990 stable
 * requests a second, checked every 5 s, 600 runs each), median seconds to catch +1 point over
 *
 *   baseline        0.1%   0.5%   2.5%    5%
 *   Beta(1, 1)       135    270    840  1555
 *   Beta(1, 19)       95    190    650  1225
 *   Beta(1, 49)       85    180    660  1380
 *   Beta(1, 99)       85    175    740  1775
 *   Beta(2, 198)      85    175    840  > 30 min
 *
 * Beta(1, 49) is within a check of the sharper priors at the low rates that matter most and does
 * not give up on the higher ones, where they fall behind (at 5%, even behind the flat prior).
 */
export const DEFAULT_PRIOR = { a: 1, b: 49 } as const;

/** Absolute precision of the bounds: far below the 0.001 increases the gate compares. */
const TOLERANCE = 1e-12;

/**
 * Bounds of the (1−α) confidence sequence for a Bernoulli rate after `successes` in `trials`:
 * the set {p : M_n(p) < 1/α}, valid at every n simultaneously. `trials` = 0 gives {0, 1}.
 * Counts are rounded and clamped (successes ≤ trials), as counts from increase() are not integers.
 */
export function betaMixtureBounds(successes: number, trials: number, alpha: number, prior: { a: number; b: number } = DEFAULT_PRIOR): { lower: number; upper: number } {
  const n = Math.max(0, Math.round(trials));
  const s = Math.min(n, Math.max(0, Math.round(successes)));
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`alpha must be in (0, 1), got ${alpha}`);
  if (n === 0) return { lower: 0, upper: 1 };
  const { a, b } = prior;
  const threshold = Math.log(1 / alpha);
  const logMixture = logBeta(a + s, b + n - s) - logBeta(a, b);
  // log M(p) = logMixture − S log p − (n−S) log(1−p): convex in p with its minimum at p̂ = S/n,
  // where M ≤ 1 (a mixture of likelihoods never exceeds the largest), so p̂ is always inside and
  // each bound is the one crossing of the threshold on its side of p̂.
  const excess = (p: number) => logMixture - (s > 0 ? s * Math.log(p) : 0) - (n - s > 0 ? (n - s) * Math.log1p(-p) : 0) - threshold;
  const pHat = s / n;
  // At p → 0 with S = 0, log M tends to logMixture = log E[(1−p)^n] under the prior, which is
  // below 0: every small rate stays plausible and the lower bound is 0. Likewise p → 1 with S = n.
  // Otherwise log M → ∞ at the edge, so there is exactly one crossing on that side.
  const lower = s === 0 ? 0 : crossing(excess, pHat, 0);
  const upper = s === n ? 1 : crossing(excess, pHat, 1);
  return { lower, upper };
}

/**
 * Where the convex `excess` crosses 0 between `inside` (< 0) and `edge` (0 or 1, where it is
 * infinite), by bisection. The edge itself is never evaluated. The answer is the last point known
 * to be outside, so the bound errs wide by at most TOLERANCE, never narrow.
 */
function crossing(excess: (p: number) => number, inside: number, edge: number): number {
  let outside = edge;
  while (Math.abs(outside - inside) > TOLERANCE) {
    const mid = (inside + outside) / 2;
    if (mid === inside || mid === outside) break;
    if (excess(mid) < 0) inside = mid;
    else outside = mid;
  }
  return outside;
}

/** Requests and errors of one version over the window since the step's hold began. */
export interface ErrorRateEvidence {
  /** The candidate under test. */
  canary: { requests: number; errors: number };
  /** The stable version over the same window: the baseline. */
  stable: { requests: number; errors: number };
}

/** What the error-rate gate allows and how sure it must be. */
export interface ErrorRateOptions {
  /** Largest allowed increase of the canary's rate over stable's, as a fraction (0.001 = 0.1 points). */
  maxIncrease: number;
  /** Chance of a wrong verdict over the whole hold, however often it is checked (default 0.01). */
  alpha?: number;
  /** Mixing prior of both confidence sequences (default Beta(1, 49)). */
  prior?: { a: number; b: number };
}

/** The gate's verdict with the numbers behind it. */
export interface ErrorRateDecision {
  verdict: 'passed' | 'failed' | 'inconclusive';
  /** Observed error rates (0 with no requests). */
  canaryRate: number;
  stableRate: number;
  /** Bounds on canary rate − stable rate, jointly valid at every check with probability ≥ 1−α. */
  difference: { lower: number; upper: number };
  /**
   * How much the true increase may exceed the observed one without the data ruling it out now:
   * (UB_c − p̂_c) + (p̂_s − LB_s), the upper half-widths. A pass needs the observed difference plus
   * this to be within `maxIncrease`, and a failure needs about as much margin above it, so it is
   * the gate's resolution at this moment.
   */
  detectableIncrease: number;
  /** Estimated canary requests for the band to narrow to `maxIncrease` (≥ the current count). */
  requestsNeeded: number;
}

/**
 * The error-rate verdict: failed when even the lowest plausible canary rate exceeds the highest
 * plausible stable rate by more than `maxIncrease`; passed when even the highest plausible
 * increase is within it; inconclusive otherwise. Sound over any number of checks (see the top).
 */
export function errorRateDecision(evidence: ErrorRateEvidence, options: ErrorRateOptions): ErrorRateDecision {
  const { maxIncrease, alpha = 0.01, prior = DEFAULT_PRIOR } = options;
  const canary = counts(evidence.canary);
  const stable = counts(evidence.stable);
  const c = betaMixtureBounds(canary.errors, canary.requests, alpha / 2, prior);
  const s = betaMixtureBounds(stable.errors, stable.requests, alpha / 2, prior);
  const canaryRate = canary.requests ? canary.errors / canary.requests : 0;
  const stableRate = stable.requests ? stable.errors / stable.requests : 0;
  const difference = { lower: c.lower - s.upper, upper: c.upper - s.lower };
  const verdict = difference.lower > maxIncrease ? 'failed' : difference.upper <= maxIncrease ? 'passed' : 'inconclusive';
  const detectableIncrease = c.upper - canaryRate + (stableRate - s.lower);
  return { verdict, canaryRate, stableRate, difference, detectableIncrease, requestsNeeded: requestsNeeded(canary.requests, stableRate, detectableIncrease, maxIncrease, alpha) };
}

/** Whole, non-negative counts with errors ≤ requests: increase() extrapolates to fractions. */
function counts(x: { requests: number; errors: number }): { requests: number; errors: number } {
  const requests = Math.max(0, Math.round(x.requests));
  return { requests, errors: Math.min(requests, Math.max(0, Math.round(x.errors))) };
}

/**
 * Band half-widths shrink about as 1/√n, so n·(width/δ)² estimates the count at which the band
 * is δ wide. It is optimistic (a confidence sequence also grows by a slow log factor), which is
 * acceptable for a progress hint. With no canary traffic yet there is no width to scale: use the
 * fixed-sample count z²·p(1−p)/δ² at stable's rate (at least δ), with z² ≈ 2·ln(2/α).
 */
function requestsNeeded(requests: number, stableRate: number, width: number, maxIncrease: number, alpha: number): number {
  if (requests === 0) {
    const p = Math.max(stableRate, maxIncrease);
    return Math.ceil((2 * Math.log(2 / alpha) * p * (1 - p)) / (maxIncrease * maxIncrease));
  }
  return Math.max(requests, Math.ceil(requests * (width / maxIncrease) ** 2));
}
