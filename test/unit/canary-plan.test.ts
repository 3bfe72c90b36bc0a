import { describe, expect, it } from 'vitest';
import { planCanary } from '../../strategies/canary.js';

describe('canary plan', () => {
  it('defaults to 1% (30m) → 5% → 25% → 50% → 100%', () => {
    const plan = planCanary();
    expect(plan.steps.map((s) => [s.weight, s.holdMs])).toEqual([
      [1, 1_800_000],
      [5, 600_000],
      [25, 600_000],
      [50, 600_000],
      [100, 0],
    ]);
  });

  it('appends a final 100% step when the ladder stops short', () => {
    const plan = planCanary({ steps: [{ weight: 10, hold: 1000 }, { weight: 50, pause: true }], defaultHold: 2000 });
    expect(plan.steps).toEqual([
      { index: 0, weight: 10, holdMs: 1000, pause: false, gates: [] },
      { index: 1, weight: 50, holdMs: 2000, pause: true, gates: [] },
      { index: 2, weight: 100, holdMs: 0, pause: false, gates: [] },
    ]);
  });

  it('checks gates on every held step but not on a final step without a bake', () => {
    const plan = planCanary({ steps: [{ weight: 5 }, { weight: 100, hold: 60_000 }] }, ['error-rate']);
    expect(plan.steps.map((s) => s.gates)).toEqual([['error-rate'], ['error-rate']]);
    expect(planCanary({ steps: [{ weight: 5 }] }, ['error-rate']).steps[1]?.gates).toEqual([]);
  });
});
