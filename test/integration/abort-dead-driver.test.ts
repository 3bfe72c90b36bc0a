/**
 * `deploy abort` after the terminal driving a rollout was closed: the driver is killed with
 * SIGKILL on this host, its lease still has most of 30 s to run, and the abort must not wait for
 * it. `deploy status` says the driver is gone; the abort takes over at once and real requests
 * through nginx then all reach stable.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { followEvents, jsonLines, sample, startSandbox, waitFor, type Sandbox } from '../helpers/sandbox.js';

describe('deploy abort with a dead driver on this host', () => {
  let sb: Sandbox;
  beforeAll(async () => {
    sb = await startSandbox('    steps:\n      - { weight: 25, hold: 10m }\n      - { weight: 100 }\n', '', { lease: '30s' });
  });
  afterAll(async () => {
    await sb?.stop();
  });

  it('acts at once: done in under 2 s, all traffic on stable', async () => {
    const driver = sb.deploy(['promote', '--to', 'v2', '-o', 'json']);
    const events = followEvents(driver);
    await waitFor('the 25% step', () => events().some((e) => e.event === 'step'));
    driver.kill('SIGKILL');
    await driver;
    expect((await sb.router.read()).weights).toEqual({ v1: 75, v2: 25 });

    const status = await sb.deploy(['status', '-o', 'json']);
    const shown = jsonLines(status.stdout)[0] as { driver: unknown; driverGone?: { pid: number } };
    expect(shown.driver).toBeNull();
    expect(shown.driverGone?.pid).toBe(driver.pid);

    const t0 = performance.now();
    const abort = await sb.deploy(['abort', '--reason', 'incident 4711', '-o', 'json']);
    const ms = performance.now() - t0;
    expect(abort.exitCode, abort.stderr).toBe(0);
    expect(ms).toBeLessThan(2_000);
    expect(jsonLines(abort.stdout).at(-1)).toMatchObject({ event: 'abort', phase: 'aborted', weights: { v1: 100 }, reason: 'incident 4711' });
    const s = await sample(sb.listen, 500);
    expect([s.byVersion.v1, s.failed]).toEqual([500, 0]);
  });
});
