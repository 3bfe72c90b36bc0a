/**
 * The sandbox demo end to end, as `npm run demo` runs it: real nginx, Prometheus and sample
 * services, the product's default 0.1-point rule. The good release is promoted (its last
 * weighted step passing on +0.1 points), the bad one rolled back by its gate, with the time to
 * safety and the failed requests beyond stable's rate in the summary.
 */
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { DEPLOY, jsonLines } from '../helpers/sandbox.js';

describe('deploy demo', () => {
  it('promotes the good release on the 0.1-point rule and rolls the bad one back, reporting users harmed', { timeout: 300_000 }, async () => {
    const r = await execa(DEPLOY, ['demo', '--hold', '3s', '-o', 'json'], { reject: false, env: { CI: 'true' }, timeout: 300_000 });
    expect(r.exitCode, r.stderr.slice(-3000)).toBe(0);
    const events = jsonLines(r.stdout);
    const summary = events.find((e) => e.event === 'summary') as { goodExit: number; badExit: number; timeToSafetyMs: number; badRequests: number; excessFailures: number };
    expect([summary.goodExit, summary.badExit]).toEqual([0, 3]);
    expect(summary.timeToSafetyMs).toBeLessThan(10_000);
    // The gate's count of v3's failures beyond v2's rate, from Prometheus, against what the load saw.
    expect(summary.excessFailures).toBeGreaterThan(0);
    expect(Math.abs(summary.excessFailures - summary.badRequests)).toBeLessThanOrEqual(Math.max(15, 0.5 * summary.badRequests));
    // The good release's last weighted step passed on the default rule, +0.1 points.
    const passes = events.filter((e) => e.event === 'gate' && e.gate === 'errors' && e.verdict === 'passed') as { step: number; samples: { margin: number } }[];
    expect(passes.find((g) => g.step === 4)?.samples.margin).toBe(0.1);
    const rollback = events.find((e) => e.event === 'rollback') as { excessFailures: number; reason: string };
    expect(rollback.reason).toMatch(/^gate errors failed: v3 errors/);
    expect(rollback.excessFailures).toBe(summary.excessFailures);
  });
});
