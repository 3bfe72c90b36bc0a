/**
 * Crash safety of a fleet on real nginx: the driver of a three-region rollout in waves (each
 * region on its own share) is killed with SIGKILL at random moments, over and over. After each
 * kill every region's live routing must be what the record says it carries, or what the recorded
 * intent writes to it, and the audit chain must verify; `deploy resume` then finishes.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sameWeights, type Weights } from '../../src/routers/router.js';
import { startFleetSandbox, type FleetSandbox } from '../helpers/fleet.js';
import { jsonLines } from '../helpers/sandbox.js';
import { leaseFree as leaseFreeOf, mulberry32 } from '../helpers/crash.js';

const KILLS = 12;
const STEPS = '    steps:\n      - { weight: 10, hold: 150ms }\n      - { weight: 50, hold: 150ms }\n      - { weight: 100 }\n';

type Status = { phase: string; weights?: Weights; targets?: Record<string, Weights>; intent?: { weights: Weights; targets?: Record<string, Weights> }; step?: number };

describe('SIGKILL at random moments of a fleet rollout in waves', () => {
  let fleet: FleetSandbox;
  beforeAll(async () => {
    fleet = await startFleetSandbox({ regions: ['eu', 'us', 'ap'], fleet: '  strategy: waves\n  bake: 150ms\n  unreachableTimeout: 10s', steps: STEPS });
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  /** Wait until no live lease is held (a killed driver's lease runs out after 1 s). */
  const leaseFree = () => leaseFreeOf(join(fleet.dir, '.deploy', 'lock.json'));

  async function status(): Promise<Status> {
    const r = await fleet.deploy(['status', '-o', 'json']);
    expect(r.exitCode, r.stderr).toBe(0);
    return jsonLines(r.stdout)[0] as Status;
  }

  const seen: string[] = [];

  /** Every region carries its recorded weights or its intent's. */
  async function expectConsistent(context: string): Promise<void> {
    const s = await status();
    seen.push(`${s.phase}${s.intent ? '+intent' : ''}@${s.step}`);
    if (s.phase === 'none') return;
    for (const r of fleet.regions) {
      const live = (await r.router.read()).weights;
      const recorded = s.targets?.[r.name] ?? s.weights!;
      const intended = s.intent ? (s.intent.targets?.[r.name] ?? s.intent.weights) : undefined;
      const ok = sameWeights(live, recorded) || (intended !== undefined && sameWeights(live, intended));
      expect(ok, `${context}: ${r.name} live ${JSON.stringify(live)} vs recorded ${JSON.stringify(recorded)} / intent ${JSON.stringify(intended)} (phase ${s.phase})`).toBe(true);
    }
    const history = await fleet.deploy(['history', '-o', 'json']);
    expect(jsonLines(history.stdout).at(-1), context).toMatchObject({ event: 'verify', ok: true });
  }

  it(`stays consistent in every region across ${KILLS} kills and then finishes`, async () => {
    const random = mulberry32(Number(process.env.CRASH_SEED ?? 20261129));
    let candidate = 'v2';
    for (let kill = 1; kill <= KILLS; kill++) {
      await leaseFree();
      const s = await status();
      const over = ['promoted', 'rolled_back', 'aborted', 'none'].includes(s.phase);
      if (over && s.phase === 'promoted') candidate = candidate === 'v2' ? 'v1' : 'v2';
      const args = over ? ['promote', '--to', candidate] : kill % 5 === 0 ? ['abort'] : ['resume'];
      const child = fleet.deploy(args);
      const delayMs = 150 + Math.floor(random() * 1200);
      await new Promise((r) => setTimeout(r, delayMs));
      child.kill('SIGKILL');
      const result = await child;
      await expectConsistent(`kill ${kill}: \`deploy ${args.join(' ')}\` after ${delayMs} ms (exit ${result.exitCode ?? result.signal})`);
    }
    const midRollout = seen.filter((p) => !/^(promoted|aborted|rolled_back)/.test(p));
    expect(midRollout.length, seen.join(', ')).toBeGreaterThanOrEqual(KILLS / 2);
    console.info(`after each kill: ${seen.join(', ')}`);
    await leaseFree();
    const s = await status();
    if (!['promoted', 'rolled_back', 'aborted'].includes(s.phase)) {
      const resume = await fleet.deploy(['resume']);
      expect([0, 3], `${resume.stderr}\nafter each kill: ${seen.join(', ')}`).toContain(resume.exitCode);
    }
    const end = await status();
    expect(['promoted', 'aborted']).toContain(end.phase);
    expect(end.intent).toBeUndefined();
    await expectConsistent('after the final resume');
  }, 300_000);
});
