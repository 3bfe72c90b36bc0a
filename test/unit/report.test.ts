/**
 * `deploy report`'s data and Markdown, from an audit log the real engine wrote (fake router and
 * gates, manual clock, local store): a rollout paused and resumed by an operator and rolled back
 * by a failed gate, then a second one aborted with a hostile reason.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EngineDeps, type GateRunner, pauseByOperator, rollback, startRollout, tick, unpause } from '../../src/engine/machine.js';
import type { RolloutState } from '../../src/engine/state.js';
import type { GateResult, Verdict } from '../../src/gates/types.js';
import { UsageError } from '../../src/errors.js';
import { extractReport, rolloutIds } from '../../src/report/extract.js';
import { escapeHtml, renderHtml, scriptJson } from '../../src/report/html.js';
import { loadReport } from '../../src/report/index.js';
import { markdownCell, renderMarkdown } from '../../src/report/markdown.js';
import type { RolloutReport } from '../../src/report/model.js';
import type { LocalStateStore } from '../../src/state/local/store.js';
import { createOutput } from '../../src/ui/output.js';
import { run as reportCommand } from '../../commands/report.js';
import { planCanary } from '../../strategies/canary.js';
import { engineHarness, FakeRouter, type ManualClock } from '../helpers/fakes.js';

/** A gate runner answering what the test sets, with a value, baseline, threshold and counts. */
class ScriptedGates implements GateRunner {
  verdict: Verdict = 'inconclusive';
  value = 0.4;
  excess = 0;
  async evaluate(_s: RolloutState, names: string[], atMs: number): Promise<GateResult[]> {
    return names.map((gate) => ({
      gate,
      type: 'errorRate',
      verdict: this.verdict,
      value: this.value,
      baseline: 0.5,
      threshold: 0.6,
      samples: { canary: 400, stable: 7600, excessFailures: this.excess },
      queries: ['sum(rate(http_requests_total{version="v2"}[1m]))'],
      reason: `v2 errors ${this.value}% vs v1 0.5%`,
      at: new Date(atMs).toISOString(),
    }));
  }
}

const HOSTILE = '</script><script>alert("pwned")</script> | <img src=x onerror=alert(1)> & more';
const T0 = Date.parse('2026-11-22T10:00:00Z');

