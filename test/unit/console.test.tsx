/**
 * The console's ink components on fixed models: every gate verdict, a pause, a rollback, an
 * 80-column terminal (reached by a resize), the help and orgs views, the y/n question, and
 * colour on and off.
 */
import chalk from 'chalk';
import { render } from 'ink-testing-library';
import { useState } from 'react';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { App } from '../../src/ui/console/App.js';
import { pressKey, type KeyPress } from '../../src/ui/console/keys.js';
import { createModel, foldOrgs, foldState, type ConsoleModel } from '../../src/ui/console/model.js';
import { planCanary } from '../../strategies/canary.js';
import { fleetModel, groupModel, holdingModel, pausedModel, rolledBackModel, safeModel, storedState, T0 } from '../helpers/console-models.js';
import { foldMembers } from '../../src/ui/console/model.js';

// eslint-disable-next-line no-control-regex
const COLOUR = /\u001b\[(3[0-7]|9[0-7])m/;
// eslint-disable-next-line no-control-regex
const strip = (s: string) => s.replace(/\u001b\[[0-9;]*m/g, '');

/** The live area of the last frame, without colour codes. */
function screen(frames: { lastFrame: () => string | undefined }): string {
  return strip(frames.lastFrame() ?? '');
}

/** The same, with rows wrapped at the test terminal's 100 columns joined again. */
function unwrapped(frames: { lastFrame: () => string | undefined }): string {
  return screen(frames).replace(/ *\n +/g, ' ');
}

let cleanups: (() => void)[] = [];
afterEach(() => {
  cleanups.forEach((c) => c());
  cleanups = [];
});

function show(model: ConsoleModel, color = false) {
  const r = render(<App model={model} color={color} />);
  cleanups.push(r.unmount);
  return r;
}

const tick = () => new Promise((r) => setTimeout(r, 30));

/** The console with its keys folded as the runner folds them; actions are collected. */
function KeyedConsole({ initial, actions }: { initial: ConsoleModel; actions: string[] }) {
  const [model, setModel] = useState(initial);
  const onKey = (k: KeyPress) => {
    const next = pressKey(model, k);
    setModel(next.model);
    if (next.action) actions.push(next.action);
  };
  return <App model={model} color={false} onKey={onKey} />;
}

beforeAll(() => {
  // The test runner's stdout is not a terminal; colour is forced so that its absence means something.
  chalk.level = 1;
});

describe('the console', () => {
  it('warns that nothing rolls back by itself when the plan has no gates, and not otherwise', () => {
    const ungated = foldState(createModel('watch', 'patient-api', T0), storedState(1, { plan: planCanary(undefined, []) }), T0 + 90_000, false);
    expect(screen(show(ungated))).toMatch(/gates\s+none: nothing will roll back by itself/);
    const gated = foldState(createModel('watch', 'patient-api', T0), storedState(1), T0 + 90_000, false);
    expect(screen(show(gated))).not.toMatch(/nothing will roll back/);
  });

  it('shows the rollout, the ladder, the split, the hold and every gate verdict', () => {
    const text = screen(show(holdingModel()));
    expect(text).toContain('patient-api  v1 → v2  rollout r1');
    expect(text).toContain('HOLDING step 3/5');
    expect(text).toMatch(/steps\s+1 → 5 → \[25\] → 50 → 100/);
    expect(text).toMatch(/traffic\s+█+░+\s+█ v2 25%\s+░ v1 75%/);
    expect(text).toMatch(/hold\s+█+░+\s+6m left of 10m/);
    // The live area's gate lines, not the log lines above it.
    const gate = (name: string) => text.split('\n').find((l) => !/^\d\d:/.test(l) && new RegExp(`^(gates)?\\s+${name} `).test(l))!;
    expect(gate('errors')).toMatch(/errors\s+passed\s+0\.315% < 0\.62%\s+n 5\.2k\s+▁▂▄▅▇█/);
    expect(gate('p99')).toMatch(/p99\s+failed\s+1\.11s > 500ms\s+n 900\s+[▁-█]{6}/);
    // Undecided: the numbers side by side, no "<" to read as a pass.
    expect(gate('saturation')).toMatch(/saturation\s+inconclusive\s+0\.6 vs 0\.8\s+n 40\/130k/);
    expect(gate('orders')).toMatch(/orders\s+error\s+—/);
    expect(text).toContain('this process drives (pid 4242)');
    expect(text).toMatch(/p promote {2}a abort {2}space pause {2}o orgs {2}\? help {2}q leave/);
  });

  it('prints the event log above the live area', () => {
    const r = show(holdingModel());
    const all = strip(r.frames.join(''));
    expect(all).toContain('rolling out v2 over v1 in 5 steps: 1% → 5% → 25% → 50% → 100%');
    expect(all).toContain('10:02:00 step 3/5  25%  v1 75% · v2 25%, hold 10m until 10:12:00');
    expect(all).toMatch(/gate p99 failed: v2 P99 740ms > 500ms/);
  });

  it('shows a pause with its frozen hold and what the keys do now', () => {
    const text = screen(show(pausedModel()));
    expect(text).toContain('PAUSED step 3/5');
    expect(text).toMatch(/hold\s+█+░+\s+paused, 8m left of 10m/);
    expect(text).toContain('paused by an operator: space resumes, p promotes, a aborts');
    expect(text).toContain('space resume');
  });

  it('tells a watcher with no driver to ask what to run instead', () => {
    const { driver: _d, ...paused } = pausedModel();
    const text = screen(show({ ...paused, mode: 'watch' }));
    expect(text).toContain('paused by an operator: `deploy resume` carries on, a aborts');
    expect(text).toMatch(/driver\s+none running: `deploy resume` carries on/);
  });

  it('shows a rollback: all traffic on stable and the gate that failed', () => {
    const text = screen(show(rolledBackModel()));
    expect(text).toContain('ROLLED BACK step 3/5');
    expect(text).toMatch(/traffic\s+░+\s+░ v1 100%/);
    expect(text).toContain('rolled back: gate p99 failed: v2 P99 740ms > 500ms');
    expect(text).not.toMatch(/^hold/m);
  });

  it('says SAFE after a rollback, with the time to safety and the failed requests', () => {
    const text = unwrapped(show(safeModel()));
    expect(text).toContain('ROLLED BACK step 3/5');
    expect(text).toMatch(/traffic\s+░+\s+░ v1 100%/);
    expect(screen(show(safeModel()))).toMatch(/safety {3}SAFE {2}all traffic on v1 since 10:05:00, 0\.4 s after gate errors failed\n {15}users got 37 failed requests beyond v1's error rate\n/);
    expect(text).toMatch(/rolled back: gate errors failed: v2 errors 2\.1% vs v1 0\.2%/);
    // The demo's own measure, from the fault's start, when its rollback carries it.
    const demo = safeModel();
    const text2 = unwrapped(show({ ...demo, safety: { ...demo.safety!, timeToSafetyMs: 6_240, excessFailures: 1_387 } }));
    expect(text2).toMatch(/SAFE {2}all traffic on v1 since 10:05:00, 6\.2 s after the fault began users got 1,387 failed requests beyond v1's error rate/);
  });

  it('says SAFE after an abort, and who paused a rollout', () => {
    const aborted = foldState(createModel('watch', 'patient-api', T0), storedState(2, { phase: 'aborted', weights: { v1: 100 }, outcome: { reason: 'aborted by nurse@ward', at: new Date(T0 + 200_000).toISOString(), by: 'nurse@ward' } }), T0 + 201_000, false);
    const text = screen(show(aborted));
    expect(text).toContain('ABORTED step 3/5');
    expect(text).toMatch(/safety\s+SAFE {2}all traffic on v1 since 10:03:20$/m);
    const paused = foldState(createModel('watch', 'patient-api', T0), storedState(2, { phase: 'paused', paused: { reason: 'operator', at: new Date(T0 + 150_000).toISOString(), by: 'charge-nurse@ward', remainingMs: 30_000 } }), T0 + 160_000, false);
    expect(screen(show(paused))).toContain('paused by charge-nurse@ward at 10:02:30: `deploy resume` carries on, a aborts');
  });

  it('tells a watcher that leaving drives nothing', () => {
    expect(unwrapped(show({ ...holdingModel(), mode: 'watch', showHelp: true }))).toMatch(/q\s+leave: watching drives nothing, so the rollout goes on as it is/);
    expect(unwrapped(show({ ...holdingModel(), showHelp: true }))).toMatch(/q\s+leave, as Ctrl-C: the driver stops between ticks; `deploy resume` carries on from there/);
  });

  it('draws its bars as wide as a 120-column terminal allows', async () => {
    const r = show(holdingModel());
    Object.defineProperty(r.stdout, 'columns', { get: () => 120 });
    r.stdout.emit('resize');
    await vi.waitFor(() => expect(screen(r)).toMatch(/^patient-api .{90,}HOLDING step 3\/5$/m));
    const lines = screen(r).split('\n');
    for (const line of lines) expect(line.length, line).toBeLessThanOrEqual(120);
    const traffic = lines.find((l) => l.startsWith('traffic'))!;
    const hold = lines.find((l) => l.startsWith('hold'))!;
    expect(traffic.match(/[█░]+/)![0].length).toBe(120 - 9 - '█ v2 25%  ░ v1 75%'.length - 2);
    expect(hold.match(/[█░]+/)![0].length).toBe(120 - 9 - '6m left of 10m'.length - 2);
    expect(traffic).toHaveLength(120);
  });

  it('stays within an 80-column terminal, redrawn on resize', async () => {
    const r = show({ ...holdingModel(), notice: 'asked the driver to promote…' });
    const wide = screen(r).split('\n');
    expect(Math.max(...wide.map((l) => l.length))).toBeGreaterThan(80);
    Object.defineProperty(r.stdout, 'columns', { get: () => 80 });
    r.stdout.emit('resize');
    await vi.waitFor(() => expect(screen(r)).toMatch(/^patient-api .{40,60}HOLDING step 3\/5$/m));
    const lines = screen(r).split('\n');
    expect(lines.length).toBeLessThanOrEqual(24);
    for (const line of lines) expect(line.length, line).toBeLessThanOrEqual(80);
    expect(lines.join('\n')).toMatch(/p99\s+failed\s+1\.11s > 500ms\s+n 900\s+[▁-█]+/);
    expect(lines.join('\n')).toMatch(/HOLDING step 3\/5$/m);
  });

  it('asks y/n before promoting or aborting, through the keys', async () => {
    const actions: string[] = [];
    const r = render(<KeyedConsole initial={holdingModel()} actions={actions} />);
    cleanups.push(r.unmount);
    await tick();
    r.stdin.write('p');
    await tick();
    expect(screen(r)).toContain('Skip the rest of this hold and go to step 4 (50%)? [y/N]');
    expect(actions).toEqual([]);
    r.stdin.write('y');
    await tick();
    expect(actions).toEqual(['promote']);
    expect(screen(r)).not.toContain('[y/N]');
    r.stdin.write('a');
    await tick();
    expect(screen(r)).toContain('Abort: send all traffic back to v1? [y/N]');
    r.stdin.write('n');
    await tick();
    expect(screen(r)).toContain('not aborted');
    expect(actions).toEqual(['promote']);
  });

  it('shows the help and the orgs views', () => {
    expect(screen(show({ ...holdingModel(), showHelp: true }))).toMatch(/keys\s+p\s+promote now: skip the rest of this hold/);
    const noOrgs = screen(show({ ...holdingModel(), showOrgs: true }));
    expect(noOrgs).toContain('no orgs: section in the config');
    const withOrgs = foldOrgs({ ...holdingModel(), showOrgs: true }, { ids: ['st-marys', 'riverside', 'northgate'], pins: { 'st-marys': 'v2' }, unpinned: 'stable', wave: [] });
    const text = screen(show(withOrgs));
    expect(text).toMatch(/orgs\s+3 orgs; unpinned ones follow v1/);
    expect(text).toMatch(/v1\s+2\s+█+\s+2 unpinned/);
    expect(text).toMatch(/v2\s+1\s+█+\s+1 pinned/);
    expect(text).toContain('o gates');
  });

  it('colours verdicts only when colour is on', () => {
    const on = show(holdingModel(), true).lastFrame()!;
    expect(on).toMatch(COLOUR);
    const off = show(holdingModel(), false).lastFrame()!;
    expect(off).not.toMatch(COLOUR);
  });

  it('shows a row per member of a release group with its replicas and its gates', () => {
    const text = screen(show(groupModel()));
    expect(text).toMatch(/members  patient-api\s+traffic\s+v1 3\/3 · v2 1\/1\n/);
    expect(text).toMatch(/\n {9}lis-testresult\s+consumer\s+v1 1\/1 · v2 0\/1  lis-errors inconclusive\n/);
    expect(text).toMatch(/\n {9}nightly-export\s+cron\s+v1 0\/0; template v1  export-errors not checked\n/);
    // The rows sit above the gates, which still list every gate.
    expect(text.indexOf('members ')).toBeLessThan(text.indexOf('gates '));
    expect(text).toMatch(/lis-errors\s+inconclusive/);
  });

  it("says why the members could not be read, below the rows last read or alone", () => {
    const failed = foldMembers(groupModel(), new Error('connect ECONNREFUSED 127.0.0.1:6443'), {});
    expect(screen(show(failed))).toMatch(/lis-testresult[^\n]+\n[^\n]+\n {9}could not be read: connect ECONNREFUSED 127\.0\.0\.1:6443/);
    const never = foldMembers(holdingModel(), new Error('forbidden'), {});
    expect(screen(show(never))).toMatch(/members  could not be read: forbidden/);
  });

  it('shows a row per target of a fleet with its live weights and its gates grouped under it', () => {
    const text = unwrapped(show(fleetModel()));
    expect(text).toMatch(/targets  eu v1 75% · v2 25% \(generation 4\)  errors passed · reachable passed/);
    expect(text).toMatch(/us unreachable: connect ECONNREFUSED 10\.0\.0\.2:443  errors failed · reachable inconclusive/);
    // What the unreachable target owes comes last: where the row is cut, its verdicts are not.
    expect(text).toMatch(/reachable inconclusive (owes|…)/);
  });

  it('keeps the layout of a config without members or targets', () => {
    const text = screen(show(holdingModel()));
    expect(text).not.toMatch(/members|targets/);
  });

  it('keeps a fleet with members within an 80-column terminal', async () => {
    const r = show({ ...fleetModel(), members: groupModel().members! });
    Object.defineProperty(r.stdout, 'columns', { get: () => 80 });
    r.stdout.emit('resize');
    // The header spans the terminal: once it fits, the frame was redrawn at 80 columns.
    await vi.waitFor(() => expect(screen(r)).toMatch(/^patient-api .{40,60}HOLDING step 3\/5$/m));
    for (const line of screen(r).split('\n')) expect(line.length, line).toBeLessThanOrEqual(80);
    expect(screen(r)).toMatch(/targets  eu\s+v1 75% · v2 25% \(generation 4\)/);
  });
});
