/**
 * The error-rate gate over a whole canary ladder: one test that fails fast on evidence of harm,
 * and a pass margin per step that tightens along the ladder, down to the configured
 * `maxIncrease` at the last weighted step before 100%.
 *
 * Why not the same proof at every step (`stats.ts`, kept as `method: confidence-sequence`):
 * "not worse by 0.1 points" needs about 130,000 canary requests at a 0.5% baseline with an
 * anytime-valid band, which 1% of a 1,000 req/s service brings in 3.6 hours. The question at 1%
 * is "is it clearly broken?"; only the last step must answer "within 0.1 points?", and by then
 * the candidate has served the requests of every step before it.
 *
 * **Failing: a mixture SPRT on how errors split between the versions.** Within one check
 * interval, if the candidate fails like stable, each error lands on the candidate with the
 * probability π = its share of the interval's requests, whatever stable's rate is and however
 * it swings (a swing hits both versions). A candidate whose rate is stable's + d pulls that
 * share up to π₁ = n_c·θ/(n_c·θ + n_s) with θ = (p_s + d)/p_s. The product over intervals of the
 * likelihood ratios Bin(e_c; E, π₁)/Bin(e_c; E, π) is a nonnegative martingale with mean 1 for a
 * healthy candidate (and a supermartingale for a better one), and so is any weighted mixture of
 * them over alternatives d; by Ville's inequality it ever reaches 1/α with probability ≤ α. One
 * martingale runs over the whole rollout (its wealth is carried across steps), so the
 * false-rollback budget α is spent once across the ladder, not once per step or per check. p_s
 * is taken from the intervals before the current one, so the choice of θ is predictable and the
 * martingale property holds exactly. No normal approximation, and only cumulative counts.
 * The alternatives start at 2.5 × `maxIncrease`: a candidate within the allowed increase drifts
 * the wealth down, not up.
 *
 * **Passing: a margin per step, tested once at the hold's end.** The pass test pools every step
 * so far, each step a stratum compared within its own window (Mantel–Haenszel weights
 * n_c·n_s/(n_c+n_s)), so a rate that moves with the time of day cannot fake a difference. It is
 * a one-sided score test of H₀: p_c − p_s ≥ δ_k with the variance taken under H₀ (Farrington–
 * Manning style: the shared rate is re-estimated with the shift δ_k imposed), which stays sound
 * with no errors at all — zero errors in 4,800 candidate requests rule out +0.1 points, as the
 * exact binomial bound says. It is looked at a few times only, whatever the check interval: at
 * the hold's end at level α₁ = 0.7·α, and if it does not pass then, once every quarter of the
 * hold after it, look j at α₂/(j(j+1)) with α₂ = 0.3·α (Bonferroni over looks whose levels sum
 * to α; the levels shrink slowly enough that the growing count of requests wins). So a candidate worse than δ_k passes step k with probability ≤ α, and a release worse
 * by `maxIncrease` reaches 100% with probability ≤ α.
 */
import type { Plan } from '../engine/plan.js';

/** Requests and errors of one version. */
export interface Counts {
  requests: number;
  errors: number;
}

/** One step's window: both versions over the same time. */
export interface Stratum {
  step: number;
  canary: Counts;
  stable: Counts;
}

/** What the gate remembers between checks (kept in the rollout's state). */
export interface LadderMemory {
  /** Log of each alternative's likelihood-ratio martingale, over the whole rollout. */
  logWealth: number[];
  /** Every step so far with its latest cumulative counts. */
  strata: Stratum[];
  /** Looks taken at the current step's pass test (step and how many). */
  looks?: { step: number; taken: number };
  /** `baseline: history`: stable's counts in the hour before the rollout, read once. */
  reference?: Counts;
}

/** Alternatives of the failure test, as multiples of `maxIncrease`, and their mixing weights. */
export const ALTERNATIVES: readonly { factor: number; weight: number }[] = [
  { factor: 2.5, weight: 0.15 },
  { factor: 5, weight: 0.2 },
  { factor: 10, weight: 0.45 },
  { factor: 30, weight: 0.2 },
];

/** Share of α spent on the look at the hold's end; the rest goes to the later looks. */
export const FIRST_LOOK_SHARE = 0.7;

/** Level of pass look `j` (0: at the hold's end) for a total α. */
export function lookAlpha(j: number, alpha: number): number {
  return j === 0 ? FIRST_LOOK_SHARE * alpha : ((1 - FIRST_LOOK_SHARE) * alpha) / (j * (j + 1));
}

