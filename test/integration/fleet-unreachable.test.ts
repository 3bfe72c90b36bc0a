/**
 * One region's nginx stopped in the middle of a step, on a fleet of three driven by the CLI: the
 * fleet holds (no region moves past the step), then rolls back the regions that answer; the
 * stopped one owes the rollback, `deploy status` says so, and the rollback is applied when it
 * returns — by the driver still retrying, or by `deploy resume --target` after the driver gave up.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { sameWeights } from '../../src/routers/router.js';
import { startFleetSandbox, type FleetSandbox } from '../helpers/fleet.js';
import { followEvents, jsonLines, sample, waitFor } from '../helpers/sandbox.js';

const STEPS = '    steps:\n      - { weight: 20, hold: 1s }\n      - { weight: 60, hold: 30s }\n      - { weight: 100 }\n';

/** Watch the regions' live share of v2 until `done` resolves; answers the largest seen per region. */
async function watchShares(fleet: FleetSandbox, names: string[], done: Promise<unknown>): Promise<Record<string, number>> {
  const most: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
  let over = false;
  void done.finally(() => (over = true));
  while (!over) {
    for (const r of fleet.regions.filter((x) => names.includes(x.name))) {
      const live = await r.router.read().catch(() => undefined);
      if (live) most[r.name] = Math.max(most[r.name]!, live.weights.v2 ?? 0);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return most;
}

describe('a region unreachable mid-step', () => {
  let fleet: FleetSandbox | undefined;
  afterEach(async () => {
    await fleet?.stop();
    fleet = undefined;
  });

  it('holds, rolls back the others after the timeout, shows the owed rollback, and `deploy resume --target eu` applies it once the region is back', async () => {
    fleet = await startFleetSandbox({ regions: ['eu', 'us', 'ap'], fleet: '  unreachableTimeout: 3s', steps: STEPS });
    const [eu] = fleet.regions;
    const run = fleet.deploy(['promote', '--to', 'v2', '-o', 'json']);
    const events = followEvents(run);
    await waitFor('step 1', () => events().some((e) => e.event === 'step'), 30_000);
    const stoppedAt = Date.now();
    await eu!.stopNginx();
    const most = watchShares(fleet, ['us', 'ap'], run);
    const result = await run;
    const elapsed = Date.now() - stoppedAt;
    // The others never moved past step 1 while eu was gone.
    expect(await most).toEqual({ us: 20, ap: 20 });
    expect(result.exitCode, result.stderr).toBe(1);
    expect(elapsed).toBeGreaterThanOrEqual(3_000);
    const errors = jsonLines(result.stdout).filter((e) => e.event === 'error').map((e) => e.message as string);
    expect(errors.some((m) => /eu failed: .*: eu owes this write/.test(m)), errors.join('\n')).toBe(true);
    for (const r of fleet.regions.slice(1)) expect(sameWeights((await r.router.read()).weights, { v1: 100 }), r.name).toBe(true);

    const statusRun = await fleet.deploy(['status', '-o', 'json']);
    expect(statusRun.exitCode, statusRun.stderr).toBe(0);
    const status = jsonLines(statusRun.stdout)[0] as { phase: string; intent?: { to: string; reason: string }; fleet: { target: string; error?: string; owes?: string; weights?: Record<string, number> }[] };
    expect(status.phase).toBe('failed');
    expect(status.intent).toMatchObject({ to: 'rolled_back', reason: expect.stringMatching(/^gate reachable@eu failed: eu's router has not answered for \ds/) });
    expect(status.fleet.map((t) => [t.target, t.error !== undefined, t.owes !== undefined])).toEqual([['eu', true, true], ['us', false, false], ['ap', false, false]]);
    const one = jsonLines((await fleet.deploy(['status', '--target', 'us', '-o', 'json'])).stdout)[0] as { fleet: { target: string }[] };
    expect(one.fleet.map((t) => t.target)).toEqual(['us']);
    const text = (await fleet.deploy(['status'])).stdout;
    expect(text).toMatch(/target {4}eu {2}unreachable: .* — owes rolled back \(v1 100%\) recorded at .*; `deploy resume` applies it once it answers/);

    // eu comes back on the table it last had (step 1), still owing the rollback.
    await eu!.startNginx();
    expect(sameWeights((await eu!.router.read()).weights, { v1: 80, v2: 20 })).toBe(true);
    // A repair of eu alone: us and ap already carry the rollback, so they are only read.
    const resume = await fleet.deploy(['resume', '--target', 'eu', '-o', 'json']);
    expect(resume.exitCode, resume.stderr).toBe(3);
    expect(jsonLines(resume.stdout).find((e) => e.event === 'rollback')).toMatchObject({ cause: 'gate', weights: { v1: 100 } });
    for (const r of fleet.regions) expect(await sample(r.listen, 200, 8), r.name).toEqual({ byVersion: { v1: 200 }, failed: 0 });
  });

  it('a driver still retrying the owed rollback applies it the moment the region answers', async () => {
    fleet = await startFleetSandbox({ regions: ['eu', 'us'], fleet: '  unreachableTimeout: 8s', steps: STEPS });
    const [eu, us] = fleet.regions;
    const run = fleet.deploy(['promote', '--to', 'v2', '-o', 'json']);
    const events = followEvents(run);
    await waitFor('step 1', () => events().some((e) => e.event === 'step'), 30_000);
    await eu!.stopNginx();
    // Once us is back on stable, the rollback is owed by eu alone.
    await waitFor('us rolled back', async () => sameWeights((await us!.router.read()).weights, { v1: 100 }), 30_000);
    await eu!.startNginx();
    const backAt = Date.now();
    const result = await run;
    expect(result.exitCode, result.stderr).toBe(3);
    expect(Date.now() - backAt).toBeLessThan(8_000);
    for (const r of fleet.regions) expect(await sample(r.listen, 200, 8), r.name).toEqual({ byVersion: { v1: 200 }, failed: 0 });
  });
});
