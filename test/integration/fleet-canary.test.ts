/**
 * One rollout across regions on this machine: per region two sample versions behind its own
 * nginx, driven by the CLI as one fleet. Lockstep and waves walk the ladder with every step live
 * where it should be before its hold (read from each region's nginx, not from the record); a
 * fault in one region's candidate rolls every region back, and real requests afterwards find
 * 100% stable everywhere.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { sameWeights } from '../../src/routers/router.js';
import { startLoad } from '../../src/sandbox/load.js';
import { startFleetSandbox, type FleetSandbox } from '../helpers/fleet.js';
import { followEvents, jsonLines, sample, waitFor } from '../helpers/sandbox.js';

type StepEvent = { event: 'step'; step: number; steps: number; weight: number; targets?: Record<string, number> };

/** Follow a driver's step events and, at each, read every region's live weights. */
async function walk(fleet: FleetSandbox, run: ReturnType<FleetSandbox['deploy']>, steps: number): Promise<{ step: StepEvent; live: Record<string, Record<string, number>> }[]> {
  const events = followEvents(run);
  const seen: { step: StepEvent; live: Record<string, Record<string, number>> }[] = [];
  for (let i = 0; i < steps; i++) {
    await waitFor(`step ${i + 1}`, () => events().filter((e) => e.event === 'step').length > i, 60_000);
    const step = events().filter((e) => e.event === 'step')[i] as StepEvent;
    const live = Object.fromEntries(await Promise.all(fleet.regions.map(async (r) => [r.name, (await r.router.read()).weights] as const)));
    seen.push({ step, live });
  }
  return seen;
}

describe('a fleet rollout through the CLI', () => {
  let fleet: FleetSandbox | undefined;
  afterEach(async () => {
    await fleet?.stop();
    fleet = undefined;
  });

  it('lockstep over 2 regions: each step is live in both before its hold, and the candidate ends with all traffic', async () => {
    fleet = await startFleetSandbox({ regions: ['eu', 'us'], fleet: '  strategy: lockstep', steps: '    steps:\n      - { weight: 10, hold: 1500ms }\n      - { weight: 50, hold: 1500ms }\n      - { weight: 100 }\n' });
    const run = fleet.deploy(['promote', '--to', 'v2', '-o', 'json']);
    const walked = await walk(fleet, run, 3);
    const result = await run;
    expect(result.exitCode, result.stderr).toBe(0);
    expect(walked.map((w) => [w.step.step, w.step.steps])).toEqual([[1, 3], [2, 3], [3, 3]]);
    for (const { step, live } of walked) {
      for (const r of fleet.regions) expect(sameWeights(live[r.name]!, { v1: 100 - step.weight, v2: step.weight }), `${r.name} at step ${step.step}: ${JSON.stringify(live)}`).toBe(true);
    }
    for (const r of fleet.regions) expect(await sample(r.listen, 200, 8)).toEqual({ byVersion: { v2: 200 }, failed: 0 });
    const status = jsonLines((await fleet.deploy(['status', '-o', 'json'])).stdout)[0] as { phase: string; fleet?: { target: string; generation: number; weights: Record<string, number> }[] };
    expect(status.phase).toBe('promoted');
    expect(status.fleet?.map((t) => [t.target, t.weights])).toEqual([['eu', { v1: 0, v2: 100 }], ['us', { v1: 0, v2: 100 }]]);
  });

  it('waves over 3 regions: one region through the ladder and its bake, then the next, the others untouched meanwhile', async () => {
    fleet = await startFleetSandbox({ regions: ['eu', 'us', 'ap'], fleet: '  strategy: waves\n  order: [us, eu, ap]\n  bake: 1s', steps: '    steps:\n      - { weight: 20, hold: 1s }\n      - { weight: 100 }\n' });
    const run = fleet.deploy(['promote', '--to', 'v2', '-o', 'json']);
    const walked = await walk(fleet, run, 6);
    const result = await run;
    expect(result.exitCode, result.stderr).toBe(0);
    expect(walked.map((w) => w.step.targets)).toEqual([
      { us: 20, eu: 0, ap: 0 },
      { us: 100, eu: 0, ap: 0 },
      { us: 100, eu: 20, ap: 0 },
      { us: 100, eu: 100, ap: 0 },
      { us: 100, eu: 100, ap: 20 },
      { us: 100, eu: 100, ap: 100 },
    ]);
    for (const { step, live } of walked) {
      for (const r of fleet.regions) {
        const share = step.targets![r.name]!;
        expect(sameWeights(live[r.name]!, { v1: 100 - share, v2: share }), `${r.name} at step ${step.step}: ${JSON.stringify(live)}`).toBe(true);
      }
    }
    for (const r of fleet.regions) expect(await sample(r.listen, 200, 8)).toEqual({ byVersion: { v2: 200 }, failed: 0 });
  });

  it('a fault in one region\'s candidate rolls back all 3 regions, the rollback names the region, and real requests then find 100% stable everywhere', async () => {
    fleet = await startFleetSandbox({
      regions: ['eu', 'us', 'ap'],
      fleet: '  strategy: lockstep',
      prometheus: true,
      extra: 'prometheus:\n  url: PROMETHEUS_URL\n  timeout: 1s\ngates:\n  - name: errors\n    type: errorRate\n    maxIncrease: 5%\n',
      steps: '    steps:\n      - { weight: 50, hold: 120s }\n      - { weight: 100 }\n',
    });
    const loads = fleet.regions.map((r) => startLoad(`http://${r.listen}/`, { clients: 4, ratePerSecond: 80 }));
    try {
      const run = fleet.deploy(['promote', '--to', 'v2', '-o', 'json']);
      const events = followEvents(run);
      await waitFor('step 50%', () => events().some((e) => e.event === 'step'), 60_000);
      // The fault starts once us's gate has judged the healthy candidate at least once.
      await waitFor("a check of us's gate", () => events().some((e) => e.event === 'gate' && e.gate === 'errors@us'), 60_000);
      const faultAt = Date.now();
      fleet.regions.find((r) => r.name === 'us')!.versions.v2.setFault({ errorRate: 0.5 });
      const result = await run;
      const safeAfterMs = Date.now() - faultAt;
      expect(result.exitCode, result.stderr).toBe(3);
      const rollback = jsonLines(result.stdout).find((e) => e.event === 'rollback') as { cause: string; reason: string; target?: string } | undefined;
      expect(rollback).toMatchObject({ cause: 'gate', target: 'us' });
      expect(rollback?.reason).toMatch(/^gate errors@us failed: v2 errors [\d.]+% vs v1 [\d.]+%/);
      expect(safeAfterMs).toBeLessThan(20_000);
      for (const r of fleet.regions) expect(await sample(r.listen, 300, 8), r.name).toEqual({ byVersion: { v1: 300 }, failed: 0 });
    } finally {
      await Promise.all(loads.map((l) => l.stop()));
    }
  });
});