/** One check's input. */
export interface LadderCheck {
  /** Step index of the check. */
  step: number;
  /** Counts since the step's hold began (cumulative within the step). */
  canary: Counts;
  stable: Counts;
  /** This step's pass margin (fraction: 0.001 = 0.1 points). */
  margin: number;
  /** Allowed increase of the gate: the alternatives of the failure test scale with it. */
  maxIncrease: number;
  /** Chance of each wrong verdict: a healthy release rolled back, a worse-than-margin one passed. */
  alpha: number;
  /** How far past the hold's end the check is (ms); undefined while the hold runs. */
  pastHoldMs?: number;
  /** Time between pass looks after the hold's end (`lookSpacing`). */
  lookSpacingMs: number;
  /**
   * Stable's counts before the rollout (`baseline: history`): then the candidate is judged
   * against this fixed rate — every step's requests pooled, no share of the same window's — which
   * is sharper but holds only while stable's rate does not move.
   */
  reference?: Counts;
}

/** One check's verdict with the numbers behind it. */
export interface LadderDecision {
  verdict: 'passed' | 'failed' | 'inconclusive';
  /** The failure test's evidence: the mixture likelihood ratio, against 1/α. */
  evidence: number;
  /** Stratified estimate of the increase over every step so far, and its upper bound at the current look's level. */
  increase: number;
  upperBound: number;
  /** Candidate requests over every step so far, and about how many the margin needs. */
  requests: number;
  requestsNeeded: number;
  /** Candidate errors beyond what stable's rate would have given, over every step so far. */
  excessErrors: number;
  /** Observed rates of the current step. */
  canaryRate: number;
  stableRate: number;
  memory: LadderMemory;
}

/** Start of a rollout's memory. */
export function emptyMemory(): LadderMemory {
  return { logWealth: ALTERNATIVES.map(() => 0), strata: [] };
}

const whole = (c: Counts): Counts => {
  const requests = Math.max(0, Math.round(c.requests));
  return { requests, errors: Math.min(requests, Math.max(0, Math.round(c.errors))) };
};

/** The mixture's value: Σ wⱼ·exp(log wealthⱼ). */
export function mixtureEvidence(logWealth: number[]): number {
  return logWealth.reduce((sum, lw, j) => sum + ALTERNATIVES[j]!.weight * Math.exp(lw), 0);
}

/**
 * Multiply each alternative's wealth by the likelihood ratio of one interval's split of errors.
 * `before` gives stable's rate from earlier intervals only (the predictable plug-in).
 */
export function updateWealth(logWealth: number[], canary: Counts, stable: Counts, before: Counts, maxIncrease: number): number[] {
  const n = canary.requests + stable.requests;
  const errors = canary.errors + stable.errors;
  if (canary.requests === 0 || stable.requests === 0 || errors === 0) return logWealth;
  const pi0 = canary.requests / n;
  // (errors + 1)/(requests + 2): defined before any data, and never 0.
  const ps = (before.errors + 1) / (before.requests + 2);
  return logWealth.map((lw, j) => {
    const pc = Math.min(1 - 1e-9, ps + ALTERNATIVES[j]!.factor * maxIncrease);
    const theta = pc / ps;
    const pi1 = (canary.requests * theta) / (canary.requests * theta + stable.requests);
    return lw + canary.errors * Math.log(pi1 / pi0) + stable.errors * Math.log((1 - pi1) / (1 - pi0));
  });
}

/**
 * The failure test against a fixed reference rate p₀ (`baseline: history`): each alternative's
 * wealth is the Bernoulli likelihood ratio of the candidate's own requests, (p₁/p₀)^e·((1−p₁)/(1−p₀))^(n−e)
 * with p₁ = p₀ + factor × maxIncrease. A martingale only while the candidate's rate would be p₀
 * if it were healthy — that is the assumption a history baseline makes, and says it does.
 */
export function updateWealthAgainst(logWealth: number[], canary: Counts, reference: Counts, maxIncrease: number): number[] {
  if (canary.requests === 0) return logWealth;
  const p0 = (reference.errors + 1) / (reference.requests + 2);
  return logWealth.map((lw, j) => {
    const p1 = Math.min(1 - 1e-9, p0 + ALTERNATIVES[j]!.factor * maxIncrease);
    return lw + canary.errors * Math.log(p1 / p0) + (canary.requests - canary.errors) * Math.log((1 - p1) / (1 - p0));
  });
}

