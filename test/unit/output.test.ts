/** The JSON output's pacing of hold progress: its first check, then at most every 30 s. */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { EngineEvent } from '../../src/engine/events.js';
import { createOutput } from '../../src/ui/output.js';

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
