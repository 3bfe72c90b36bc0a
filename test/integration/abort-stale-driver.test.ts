/**
 * The undone-abort race on real nginx: a driver stalls (SIGSTOP) mid-hold, its lease runs out,
 * `deploy abort` takes over and sends everything back to stable. When the stalled driver wakes,
 * its hold is over and it would enter the next step: it must stop without writing the router or
 * recording anything over the abort.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { followEvents, jsonLines, sample, startSandbox, waitFor, type Sandbox } from '../helpers/sandbox.js';

describe('an abort over a stalled driver', () => {
  let sb: Sandbox;
  beforeAll(async () => {
    sb = await startSandbox('    steps:\n      - { weight: 25, hold: 1500ms }\n      - { weight: 50, hold: 10s }\n      - { weight: 100 }\n');
  });
  afterAll(async () => {
    await sb?.stop();
  });

  it('stands: the old driver wakes, writes nothing, records nothing and exits 5', async () => {
    const driver = sb.deploy(['promote', '--to', 'v2', '-o', 'json']);
    const events = followEvents(driver);
    await waitFor('the 25% step', () => events().some((e) => e.event === 'step'));
    driver.kill('SIGSTOP');
    // Until its lease and its hold are both over: on waking, the driver's next move is step 2.
    const recorded = async (name: string) => JSON.parse(await readFile(join(sb.dir, '.deploy', name), 'utf8')) as Record<string, string>;
    await waitFor('the lease and the hold to run out', async () => {
      const [lock, state] = await Promise.all([recorded('lock.json'), recorded('state.json')]);
      return Date.parse(lock.leaseExpiresAt!) < Date.now() && Date.parse(state.holdUntil!) < Date.now();
    });
    const abort = await sb.deploy(['abort', '--reason', 'stalled driver drill', '-o', 'json']);
    expect(abort.exitCode, abort.stderr).toBe(0);
    expect((await sb.router.read()).weights).toEqual({ v1: 100 });
    const generation = (await sb.router.read()).generation;

    driver.kill('SIGCONT');
    const done = await driver;
    expect(done.exitCode, done.stderr).toBe(5);
    expect(done.stderr).toMatch(/lock lost|written by another driver/);
    expect(jsonLines(done.stdout).some((e) => e.event === 'step' && e.weight === 50)).toBe(false);

    expect(await sb.router.read()).toMatchObject({ weights: { v1: 100 }, generation });
    const state = JSON.parse(await readFile(join(sb.dir, '.deploy', 'state.json'), 'utf8')) as { phase: string; intent?: unknown };
    expect([state.phase, state.intent]).toEqual(['aborted', undefined]);
    const audit = (await readFile(join(sb.dir, '.deploy', 'audit.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { action: string });
    const after = audit.slice(audit.findIndex((r) => r.action === 'rollout.aborted') + 1);
    expect(after.map((r) => r.action)).not.toContain('step.entered');
    const s = await sample(sb.listen, 300);
    expect([s.byVersion.v1, s.failed]).toEqual([300, 0]);
  });
});