/** Upper tail of the standard normal, P(Z > z): its series below 3, its continued fraction above, both to ~1e-15. */
export function normalUpperTail(z: number): number {
  if (z < 0) return 1 - normalUpperTail(-z);
  const density = Math.exp(-0.5 * z * z) / Math.sqrt(2 * Math.PI);
  if (z < 3) {
    // Φ(z) − ½ = φ(z)·Σ z^(2k+1) / (1·3·5···(2k+1))
    let term = z;
    let sum = z;
    for (let k = 1; k < 200 && term > 1e-17 * sum; k++) {
      term *= (z * z) / (2 * k + 1);
      sum += term;
    }
    return 0.5 - density * sum;
  }
  // Q(z) = φ(z) / (z + 1/(z + 2/(z + 3/(z + …)))), evaluated from the tail inwards.
  let fraction = z;
  for (let k = 60; k >= 1; k--) fraction = z + k / fraction;
  return density / fraction;
}

/**
 * Upper standard-normal quantile: z with P(Z > z) = p. Acklam's rational approximation as the
 * start (about 1e-5 off in the tails), then Newton steps on `normalUpperTail` to ~1e-13.
 */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`p must be in (0, 1), got ${p}`);
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549671010114549, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const q = 1 - p; // lower-tail probability of the quantile we return
  const lo = 0.02425;
  let x: number;
  if (q < lo) {
    const r = Math.sqrt(-2 * Math.log(q));
    x = (((((c[0]! * r + c[1]!) * r + c[2]!) * r + c[3]!) * r + c[4]!) * r + c[5]!) / ((((d[0]! * r + d[1]!) * r + d[2]!) * r + d[3]!) * r + 1);
  } else if (q <= 1 - lo) {
    const r = q - 0.5;
    const s = r * r;
    x = ((((((a[0]! * s + a[1]!) * s + a[2]!) * s + a[3]!) * s + a[4]!) * s + a[5]!) * r) / (((((b[0]! * s + b[1]!) * s + b[2]!) * s + b[3]!) * s + b[4]!) * s + 1);
  } else {
    const r = Math.sqrt(-2 * Math.log(p));
    x = -(((((c[0]! * r + c[1]!) * r + c[2]!) * r + c[3]!) * r + c[4]!) * r + c[5]!) / ((((d[0]! * r + d[1]!) * r + d[2]!) * r + d[3]!) * r + 1);
  }
  for (let i = 0; i < 3; i++) x += (normalUpperTail(x) - p) / (Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI));
  return x;
}

/** The pooled increase over the strata, its standard error under H₀: increase = margin, and the score z. */
export function stratifiedIncrease(strata: Stratum[], margin: number): { increase: number; se: number; z: number; weight: number } {
  let weight = 0;
  let sum = 0;
  let variance = 0;
  for (const s of strata) {
    const { requests: nc, errors: ec } = s.canary;
    const { requests: ns, errors: es } = s.stable;
    if (nc === 0 || ns === 0) continue;
    const h = (nc * ns) / (nc + ns);
    // Shared rate re-estimated with the shift imposed: total errors = n_c(p_s + δ) + n_s·p_s.
    const ps0 = Math.min(1 - margin, Math.max(0, (ec + es - nc * margin) / (nc + ns)));
    const pc0 = ps0 + margin;
    weight += h;
    sum += h * (ec / nc - es / ns);
    variance += h * h * ((pc0 * (1 - pc0)) / nc + (ps0 * (1 - ps0)) / ns);
  }
  if (weight === 0) return { increase: 0, se: Number.POSITIVE_INFINITY, z: Number.POSITIVE_INFINITY, weight: 0 };
  const increase = sum / weight;
  const se = Math.sqrt(variance) / weight;
  return { increase, se, z: se > 0 ? (increase - margin) / se : increase < margin ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY, weight };
}

/**
 * The margin the one-look test shows with `n` effective requests (Mantel–Haenszel weight) at a
 * baseline rate p, passing a healthy candidate with probability `power`: the δ with
 * δ = z_α·√((p+δ)(1−p−δ)/n) + z_β·√(p(1−p)/n) — the first term is the test's own bound (its
 * variance is taken at the margin), the second the healthy candidate's own noise. With p = 0 it
 * is z_α²/(n + z_α²): zero errors in n requests.
 */
