/**
 * The live path: real nginx in front of two sample versions, real Prometheus scraping them every
 * second, and the CLI driving a canary whose gates read Prometheus. A fault injected into the
 * canary is rolled back by itself; Prometheus killed mid-hold holds the step until it is back.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startLoad } from '../../src/sandbox/load.js';
import { followEvents, jsonLines, sample, startSandbox, waitFor, type Sandbox } from '../helpers/sandbox.js';

const GATES = `prometheus:
  url: PROMETHEUS_URL
  timeout: 1s
gates:
  - name: errors
    type: errorRate
    maxIncrease: 5%
`;

describe('gates on the live path', () => {
  let sb: Sandbox | undefined;
  afterEach(async () => {
    await sb?.stop();
    sb = undefined;
  });

  it('a fault injected into the canary is rolled back by itself, and traffic is 100% stable after', async () => {
    sb = await startSandbox(`    steps:
      - weight: 50
        hold: 60s
      - weight: 100
`, GATES, { prometheus: true });
    const load = startLoad(`http://${sb.listen}/`, { clients: 8, ratePerSecond: 200 });
    try {
      const run = sb.deploy(['promote', '--to', 'v2', '-o', 'json']);
      const events = followEvents(run);
      await waitFor('step 50%', () => events().some((e) => e.event === 'step'));
      await new Promise((r) => setTimeout(r, 2000));
      const faultAt = Date.now();
      sb.versions.v2!.setFault({ errorRate: 0.5 });
      const result = await run;
      const safeAfterMs = Date.now() - faultAt;
      expect(result.exitCode, result.stderr).toBe(3);
      const final = jsonLines(result.stdout);
      const rollback = final.find((e) => e.event === 'rollback') as { cause: string; reason: string } | undefined;
      expect(rollback?.cause).toBe('gate');
      expect(rollback?.reason).toMatch(/^gate errors failed: v2 errors [\d.]+% vs v1 [\d.]+%/);
      expect(final.some((e) => e.event === 'gate' && e.verdict === 'failed')).toBe(true);
      expect(safeAfterMs).toBeLessThan(15_000);
      expect(await sample(sb.listen, 1000, 16)).toEqual({ byVersion: { v1: 1000 }, failed: 0 });
      const history = await sb.deploy(['history', '-o', 'json']);
      const records = jsonLines(history.stdout);
      const rolledBack = records.find((r) => r.action === 'rollout.rolled_back') as { detail: { gates: { gate: string; queries: string[]; samples: { canary: number } }[] } };
      expect(rolledBack.detail.gates[0]).toMatchObject({ gate: 'errors', verdict: 'failed' });
      expect(rolledBack.detail.gates[0]!.queries[0]).toMatch(/http_requests_total\{version="v2"\}/);
      expect(rolledBack.detail.gates[0]!.samples.canary).toBeGreaterThan(0);
      expect(records.at(-1)).toMatchObject({ event: 'verify', ok: true });
    } finally {
      await load.stop();
    }
  });

  it('Prometheus killed mid-hold: the gate errors, the step holds, and it recovers when Prometheus is back', async () => {
    sb = await startSandbox(`    inconclusive: { after: 2m, action: pause }
    steps:
      - weight: 50
        hold: 6s
      - weight: 100
`, GATES, { prometheus: true });
    const load = startLoad(`http://${sb.listen}/`, { clients: 8, ratePerSecond: 200 });
    try {
      const run = sb.deploy(['promote', '--to', 'v2', '-o', 'json']);
      const events = followEvents(run);
      await waitFor('step 50%', () => events().some((e) => e.event === 'step'));
      const stepAt = Date.now();
      sb.prometheus!.kill();
      await sb.prometheus!.exited;
      await waitFor('a gate error', () => events().some((e) => e.event === 'gate' && e.verdict === 'error'));
      // Well past the 6 s hold the step must still be at 50%.
      await new Promise((r) => setTimeout(r, Math.max(0, stepAt + 9_000 - Date.now())));
      expect((await sb.router.read()).weights).toEqual({ v1: 50, v2: 50 });
      expect(events().filter((e) => e.event === 'step')).toHaveLength(1);
      await sb.restartPrometheus();
      const result = await run;
      expect(result.exitCode, result.stderr).toBe(0);
      const gates = jsonLines(result.stdout).filter((e) => e.event === 'gate');
      expect(gates.some((e) => e.verdict === 'error' && /unreachable/i.test(String(e.reason)))).toBe(true);
      expect(gates.at(-1)).toMatchObject({ verdict: 'passed' });
      expect(jsonLines(result.stdout).at(-1)).toMatchObject({ event: 'done', phase: 'promoted' });
    } finally {
      await load.stop();
    }
  });
});
