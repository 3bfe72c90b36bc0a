import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EngineEvent } from '../../src/engine/events.js';
import { type EngineDeps, type GateRunner, startRollout, tick, unpause } from '../../src/engine/machine.js';
import type { RolloutState } from '../../src/engine/state.js';
import type { GateResult, Verdict } from '../../src/gates/types.js';
import { LocalStateStore } from '../../src/state/local/store.js';
import { planCanary } from '../../strategies/canary.js';
import { engineHarness, FakeRouter, type ManualClock } from '../helpers/fakes.js';

/** A gate runner that answers whatever verdict the test sets. */
class ScriptedGates implements GateRunner {
  verdict: Verdict = 'inconclusive';
  calls = 0;
  async evaluate(_s: RolloutState, names: string[], atMs: number): Promise<GateResult[]> {
    this.calls += 1;
    return names.map((gate) => ({ gate, type: 'errorRate', verdict: this.verdict, queries: ['q'], reason: `scripted ${this.verdict}`, at: new Date(atMs).toISOString() }));
  }
}

describe('gates in the rollout engine', () => {
  let clock: ManualClock;
  let gates: ScriptedGates;
  let store: LocalStateStore<RolloutState>;
  let events: EngineEvent[];
  let deps: EngineDeps;
  let dispose: () => void;

  beforeEach(() => {
    gates = new ScriptedGates();
    ({ clock, store, events, deps, dispose } = engineHarness(new FakeRouter(), { gates }));
  });
  afterEach(() => dispose());

  const start = (action: 'pause' | 'rollback' = 'pause') =>
    startRollout(
      { service: 'patient-api', stable: 'v1', candidate: 'v2', plan: planCanary({ steps: [{ weight: 5, hold: 60_000 }, { weight: 100 }], inconclusive: { after: 120_000, action } }, ['errors']) },
      deps,
    );

  it('a failed gate rolls back at once, mid-hold, with the evidence in the audit log', async () => {
    let s = await tick(await start(), deps);
    gates.verdict = 'failed';
    clock.now += 5_000;
    s = await tick(s, deps);
    expect([s.phase, s.weights]).toEqual(['rolled_back', { v1: 100 }]);
    expect(s.outcome?.reason).toBe('gate errors failed: scripted failed');
    const audit = await store.audit.read();
    const rolledBack = audit.find((r) => r.action === 'rollout.rolled_back');
    expect(rolledBack?.detail).toMatchObject({ weights: { v1: 100 }, gates: [{ gate: 'errors', verdict: 'failed', queries: ['q'] }] });
    expect(audit.some((r) => r.action === 'gate.verdict' && r.detail?.verdict === 'failed')).toBe(true);
    expect(events.filter((e) => e.event === 'rollback')).toHaveLength(1);
  });

  it('never promotes on inconclusive: holds past the hold, then pauses', async () => {
    let s = await tick(await start(), deps);
    clock.now += 60_000;
    s = await tick(s, deps);
    expect([s.phase, s.step]).toEqual(['holding', 0]); // hold over, gates inconclusive
    clock.now += 119_000;
    s = await tick(s, deps);
    expect(s.phase).toBe('holding');
    clock.now += 1_000;
    s = await tick(s, deps);
    expect([s.phase, s.paused?.reason, s.weights]).toEqual(['paused', 'inconclusive', { v1: 95, v2: 5 }]);
    // resume gives the gates another limit; a pass then moves on
    s = await unpause(s, 'resume', deps);
    gates.verdict = 'passed';
    s = await tick(s, deps);
    expect([s.phase, s.step, s.weights]).toEqual(['holding', 1, { v1: 0, v2: 100 }]);
  });

  it('rolls back instead when the policy says so', async () => {
    let s = await tick(await start('rollback'), deps);
    clock.now += 180_000;
    s = await tick(s, deps);
    expect(s.phase).toBe('rolled_back');
    expect(s.outcome?.reason).toMatch(/^gates did not pass within 180s: errors inconclusive/);
  });

  it('a gate error (Prometheus down) holds the step; it advances once the gate passes', async () => {
    let s = await tick(await start(), deps);
    gates.verdict = 'error';
    clock.now += 70_000;
    s = await tick(s, deps);
    expect([s.phase, s.step]).toEqual(['holding', 0]);
    gates.verdict = 'passed';
    clock.now += 5_000;
    s = await tick(s, deps);
    expect([s.phase, s.step]).toEqual(['holding', 1]);
  });

  it('a pass before the hold is over still waits for the hold', async () => {
    let s = await tick(await start(), deps);
    gates.verdict = 'passed';
    clock.now += 30_000;
    s = await tick(s, deps);
    expect([s.phase, s.step]).toEqual(['holding', 0]);
    clock.now += 30_000;
    s = await tick(s, deps);
    expect(s.step).toBe(1);
  });

  it('keeps what a gate carries between checks in the stored state, across steps, and never in events or the audit log', async () => {
    const seen: unknown[] = [];
    deps.gates = {
      async evaluate(state, names, atMs) {
        const before = state.gateMemory?.errors as { checks: number } | undefined;
        seen.push(before);
        const memory = { checks: (before?.checks ?? 0) + 1 };
        return names.map((gate) => ({ gate, type: 'errorRate', verdict: 'passed', queries: ['q'], reason: 'ok', at: new Date(atMs).toISOString(), memory }));
      },
    };
    const plan = planCanary({ steps: [{ weight: 5, hold: 20_000 }, { weight: 50, hold: 20_000 }, { weight: 100 }] }, ['errors']);
    let s = await tick(await startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v2', plan }, deps), deps);
    for (let i = 0; i < 3; i++) {
      clock.now += 10_000;
      s = await tick(s, deps);
    }
    expect(s.step).toBe(1);
    // A driver that starts over reads it back from the store.
    const stored = (await store.load())!;
    expect(stored.gateMemory).toEqual({ errors: { checks: 3 } });
    expect(seen).toEqual([undefined, { checks: 1 }, { checks: 2 }]);
    expect(events.filter((e) => e.event === 'gate').every((e) => !('memory' in e))).toBe(true);
    expect((await store.audit.read()).every((r) => !JSON.stringify(r.detail ?? {}).includes('checks'))).toBe(true);
    expect(stored.gates?.every((g) => !('memory' in g))).toBe(true);
  });
});
