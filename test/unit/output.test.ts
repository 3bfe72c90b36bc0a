/**
 * The JSON output's pacing of hold progress (its first check, then at most every 30 s), alone and
 * behind a running driver; the text output's gate lines, one per change of verdict in each
 * rollout; the plain gate line's numbers.
 */
import { Chalk } from 'chalk';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { drive } from '../../src/engine/driver.js';
import type { EngineEvent } from '../../src/engine/events.js';
import { startRollout } from '../../src/engine/machine.js';
import { createOutput } from '../../src/ui/output.js';
import { formatGate } from '../../src/ui/plain.js';
import { planCanary } from '../../strategies/canary.js';
import { engineHarness, FakeRouter } from '../helpers/fakes.js';

describe('--output json', () => {
  it('prints a hold at its first check and then at most every 30 s, one line per event', () => {
    let text = '';
    const stdout = new Writable({ write(c, _e, done) { text += String(c); done(); } });
    const stderr = new Writable({ write(_c, _e, done) { done(); } });
    const out = createOutput('json', false, { stdout, stderr, env: {} });
    const t0 = Date.parse('2026-11-29T10:00:00Z');
    const hold = (step: number, s: number): EngineEvent => ({ at: new Date(t0 + s * 1000).toISOString(), service: 'patient-api', rolloutId: 'r1', event: 'hold', step, remainingMs: 600_000 - s * 1000 });
    for (const s of [0, 10, 20, 30, 40, 61]) out.event(hold(1, s));
    out.event(hold(2, 62));
    out.event(hold(2, 72));
    const lines = text.trim().split('\n').map((l) => JSON.parse(l) as { step: number; at: string });
    expect(lines.map((l) => [l.step, (Date.parse(l.at) - t0) / 1000])).toEqual([[1, 0], [1, 30], [1, 61], [2, 62]]);
  });
});

describe('--output json from a running driver', () => {
  it('prints a 5-minute hold checked every 10 s at most every 30 s, and each step\'s first check', async () => {
    const h = engineHarness(new FakeRouter());
    try {
      let text = '';
      const stdout = new Writable({ write(c, _e, done) { text += String(c); done(); } });
      const stderr = new Writable({ write(_c, _e, done) { done(); } });
      const out = createOutput('json', false, { stdout, stderr, env: {} });
      let holds = 0;
      const deps = { ...h.deps, emit: (e: EngineEvent) => { if (e.event === 'hold') holds += 1; out.event(e); } };
      const plan = planCanary({ steps: [{ weight: 10, hold: 300_000 }, { weight: 100, hold: 60_000 }] });
      const state = await startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v2', plan }, deps);
      const lock = await h.store.acquireLock(deps.actor, 30_000);
      const result = await drive(state, { ...deps, lock, sleep: h.clock.sleep, leaseMs: 30_000, checkIntervalMs: 10_000, requestPollMs: 10_000 });
      await lock.release();
      expect(result.state.phase).toBe('promoted');

      const lines = text.trim().split('\n').map((l) => JSON.parse(l) as { event: string; step?: number; at: string });
      const printed = lines.filter((l) => l.event === 'hold');
      // The driver checked every 10 s; JSON carries a third of those lines, or fewer.
      expect(holds).toBeGreaterThanOrEqual(36);
      expect(printed.length).toBeLessThanOrEqual(Math.ceil(holds / 3) + 2);
      for (const step of [1, 2]) {
        const times = printed.filter((l) => l.step === step).map((l) => Date.parse(l.at));
        const entered = Date.parse(lines.find((l) => l.event === 'step' && l.step === step)!.at);
        expect(times[0], `step ${step}'s first check is printed`).toBe(entered);
        for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(30_000);
      }
      expect(printed.filter((l) => l.step === 1).length).toBeGreaterThanOrEqual(300 / 30 - 1);
    } finally {
      h.dispose();
    }
  });

  it('prints the first check of another rollout\'s step at once, even at the same step number', () => {
    let text = '';
    const stdout = new Writable({ write(c, _e, done) { text += String(c); done(); } });
    const out = createOutput('json', false, { stdout, stderr: stdout, env: {} });
    const t0 = Date.parse('2026-11-29T10:00:00Z');
    const hold = (rolloutId: string, s: number): EngineEvent => ({ at: new Date(t0 + s * 1000).toISOString(), service: 'patient-api', rolloutId, event: 'hold', step: 1, remainingMs: 60_000 });
    for (const [id, s] of [['r1', 0], ['r1', 10], ['r2', 15], ['r2', 25]] as const) out.event(hold(id, s));
    expect(text.trim().split('\n').map((l) => (JSON.parse(l) as { rolloutId: string }).rolloutId)).toEqual(['r1', 'r2']);
  });
});

describe('text output', () => {
  const t0 = Date.parse('2026-11-29T10:00:00Z');
  const gate = (rolloutId: string, s: number, verdict: 'passed' | 'inconclusive', reason: string): EngineEvent =>
    ({ at: new Date(t0 + s * 1000).toISOString(), service: 'patient-api', rolloutId, event: 'gate', step: 1, gate: 'errors', type: 'errorRate', verdict, reason, queries: [] });

  it('prints a gate line per change of verdict within each rollout, the next one starting afresh', () => {
    let text = '';
    const stdout = new Writable({ write(c, _e, done) { text += String(c); done(); } });
    const out = createOutput('text', false, { stdout, stderr: stdout, env: { CI: 'true' } });
    out.event(gate('r1', 0, 'inconclusive', 'check 1'));
    out.event(gate('r1', 1, 'inconclusive', 'check 2'));
    out.event(gate('r1', 2, 'passed', 'check 3'));
    // The demo's second release: its first step's first verdict is the same word, but a new line.
    out.event(gate('r2', 10, 'passed', 'check 1 of r2'));
    expect(text.trim().split('\n')).toEqual(['10:00:00 gate errors inconclusive: check 1', '10:00:02 gate errors passed: check 3', '10:00:10 gate errors passed: check 1 of r2']);
  });
});

describe('plain gate lines', () => {
  const c = new Chalk({ level: 0 });
  const result = { gate: 'errors', type: 'errorRate' as const, queries: [], at: '2026-11-29T10:00:00.000Z' };

  it('counts requests for people, and what is still needed only while undecided', () => {
    expect(formatGate({ ...result, verdict: 'inconclusive', reason: 'more needed', samples: { canary: 437, needed: 1_600 } }, c)).toMatch(/more needed {2}n=437\/1,600$/);
    expect(formatGate({ ...result, verdict: 'failed', reason: 'harm', samples: { canary: 437, needed: 1_600 } }, c)).toMatch(/harm {2}n=437$/);
    expect(formatGate({ ...result, verdict: 'passed', reason: 'ruled out', samples: { canary: 1_387_397, needed: 130_000 } }, c)).toMatch(/ruled out {2}n=1\.4M$/);
    expect(formatGate({ ...result, verdict: 'error', reason: 'unreachable' }, c)).toMatch(/unreachable$/);
  });
});
