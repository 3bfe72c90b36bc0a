/**
 * The CLI driving a canary through a real nginx: every step's traffic share measured with real
 * requests, abort from a second process, and the lock refusing a second driver.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

// Each step holds long enough for its 2,000-request sample on a busy machine.
vi.setConfig({ testTimeout: 180_000 });
import { jsonLines, sample, startSandbox, type Sandbox } from '../helpers/sandbox.js';

const STEPS = `    steps:
      - weight: 1
        hold: 5s
      - weight: 5
        hold: 5s
      - weight: 25
        hold: 5s
      - weight: 50
        hold: 5s
      - weight: 100
`;

/** |observed − p| within 4.5 binomial standard deviations (exact at 0 and 100%). */
function expectShare(observed: number, n: number, percent: number): void {
  const p = percent / 100;
  const tolerance = 4.5 * Math.sqrt((p * (1 - p)) / n);
  expect(Math.abs(observed / n - p), `observed ${observed}/${n}, expected ${percent}%`).toBeLessThanOrEqual(tolerance);
}

describe('deploy promote on real nginx', () => {
  let sb: Sandbox;
  beforeAll(async () => {
    sb = await startSandbox(STEPS);
  });
  afterAll(async () => {
    await sb?.stop();
  });

  it('walks 1 → 5 → 25 → 50 → 100 with each share measured by 2,000 real requests', async () => {
    const run = sb.deploy(['promote', '--to', 'v2', '-o', 'json']);
    const shares: { weight: number; v2: number; n: number }[] = [];
    const seen = new Set<number>();
    let buffer = '';
    run.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
    });
    // Measure each step while it holds: poll the driver's output for the step event.
    for (const weight of [1, 5, 25, 50]) {
      const deadline = Date.now() + 30_000;
      while (!jsonLines(buffer).some((e) => e.event === 'step' && e.weight === weight)) {
        if (Date.now() > deadline) throw new Error(`no step ${weight} in ${buffer}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      seen.add(weight);
      const before = await sb.router.read();
      const s = await sample(sb.listen, 2000, 32);
      const after = await sb.router.read();
      // The whole sample must fall inside this step's generation, or it measured two steps.
      expect(before.weights.v2).toBe(weight);
      expect(after.generation).toBe(before.generation);
      expect(s.failed).toBe(0);
      shares.push({ weight, v2: s.byVersion.v2 ?? 0, n: 2000 });
    }
    const result = await run;
    expect(result.exitCode, result.stderr).toBe(0);
    const events = jsonLines(result.stdout);
    expect(events.filter((e) => e.event === 'step').map((e) => e.weight)).toEqual([1, 5, 25, 50, 100]);
    expect(events.at(-1)).toMatchObject({ event: 'done', phase: 'promoted', exitCode: 0 });
    expect(seen.size).toBe(4);
    expect(shares.map((s) => s.weight)).toEqual([1, 5, 25, 50]);
    for (const s of shares) expectShare(s.v2, s.n, s.weight);
    const after = await sample(sb.listen, 2000, 32);
    expect(after).toEqual({ byVersion: { v2: 2000 }, failed: 0 });

    const history = await sb.deploy(['history']);
    expect(history.exitCode).toBe(0);
    expect(history.stdout).toMatch(/chain verified: \d+ records/);
  });

  it('abort from a second process sends 100% back to stable', async () => {
    sb.setSteps(`    steps:
      - weight: 25
        hold: 60s
      - weight: 100
`);
    const run = sb.deploy(['promote', '--to', 'v1', '-o', 'json']);
    const deadline = Date.now() + 30_000;
    while ((await sb.router.read()).weights.v1 !== 25) {
      if (Date.now() > deadline) throw new Error('the canary never reached 25%');
      await new Promise((r) => setTimeout(r, 20));
    }
    const during = await sample(sb.listen, 2000, 32);
    expectShare(during.byVersion.v1 ?? 0, 2000, 25);

    const second = await sb.deploy(['promote', '--to', 'v1']);
    expect(second.exitCode).toBe(5);
    expect(second.stderr).toMatch(/locked by .+ \(pid \d+ on .+\) since/);

    const abort = await sb.deploy(['abort', '--reason', 'lab results look wrong']);
    expect(abort.exitCode, abort.stderr).toBe(0);
    const driver = await run;
    expect(driver.exitCode).toBe(3);
    expect(jsonLines(driver.stdout)).toContainEqual(expect.objectContaining({ event: 'rollback', cause: 'abort', reason: 'lab results look wrong' }));
    expect(await sample(sb.listen, 2000, 32)).toEqual({ byVersion: { v2: 2000 }, failed: 0 });

    const status = await sb.deploy(['status', '-o', 'json']);
    expect(jsonLines(status.stdout)[0]).toMatchObject({ phase: 'aborted', weights: { v2: 100 } });
  });
});