export function marginShown(n: number, baseline: number, alpha: number, power: number): number {
  if (!(n > 0)) return 1;
  const p = Math.max(0, baseline);
  const za = normalQuantile(lookAlpha(0, alpha));
  const zb = normalQuantile(1 - power);
  let delta = 0.5;
  for (let i = 0; i < 100; i++) delta = Math.min(1 - p, za * Math.sqrt(((p + delta) * (1 - p - delta)) / n) + zb * Math.sqrt((p * (1 - p)) / n));
  return delta;
}

/**
 * Canary requests a margin needs, when stable's side is large, for the one-look test to pass a
 * healthy candidate at a baseline rate p with probability `power`:
 * n = (z_α·√((p+δ)(1−p−δ)) + z_β·√(p(1−p)))² / δ².
 */
export function requestsForMargin(margin: number, baseline: number, alpha: number, power = 0.95): number {
  const p = Math.max(0, baseline);
  const za = normalQuantile(lookAlpha(0, alpha));
  const zb = normalQuantile(1 - power);
  return Math.ceil((za * Math.sqrt((p + margin) * (1 - p - margin)) + zb * Math.sqrt(p * (1 - p))) ** 2 / (margin * margin));
}

/** One check of the gate: update the memory with this interval, then decide. */
export function ladderDecision(check: LadderCheck, memory: LadderMemory = emptyMemory()): LadderDecision {
  const canary = whole(check.canary);
  const stable = whole(check.stable);
  const strata = memory.strata.map((s) => ({ ...s }));
  let current = strata.find((s) => s.step === check.step);
  if (!current) {
    current = { step: check.step, canary: { requests: 0, errors: 0 }, stable: { requests: 0, errors: 0 } };
    strata.push(current);
  }
  // This interval: what the step's window gained since the last check (a shrinking count — a
  // counter reset, an extrapolation wobble — adds nothing).
  const gain = (now: Counts, was: Counts): Counts => ({ requests: Math.max(0, now.requests - was.requests), errors: Math.max(0, now.errors - was.errors) });
  const dc = gain(canary, current.canary);
  const ds = gain(stable, current.stable);
  const before = strata.reduce((t, s) => ({ requests: t.requests + s.stable.requests, errors: t.errors + s.stable.errors }), { requests: 0, errors: 0 });
  const interval = { requests: dc.requests, errors: Math.min(dc.errors, dc.requests) };
  const reference = check.reference && check.reference.requests > 0 ? whole(check.reference) : undefined;
  // An interval counts once both versions' windows have gained. Their series are scraped at
  // different instants, so a check between the two scrapes sees one side grow and not the other:
  // spending that side's gain against nothing would lose it (checks faster than the scrapes lost
  // every interval, and a candidate failing half its requests gathered no evidence). Until both
  // have gained, the gains stay in the window for the next check.
  const counted = dc.requests > 0 && (reference !== undefined || ds.requests > 0);
  const logWealth = !counted
    ? memory.logWealth
    : reference
      ? updateWealthAgainst(memory.logWealth, interval, reference, check.maxIncrease)
      : updateWealth(memory.logWealth, interval, { requests: ds.requests, errors: Math.min(ds.errors, ds.requests) }, before, check.maxIncrease);
  if (counted) {
    current.canary = { requests: Math.max(current.canary.requests, canary.requests), errors: Math.max(current.canary.errors, canary.errors) };
    current.stable = { requests: Math.max(current.stable.requests, stable.requests), errors: Math.max(current.stable.errors, stable.errors) };
  }
  const evidence = mixtureEvidence(logWealth);

  const requests = strata.reduce((t, s) => t + s.canary.requests, 0);
  const stableAll = reference ?? strata.reduce((t, s) => ({ requests: t.requests + s.stable.requests, errors: t.errors + s.stable.errors }), { requests: 0, errors: 0 });
  const baseline = stableAll.requests ? stableAll.errors / stableAll.requests : 0;
  const excessErrors = strata.reduce((t, s) => t + s.canary.errors - s.canary.requests * (reference || !s.stable.requests ? baseline : s.stable.errors / s.stable.requests), 0);
  const requestsNeeded = Math.max(requests, requestsForMargin(check.margin, baseline, check.alpha));
  // Against the reference, every step's candidate requests form one stratum with it.
  const canaryAll = strata.reduce((t, s) => ({ requests: t.requests + s.canary.requests, errors: t.errors + s.canary.errors }), { requests: 0, errors: 0 });
  const pooled = reference ? stratifiedIncrease([{ step: 0, canary: canaryAll, stable: reference }], check.margin) : stratifiedIncrease(strata, check.margin);

  // Which pass look is due: looks are numbered from the hold's end, one per spacing; a look is
  // taken once, and looks a stopped driver missed are spent, not made up.
  const taken = memory.looks?.step === check.step ? memory.looks.taken : 0;
  const due = check.pastHoldMs === undefined ? 0 : Math.floor(check.pastHoldMs / Math.max(1, check.lookSpacingMs)) + 1;
  const look = due > taken ? due - 1 : undefined;
  const levelNow = lookAlpha(look ?? taken, check.alpha);
  const zLevel = normalQuantile(levelNow);
  let verdict: LadderDecision['verdict'] = 'inconclusive';
  if (evidence >= 1 / check.alpha) verdict = 'failed';
  else if (look !== undefined && pooled.z < -zLevel) verdict = 'passed';
  const looks = look !== undefined ? { step: check.step, taken: look + 1 } : memory.looks;
  const upperBound = pooled.increase + zLevel * pooled.se;
  return {
    verdict,
    evidence,
    increase: pooled.weight ? pooled.increase : 0,
    upperBound: pooled.weight ? upperBound : 1,
    requests,
    requestsNeeded,
    excessErrors,
    canaryRate: canary.requests ? canary.errors / canary.requests : 0,
    stableRate: stable.requests ? stable.errors / stable.requests : 0,
    memory: { ...memory, logWealth, strata, ...(looks ? { looks } : {}) },
  };
}

