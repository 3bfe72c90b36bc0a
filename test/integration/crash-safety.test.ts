/**
 * Crash safety on real nginx: the driving process is killed with SIGKILL at random moments, over
 * and over. After each kill the recorded state must be consistent, the live weights must be the
 * recorded ones (or, with a write in flight, the recorded intent's), and the audit chain must
 * verify; `deploy resume` must then carry on to the end.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sameWeights } from '../../src/routers/router.js';
import { jsonLines, startSandbox, type Sandbox } from '../helpers/sandbox.js';
import { leaseFree as leaseFreeOf, mulberry32 } from '../helpers/crash.js';

const KILLS = 20;
const PHASES = ['none', 'pending', 'progressing', 'holding', 'paused', 'promoted', 'rolled_back', 'aborted', 'failed'];

describe('SIGKILL at random moments of a canary', () => {
  let sb: Sandbox;
  beforeAll(async () => {
    sb = await startSandbox(`    steps:
      - weight: 1
        hold: 150ms
      - weight: 5
        hold: 150ms
      - weight: 25
        hold: 150ms
      - weight: 50
        hold: 150ms
      - weight: 100
`);
  });
  afterAll(async () => {
    await sb?.stop();
  });

  /** Wait until no live lease is held (a killed driver's lease runs out after 1 s). */
  const leaseFree = () => leaseFreeOf(join(sb.dir, '.deploy', 'lock.json'));

  async function status(): Promise<Record<string, unknown> & { phase: string }> {
    const r = await sb.deploy(['status', '-o', 'json']);
    expect(r.exitCode, r.stderr).toBe(0);
    return jsonLines(r.stdout)[0] as Record<string, unknown> & { phase: string };
  }

  const phasesAfterKills: string[] = [];

  async function expectConsistent(context: string): Promise<void> {
    const s = await status();
    phasesAfterKills.push(`${s.phase}${s.intent ? '+intent' : ''}`);
    expect(PHASES, context).toContain(s.phase);
    if (s.phase === 'none') return;
    const plan = s.plan as { steps: unknown[] };
    // Status counts steps from 1 (0 before the first is live).
    expect(s.step as number, context).toBeGreaterThanOrEqual(0);
    expect(s.step as number, context).toBeLessThanOrEqual(plan.steps.length);
    const live = await sb.router.read();
    const intent = s.intent as { weights: Record<string, number> } | undefined;
    const recorded = s.weights as Record<string, number>;
    const ok = sameWeights(live.weights, recorded) || (intent !== undefined && sameWeights(live.weights, intent.weights));
    expect(ok, `${context}: live ${JSON.stringify(live.weights)} vs recorded ${JSON.stringify(recorded)} / intent ${JSON.stringify(intent?.weights)} (phase ${s.phase})`).toBe(true);
    const history = await sb.deploy(['history', '-o', 'json']);
    const records = jsonLines(history.stdout);
    expect(records.at(-1), context).toMatchObject({ event: 'verify', ok: true });
    // Progressing without an intent only between settling an intent whose write may have gone
    // live (its weights read back and recorded, as checked above) and recording the next one.
    if (s.phase === 'progressing' && intent === undefined) expect(records.filter((r) => r.event === 'audit').at(-1)?.action, context).toBe('intent.superseded');
  }

  it(`stays consistent across ${KILLS} kills and then finishes`, async () => {
    const random = mulberry32(Number(process.env.CRASH_SEED ?? 20261122));
    let candidate = 'v2';
    for (let kill = 1; kill <= KILLS; kill++) {
      await leaseFree();
      const s = await status();
      const over = ['promoted', 'rolled_back', 'aborted', 'none'].includes(s.phase);
      if (over && s.phase === 'promoted') candidate = candidate === 'v2' ? 'v1' : 'v2';
      const args = over ? ['promote', '--to', candidate] : kill % 5 === 0 ? ['abort'] : ['resume'];
      const child = sb.deploy(args);
      const delayMs = 60 + Math.floor(random() * 700);
      await new Promise((r) => setTimeout(r, delayMs));
      child.kill('SIGKILL');
      const result = await child;
      const context = `kill ${kill}: \`deploy ${args.join(' ')}\` after ${delayMs} ms (exit ${result.exitCode ?? result.signal})`;
      await expectConsistent(context);
    }
    // The kills must have landed mid-rollout, not only between rollouts, or this proved nothing.
    const midRollout = phasesAfterKills.filter((p) => !['promoted', 'aborted', 'rolled_back'].includes(p));
    expect(midRollout.length, phasesAfterKills.join(', ')).toBeGreaterThanOrEqual(KILLS / 2);
    await leaseFree();
    const s = await status();
    if (!['promoted', 'rolled_back', 'aborted'].includes(s.phase)) {
      const resume = await sb.deploy(['resume']);
      expect([0, 3], resume.stderr).toContain(resume.exitCode);
    }
    const end = await status();
    expect(['promoted', 'aborted']).toContain(end.phase);
    expect((end as { intent?: unknown }).intent).toBeUndefined();
    expect(sameWeights((await sb.router.read()).weights, end.weights as Record<string, number>)).toBe(true);
    await expectConsistent('after the final resume');
  });
});
