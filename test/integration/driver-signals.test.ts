/**
 * SIGTERM and SIGINT stop a driver between writes within 2 s, on real nginx: the state is kept
 * (exit 130), the lock released, the live routing is the recorded one, and `deploy resume`
 * carries on from there.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { followEvents, startSandbox, waitFor, type Sandbox } from '../helpers/sandbox.js';

describe('a driver told to stop', () => {
  let sb: Sandbox;
  beforeAll(async () => {
    sb = await startSandbox('    steps:\n      - { weight: 10, hold: 10m }\n      - { weight: 100 }\n', '', { lease: '30s' });
  });
  afterAll(async () => {
    await sb?.stop();
  });

  it.each(['SIGTERM', 'SIGINT'] as const)('%s: stops within 2 s, keeps the state, releases the lock', async (signal) => {
    const driver = sb.deploy(signal === 'SIGTERM' ? ['promote', '--to', 'v2', '-o', 'json'] : ['resume', '-o', 'json']);
    const events = followEvents(driver);
    await waitFor('a hold', () => events().some((e) => e.event === 'hold'));
    const t0 = performance.now();
    driver.kill(signal);
    const done = await driver;
    expect(performance.now() - t0).toBeLessThan(2_000);
    expect(done.exitCode, done.stderr).toBe(130);
    const state = JSON.parse(await readFile(join(sb.dir, '.deploy', 'state.json'), 'utf8')) as { phase: string; weights: Record<string, number> };
    expect(state.phase).toBe('holding');
    expect((await sb.router.read()).weights).toEqual(state.weights);
    await expect(readFile(join(sb.dir, '.deploy', 'lock.json'), 'utf8')).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