/**
 * The margins of a ladder's gated steps (their weights and holds, in order; the last one before
 * 100% last). The last step always carries `maxIncrease`. With the expected traffic known, each
 * earlier step gets the smallest margin its own and the earlier steps' requests can show for a
 * healthy candidate with probability 99.99% (so four steps together still pass ≥ 99.9%), never
 * below `maxIncrease`: tight at high traffic, "clearly broken" at low. Without it: geometric from
 * 10 × `maxIncrease` at the first step down to `maxIncrease`.
 */
export function ladderMargins(
  steps: { weight: number; holdMs: number }[],
  maxIncrease: number,
  alpha: number,
  traffic?: { requestsPerSecond: number; errorRate: number },
): { margin: number; expectedRequests?: number; shown?: number }[] {
  const last = steps.length - 1;
  let effective = 0;
  return steps.map((s, i) => {
    const geometric = last <= 0 || i === last ? maxIncrease : maxIncrease * 10 ** ((last - i) / last);
    // Org waves move orgs, not a share of requests: nothing to expect from the weight.
    if (!traffic || s.weight <= 0) return { margin: geometric };
    const canary = (traffic.requestsPerSecond * s.weight * s.holdMs) / 100_000;
    const stable = (traffic.requestsPerSecond * (100 - s.weight) * s.holdMs) / 100_000;
    effective += canary + stable > 0 ? (canary * stable) / (canary + stable) : 0;
    const shown = marginShown(effective, traffic.errorRate, alpha, 0.9999);
    return { margin: i === last ? maxIncrease : Math.max(maxIncrease, shown), expectedRequests: Math.round(canary), shown };
  });
}

/** Time between pass looks after a hold: a quarter of the hold, at least a second. */
export function lookSpacing(holdMs: number): number {
  return Math.max(1000, holdMs / 4);
}

/**
 * The margin of every step of a plan for one gate (undefined for steps without this gate's
 * ladder: no gates, or all traffic on the candidate). Steps written with a `margin` keep it; the
 * others get `ladderMargins` over the plan's gated steps and its measured traffic.
 */
export function planMargins(plan: Plan, gate: string, maxIncrease: number, alpha: number): (number | undefined)[] {
  const gated = plan.steps.filter((s) => s.weight < 100 && s.gates.includes(gate));
  const derived = ladderMargins(gated, maxIncrease, alpha, plan.traffic);
  return plan.steps.map((s) => {
    const i = gated.indexOf(s);
    return i < 0 ? undefined : (s.margin ?? derived[i]!.margin);
  });
}
