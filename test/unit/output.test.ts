/**
 * The JSON output's pacing of hold progress (its first check, then at most every 30 s); the text
 * output's gate lines, one per change of verdict in each rollout; the plain gate line's numbers.
 */
import { Chalk } from 'chalk';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { EngineEvent } from '../../src/engine/events.js';
import { createOutput } from '../../src/ui/output.js';
import { formatGate } from '../../src/ui/plain.js';

describe('--output json', () => {
  it('prints a hold at its first check and then at most every 30 s, one line per event', () => {
    let text = '';
    const stdout = new Writable({ write(c, _e, done) { text += String(c); done(); } });
    const stderr = new Writable({ write(_c, _e, done) { done(); } });
    const out = createOutput('json', false, { stdout, stderr, env: {} });
    const t0 = Date.parse('2026-11-29T10:00:00Z');
    const hold = (step: number, s: number): EngineEvent => ({ at: new Date(t0 + s * 1000).toISOString(), service: 'patient-api', rolloutId: 'r1', event: 'hold', step, remainingMs: 600_000 - s * 1000 });
    for (const s of [0, 10, 20, 30, 40, 61]) out.event(hold(0, s));
    out.event(hold(1, 62));
    out.event(hold(1, 72));
    const lines = text.trim().split('\n').map((l) => JSON.parse(l) as { step: number; at: string });
    expect(lines.map((l) => [l.step, (Date.parse(l.at) - t0) / 1000])).toEqual([[0, 0], [0, 30], [0, 61], [1, 62]]);
  });
});

describe('text output', () => {
  const t0 = Date.parse('2026-11-29T10:00:00Z');
  const gate = (rolloutId: string, s: number, verdict: 'passed' | 'inconclusive', reason: string): EngineEvent =>
    ({ at: new Date(t0 + s * 1000).toISOString(), service: 'patient-api', rolloutId, event: 'gate', step: 0, gate: 'errors', type: 'errorRate', verdict, reason, queries: [] });

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