describe('deploy report: data and Markdown', () => {
  let clock: ManualClock;
  let store: LocalStateStore<RolloutState>;
  let deps: EngineDeps;
  let dispose: () => void;
  let gates: ScriptedGates;
  let first: string;
  let second: string;

  beforeAll(async () => {
    gates = new ScriptedGates();
    ({ clock, store, deps, dispose } = engineHarness(new FakeRouter(), { gates }));
    const plan = planCanary({ steps: [{ weight: 5, hold: 60_000 }, { weight: 25, hold: 60_000 }, { weight: 100 }], inconclusive: { after: 120_000, action: 'pause' } }, ['errors']);
    const spec = { service: 'patient-api', stable: 'v1', candidate: 'v2', plan };
    let s = await startRollout(spec, deps);
    first = s.rolloutId;
    s = await tick(s, deps); // step 1: 5%
    clock.now += 10_000;
    s = await tick(s, deps); // gate inconclusive
    gates.verdict = 'passed';
    clock.now += 10_000;
    s = await tick(s, deps); // gate passed
    s = await pauseByOperator(s, deps, 'charge-nurse@ward');
    clock.now += 30_000;
    s = await unpause(s, 'resume', deps, 'charge-nurse@ward');
    clock.now += 50_000;
    s = await tick(s, deps); // hold over: step 2, 25%
    expect(s.step).toBe(1);
    clock.now += 5_000;
    gates.verdict = 'failed';
    gates.value = 4.2;
    gates.excess = 17;
    s = await tick(s, deps); // failed: rolled back
    expect(s.phase).toBe('rolled_back');

    clock.now += 60_000;
    gates.verdict = 'passed';
    gates.value = 0.4;
    gates.excess = 0;
    let t = await startRollout({ ...spec, candidate: 'v3' }, deps);
    second = t.rolloutId;
    t = await tick(t, deps);
    clock.now += 3_000;
    t = await tick(t, deps); // gate passed
    t = await rollback(t, 'abort', HOSTILE, deps);
    expect(t.phase).toBe('aborted');
  });
  afterAll(() => dispose());

  const report = async (rolloutId?: string): Promise<RolloutReport> =>
    extractReport({ service: 'patient-api', records: await store.audit.read(), state: await store.load(), verification: await store.audit.verify(), now: clock.now, ...(rolloutId ? { rolloutId } : {}) })!;

  it('reads audit records that count steps as people do, from 1, where the state counts from 0', async () => {
    const records = (await store.audit.read()).filter((r) => r.rolloutId === first && r.detail && 'step' in r.detail);
    expect(records.map((r) => [r.action, r.detail!.step])).toEqual([
      ['step.entered', 1],
      ['gate.verdict', 1],
      ['gate.verdict', 1],
      ['rollout.paused', 1],
      ['rollout.continued', 1],
      ['step.entered', 2],
      ['gate.verdict', 2],
      ['rollout.rolled_back', 2],
    ]);
  });

  it('finds the rollouts in the log, the latest by default', async () => {
    expect(rolloutIds(await store.audit.read())).toEqual([first, second]);
    expect((await report()).rolloutId).toBe(second);
    expect(await extractReport({ service: 'patient-api', records: await store.audit.read(), state: undefined, verification: { ok: true, records: 0 }, rolloutId: 'nope', now: clock.now })).toBeUndefined();
  });

  it('a rolled-back rollout: traffic over time, gate values, decisions, operator actions, steps, safety and harm', async () => {
    const r = await report(first);
    expect(r).toMatchObject({ service: 'patient-api', stable: 'v1', candidate: 'v2', phase: 'rolled_back', serving: 'v1', startedBy: 'nurse@ward', startedAt: new Date(T0).toISOString() });
    expect(r.reason).toBe('gate errors failed: v2 errors 4.2% vs v1 0.5%');
    expect(r.endedAt).toBe(new Date(T0 + 105_000).toISOString());
    expect(r.durationMs).toBe(105_000);
    // The stored state is the second rollout's: the plan comes from the started record alone.
    expect(r.plan).toEqual([{ weight: 5 }, { weight: 25 }, { weight: 100 }]);
    expect(r.traffic.map((p) => [p.at.slice(11, 19), p.candidate, p.stable])).toEqual([
      ['10:00:00', 0, 100],
      ['10:00:00', 5, 95],
      ['10:01:40', 25, 75],
      ['10:01:45', 0, 100],
    ]);
    expect(r.gates).toHaveLength(1);
    expect(r.gates[0]!.points.map((p) => [p.at.slice(11, 19), p.step, p.verdict, p.value, p.threshold, p.baseline, p.source])).toEqual([
      ['10:00:10', 1, 'inconclusive', 0.4, 0.6, 0.5, 'verdict'],
      ['10:00:20', 1, 'passed', 0.4, 0.6, 0.5, 'verdict'],
      ['10:01:45', 2, 'failed', 4.2, 0.6, 0.5, 'verdict'],
    ]);
    expect(r.excessFailures).toBe(17);
    expect(r.safety).toEqual({ from: new Date(T0 + 105_000).toISOString(), fromWhat: 'gate errors failed', at: new Date(T0 + 105_000).toISOString(), afterMs: 0 });
    const what = r.decisions.map((d) => `${d.kind}: ${d.what} (${d.actor})`);
    expect(what).toEqual([
      'start: started v1 → v2 (nurse@ward)',
      'step: step 1/3: v2 at 5% (nurse@ward)',
      'gate: gate errors inconclusive (nurse@ward)',
      'gate: gate errors passed (nurse@ward)',
      'pause: paused at step 1/3 (charge-nurse@ward)',
      'operator: resumed at step 1/3 (charge-nurse@ward)',
      'step: step 2/3: v2 at 25% (nurse@ward)',
      'problem: gate errors failed (nurse@ward)',
      'rollback: rolled back: v1 100%, verified (nurse@ward)',
    ]);
    expect(r.decisions.find((d) => d.kind === 'pause')?.detail).toBe('by an operator');
    expect(r.decisions.at(-1)?.detail).toBe('gate errors failed: v2 errors 4.2% vs v1 0.5%');
    expect(r.decisions.filter((d) => d.operator).map((d) => d.what)).toEqual(['started v1 → v2', 'paused at step 1/3', 'resumed at step 1/3']);
    expect(r.steps).toEqual([
      { step: 1, weight: 5, enteredAt: '2026-11-22T10:00:00.000Z', leftAt: '2026-11-22T10:01:40.000Z', durationMs: 100_000, ended: 'next step' },
      { step: 2, weight: 25, enteredAt: '2026-11-22T10:01:40.000Z', leftAt: '2026-11-22T10:01:45.000Z', durationMs: 5_000, ended: 'rolled back' },
      { step: 3, weight: 100, ended: 'not reached' },
    ]);
    expect(r.chain).toMatchObject({ verification: { ok: true }, rolloutRecords: 9, signed: 0 });
  });

  it('the rollout in the stored state: its plan holds and latest gates come from the state', async () => {
    const r = await report();
    expect(r).toMatchObject({ candidate: 'v3', phase: 'aborted', reason: HOSTILE, serving: 'v1' });
    expect(r.plan).toEqual([{ weight: 5, holdMs: 60_000, pause: false }, { weight: 25, holdMs: 60_000, pause: false }, { weight: 100, holdMs: 0, pause: false }]);
    expect(r.decisions.at(-1)).toMatchObject({ kind: 'rollback', what: 'aborted: v1 100%, verified', detail: HOSTILE, operator: true });
    expect(r.safety).toBeUndefined();
    expect(r.steps.map((s) => s.ended)).toEqual(['aborted', 'not reached', 'not reached']);
  });

  it('Markdown: laid out like the job summary, with who did what, and record text made inert', async () => {
    const md = renderMarkdown(await report(first));
    expect(md).toMatch(/^### patient-api: v1 → v2, rolled back\n\nTraffic now: v1 100%; ran 1m45s; rollout `[0-9a-f]{8}` started 2026-11-22T10:00:00.000Z by nurse@ward, ended 2026-11-22T10:01:45.000Z\.\n/);
    expect(md).toContain('\nWhy: gate errors failed: v2 errors 4.2% vs v1 0.5%\n');
    expect(md).toContain("\nUsers harmed: 17 failed requests beyond v1's error rate.\n");
    expect(md).toContain('\nSafe: 100% on v1, verified 0ms after gate errors failed (10:01:45 → 10:01:45).\n');
    expect(md).toMatch(/\nAudit chain verified: \d+ records in the log, 9 of them this rollout's\.\n/);
    expect(md).toContain('| at | what | who | detail |');
    expect(md).toContain('| 10:00:20 | paused at step 1/3 | charge-nurse@ward (operator) | by an operator |');
    expect(md).toContain('| 10:01:45 | rolled back: v1 100%, verified | nurse@ward | gate errors failed: v2 errors 4.2% vs v1 0.5% |');
    expect(md).toContain('| gate | last verdict | evidence |\n|---|---|---|\n| errors | failed | v2 errors 4.2% vs v1 0.5% |');
    expect(md).toContain('| 10:01:45 | 2 | errors | failed | 4.2 | 0.6 | 0.5 | 400 / 7600 |');
    expect(md).toContain('| 2/3 | 25% |  | 10:01:40 | 5s | rolled back |');

    const hostile = renderMarkdown(await report());
    expect(hostile).not.toContain('<script');
    expect(hostile).not.toContain('<img');
    expect(hostile).toContain(`Why: ${markdownCell(HOSTILE)}`);
    expect(markdownCell(HOSTILE)).toBe('&lt;/script&gt;&lt;script&gt;alert("pwned")&lt;/script&gt; \\| &lt;img src=x onerror=alert(1)&gt; &amp; more');
  });

  it('HTML: the hostile reason cannot close a script or add an element; the data round-trips; nothing is fetched', async () => {
    const r = await report();
    const html = renderHtml(r);
    expect(html.match(/<script\b/gi)).toHaveLength(3);
    expect(html.match(/<\/script>/gi)).toHaveLength(3);
    expect(html).not.toContain('<img');
    expect(html).toContain(escapeHtml(HOSTILE));
    const json = /<script type="application\/json" id="report-data">([^<]*)<\/script>/.exec(html)![1]!;
    expect(JSON.parse(json)).toEqual(JSON.parse(JSON.stringify(r)));
    expect(scriptJson({ a: '\u2028</script>&' })).toBe('{"a":"\\u2028\\u003c/script\\u003e\\u0026"}');
    expect(html).not.toMatch(/\s(src|href)\s*=\s*["']?\s*(https?:)?\/\//i);
    const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html)![1]!.replace(/&#39;/g, "'");
    expect(csp).toMatch(/^default-src 'none'; script-src 'sha256-[^']+' 'sha256-[^']+'; /);
    expect(html).toContain('id="chart-traffic"');
    expect(html).toContain('id="chart-gate-0"');
  });

  it('a tampered log: the report says the chain is broken, and where', async () => {
    const file = join(store.location, 'audit.jsonl');
    const original = readFileSync(file, 'utf8');
    try {
      writeFileSync(file, original.replace('charge-nurse@ward', 'someone-else@ward'));
      const r = await report(first);
      expect(r.chain.verification).toMatchObject({ ok: false, brokenAt: 5 });
      expect(renderMarkdown(r)).toContain('**Audit chain broken at record 5: ');
      expect(renderHtml(r)).toMatch(/<p id="chain-verdict" class="chain-broken">Audit chain broken at record 5: /);
    } finally {
      writeFileSync(file, original);
    }
  });

  it('a rollout still going on: no end, its time so far, the step it is at', async () => {
    const h = engineHarness(new FakeRouter(), { gates: new ScriptedGates() });
    try {
      const plan = planCanary({ steps: [{ weight: 10, hold: 60_000 }, { weight: 100 }] }, ['errors']);
      const s = await tick(await startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v2', plan }, h.deps), h.deps);
      h.clock.now += 12_000;
      const r = extractReport({ service: 'patient-api', records: await h.store.audit.read(), state: s, verification: await h.store.audit.verify(), now: h.clock.now })!;
      expect(r).toMatchObject({ phase: 'holding', serving: 'v1', durationMs: 12_000 });
      expect(r.endedAt).toBeUndefined();
      expect(r.steps.map((x) => x.ended)).toEqual(['still here', 'not reached']);
      expect(renderMarkdown(r)).toContain(', still going on.');
      expect(renderHtml(r)).toContain('<span class="phase phase-holding" id="phase">IN PROGRESS</span>');
    } finally {
      h.dispose();
    }
  });

  it('loadReport names the recorded rollouts when --rollout matches none', async () => {
    const project = { store, config: { service: 'patient-api' } } as never;
    await expect(loadReport(project, 'feedbeef', clock.now)).rejects.toThrow(UsageError);
    await expect(loadReport(project, 'feedbeef', clock.now)).rejects.toMatchObject({ hint: `recorded rollouts, latest last: ${first}, ${second}` });
    expect((await loadReport(project, first, clock.now)).phase).toBe('rolled_back');
  });

  it('the command refuses what it cannot write well, before opening anything', async () => {
    const io = (format: 'text' | 'json', tty: boolean) => {
      const stdout = Object.assign(new PassThrough(), { isTTY: tty });
      const streams = { stdout, stderr: new PassThrough(), env: {} };
      return { ...streams, stdin: new PassThrough(), clock: () => T0, out: createOutput(format, false, streams) };
    };
    const opts = { file: '/nonexistent/deploy.yaml', output: 'text' as const, color: false };
    await expect(reportCommand({ ...opts, format: 'pdf' }, io('text', false))).rejects.toThrow('--format pdf: must be html or markdown');
    await expect(reportCommand({ ...opts, output: 'json' }, io('json', false))).rejects.toThrow(/--output json keeps stdout for JSON lines/);
    await expect(reportCommand(opts, io('text', true))).rejects.toThrow(/an HTML page is not for a terminal/);
    // Markdown on a terminal is fine: it gets as far as the config.
    await expect(reportCommand({ ...opts, format: 'markdown' }, io('text', true))).rejects.toThrow(/no such file/);
  });
});
