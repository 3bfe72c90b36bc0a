/**
 * The console's view model: folds of engine events and of the stored state, the keys, the org
 * counts and the text shapes. The engine is the real one (fake router, manual clock), so the
 * fold is checked against what the engine really emits and saves.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EngineEvent } from '../../src/engine/events.js';
import { pauseByOperator, rollback, startRollout, tick, unpause, type EngineDeps, type GateRunner } from '../../src/engine/machine.js';
import { validateState, type RolloutState } from '../../src/engine/state.js';
import type { GateResult } from '../../src/gates/types.js';
import { LocalStateStore } from '../../src/state/local/store.js';
import { compactCount, gateValue, sparkline, splitCells, valueVsThreshold } from '../../src/ui/console/format.js';
import { keyHints, pressKey } from '../../src/ui/console/keys.js';
import { createModel, foldClose, foldEvent, foldState, foldTick, GATE_HISTORY, type ConsoleModel } from '../../src/ui/console/model.js';
import { countOrgs } from '../../src/ui/console/orgs.js';
import { planCanary } from '../../strategies/canary.js';
import { eventsToStep3, GATES, gateEvent, holdingModel, pausedModel, storedState, T0 } from '../helpers/console-models.js';
import { FakeRouter, ManualClock } from '../helpers/fakes.js';

describe('folding engine events', () => {
  it('tracks the ladder, the split and the hold as the steps go by', () => {
    let m = createModel('drive', 'patient-api', T0);
    for (const e of eventsToStep3()) m = foldEvent(m, e);
    m = foldTick(m, T0 + 120_000 + 240_000);
    expect(m.phase).toBe('holding');
    expect(m.ladder.map((r) => `${r.label}:${r.status}`)).toEqual(['1:done', '5:done', '25:current', '50:next', '100:next']);
    expect(m.weights).toEqual([
      { version: 'v1', percent: 75, role: 'stable' },
      { version: 'v2', percent: 25, role: 'candidate' },
    ]);
    expect(m.hold).toEqual({ totalMs: 600_000, remainingMs: 360_000, fraction: 0.4, frozen: false });
    expect(m.log.map((l) => l.text)).toEqual([
      'patient-api: rolling out v2 over v1 in 5 steps: 1% → 5% → 25% → 50% → 100%',
      '10:00:01 step 1/5   1%  v1 99% · v2 1%, hold 10m until 10:10:01',
      '10:01:00 step 2/5   5%  v1 95% · v2 5%, hold 10m until 10:11:00',
      '10:02:00 step 3/5  25%  v1 75% · v2 25%, hold 10m until 10:12:00',
    ]);
  });

  it('keeps every gate with its latest result, a bounded history, and a log line per change of verdict', () => {
    let m = holdingModel();
    expect(m.gates.map((g) => [g.gate, g.verdict, g.history.length])).toEqual([
      ['errors', 'passed', 6],
      ['p99', 'failed', 6],
      ['saturation', 'inconclusive', 6],
      ['orders', 'error', 0],
    ]);
    expect(m.log.filter((l) => l.text.includes(' gate ')).map((l) => [l.text.split(' ')[2], l.tone])).toEqual([
      ['errors', 'good'],
      ['p99', 'bad'],
      ['saturation', 'warn'],
      ['orders', 'alert'],
    ]);
    for (let i = 0; i < 40; i++) m = foldEvent(m, gateEvent({ ...GATES[0]!, value: i }, T0 + 200_000 + i * 1000));
    const errors = m.gates[0]!;
    expect(errors.history).toHaveLength(GATE_HISTORY);
    expect(errors.history.at(-1)).toBe(39);
    m = foldEvent(m, gateEvent({ ...GATES[0]!, verdict: 'inconclusive' }, T0 + 250_000));
    expect(m.log.at(-1)!.text).toMatch(/gate errors inconclusive/);
  });

  it('freezes the hold on a pause and ends on a rollback with the reason', () => {
    const paused = foldTick(pausedModel(), T0 + 900_000);
    expect(paused.phase).toBe('paused');
    expect(paused.pauseReason).toBe('operator');
    // Paused at 10:04:00, eight minutes before the hold's end; the time left stays put.
    expect(paused.hold).toMatchObject({ remainingMs: 480_000, frozen: true });
    const rolled = foldEvent(paused, { at: new Date(T0 + 901_000).toISOString(), service: 'patient-api', rolloutId: 'r1', event: 'rollback', cause: 'abort', reason: 'aborted by nurse@ward', weights: { v1: 100 } });
    expect(rolled.phase).toBe('aborted');
    expect(rolled.hold).toBeUndefined();
    expect(rolled.weights).toEqual([{ version: 'v1', percent: 100, role: 'stable' }]);
    expect(rolled.log.at(-1)).toMatchObject({ tone: 'bad', text: expect.stringMatching(/aborted: v1 100% — aborted by nurse@ward/) });
  });

  it('leaves out a state read older than the events already folded', () => {
    const m = holdingModel();
    const stale = storedState(1, { updatedAt: new Date(T0 + 60_000).toISOString() });
    const folded = foldState(m, stale, T0 + 360_000, true);
    expect(folded.step).toBe(2);
    expect(folded.weights.find((w) => w.version === 'v2')!.percent).toBe(25);
  });

  it('says what a rollout waits for before weight may move', () => {
    const waiting = storedState(0, { phase: 'pending', step: -1, weights: { v1: 100 }, waitingForTargets: { since: new Date(T0).toISOString(), detail: 'v2: 0 of 2 targets healthy' } });
    const m = foldState(createModel('drive', 'patient-api', T0), waiting, T0 + 5_000, true);
    expect(m.waitingFor).toBe('v2: 0 of 2 targets healthy');
    const { waitingForTargets: _w, ...ready } = waiting;
    expect(foldState(m, { ...ready, phase: 'holding', step: 0, updatedAt: new Date(T0 + 9_000).toISOString() }, T0 + 9_000, true).waitingFor).toBeUndefined();
  });

  it('clears a notice once the driver acts, and leaves no question open in the last frame', () => {
    let m = pressKey(holdingModel(), { input: 'a' }).model;
    m = foldClose({ ...m, notice: 'asked the driver to abort…' }, 3);
    expect(m.confirm).toBeUndefined();
    expect(m.notice).toBeUndefined();
    expect(m.exitCode).toBe(3);
  });
});

describe('the same rollout seen by its driver and by a watcher', () => {
  const actor = { owner: 'nurse@ward', pid: 1, host: 'ward' };
  let dir: string;
  let clock: ManualClock;
  let events: EngineEvent[];
  let deps: EngineDeps;
  let verdicts: GateResult['verdict'][];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cutover-console-'));
    clock = new ManualClock(T0);
    events = [];
    verdicts = ['inconclusive', 'inconclusive', 'passed', 'passed'];
    const gates: GateRunner = {
      evaluate: async (_s, names, atMs) =>
        names.map((gate) => ({ gate, type: 'errorRate' as const, verdict: verdicts.shift() ?? 'passed', value: 0.2, threshold: 0.6, samples: { canary: 10, needed: 100 }, queries: [], reason: 'r', at: new Date(atMs).toISOString() })),
    };
    const store = new LocalStateStore<RolloutState>(dir, { clock: clock.clock, validate: validateState });
    deps = { router: new FakeRouter(), store, clock: clock.clock, emit: (e) => events.push(e), actor, gates };
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('logs the same lines from every saved state as from the events', async () => {
    // A watcher that reads every write: the store hands each saved state to it.
    const saved: RolloutState[] = [];
    const save = deps.store.save.bind(deps.store);
    deps.store.save = async (st) => {
      saved.push(structuredClone(st));
      return save(st);
    };
    const plan = planCanary({ steps: [{ weight: 1, hold: 60_000 }, { weight: 50, hold: 60_000 }] }, ['errors']);
    let s = await startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v2', plan }, deps);
    for (let i = 0; i < 6; i++) {
      clock.now += 20_000;
      s = await tick(s, deps);
    }
    s = await pauseByOperator(s, deps);
    clock.now += 5_000;
    s = await unpause(s, 'resume', deps);
    await rollback(s, 'abort', 'lab results look wrong', deps);

    let driven = createModel('drive', 'patient-api', T0);
    for (const e of events) driven = foldEvent(driven, e);
    // The watcher's first read found the previous rollout of the service.
    let watched: ConsoleModel = { ...createModel('watch', 'patient-api', T0), seen: { rolloutId: 'r0', step: 4, phase: 'promoted', gateAt: {} } };
    for (const st of saved) watched = foldState(watched, st, clock.now, false);

    expect(driven.log.map((l) => l.text)).toContain('10:01:20 gate errors passed: r');
    expect(watched.log.map((l) => l.text)).toEqual(driven.log.map((l) => l.text));
    expect(watched.phase).toBe('aborted');
    expect(watched.gates[0]!.history).toEqual(driven.gates[0]!.history);
  });

  it('logs nothing twice when the driver stops and the state takes over', async () => {
    const plan = planCanary({ steps: [{ weight: 1, hold: 60_000 }] }, ['errors']);
    let s = await startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v2', plan }, deps);
    let m = createModel('drive', 'patient-api', T0);
    s = await tick(s, deps);
    clock.now += 10_000;
    s = await tick(s, deps);
    s = await pauseByOperator(s, deps);
    for (const e of events) m = foldEvent(m, e);
    const lines = m.log.length;
    m = foldState(m, s, clock.now, true);
    m = foldState(m, s, clock.now + 400, false);
    m = foldState(m, s, clock.now + 800, false);
    expect(m.log).toHaveLength(lines);
    expect(m.phase).toBe('paused');
  });
});

describe('keys', () => {
  it('asks before promoting, and yields the action only on y', () => {
    let r = pressKey(holdingModel(), { input: 'p' });
    expect(r.action).toBeUndefined();
    expect(r.model.confirm).toEqual({ action: 'promote', question: 'Skip the rest of this hold and go to step 4 (50%)?' });
    r = pressKey(r.model, { input: 'y' });
    expect(r.action).toBe('promote');
    expect(r.model.confirm).toBeUndefined();
    const no = pressKey(pressKey(holdingModel(), { input: 'p' }).model, { input: 'n' });
    expect(no.action).toBeUndefined();
    expect(no.model.notice).toBe('not promoted');
  });

  it('asks before aborting', () => {
    const r = pressKey(holdingModel(), { input: 'a' });
    expect(r.model.confirm).toEqual({ action: 'abort', question: 'Abort: send all traffic back to v1?' });
    expect(pressKey(r.model, { input: 'y' }).action).toBe('abort');
    const q = pressKey(r.model, { input: 'q' });
    expect([q.action, q.model.notice]).toEqual([undefined, 'not aborted']);
    expect(pressKey(r.model, { input: 'c', ctrl: true }).action).toBe('quit');
  });

  it('pauses with space while holding and resumes an operator pause, but not a manual-go step', () => {
    expect(pressKey(holdingModel(), { input: ' ' }).action).toBe('pause');
    expect(pressKey(pausedModel(), { input: ' ' }).action).toBe('resume');
    const step = { ...pausedModel(), pauseReason: 'step' as const };
    const space = pressKey(step, { input: ' ' });
    expect([space.action, space.model.notice]).toEqual([undefined, 'the plan waits for a manual go here: p promotes']);
    expect(pressKey(step, { input: 'p' }).model.confirm?.question).toBe('Promote now: go to step 4 (50%)?');
  });

  it('lets a watcher ask a running driver, and says what to run when none runs', () => {
    const watched: ConsoleModel = { ...pausedModel(), mode: 'watch', driver: { owner: 'nurse@ward', pid: 7, here: false } };
    expect(pressKey(watched, { input: ' ' }).action).toBe('resume');
    const { driver: _d, ...alone } = watched;
    const space = pressKey(alone, { input: ' ' });
    expect([space.action, space.model.notice]).toEqual([undefined, 'no driver is running: `deploy resume` carries on']);
    expect(pressKey(alone, { input: 'p' }).model.confirm).toBeUndefined();
    expect(pressKey(alone, { input: 'a' }).model.confirm?.action).toBe('abort');
    expect(keyHints(alone).filter((h) => h.enabled).map((h) => h.key)).toEqual(['a', 'o', '?', 'q']);
  });

  it('leaves with q and Ctrl-C, toggles help and orgs, and does nothing risky once the rollout is over', () => {
    expect(pressKey(holdingModel(), { input: 'q' }).action).toBe('quit');
    expect(pressKey(holdingModel(), { input: 'c', ctrl: true }).action).toBe('quit');
    const help = pressKey(holdingModel(), { input: '?' }).model;
    expect(help.showHelp).toBe(true);
    expect(pressKey(help, { input: '', escape: true }).model.showHelp).toBe(false);
    expect(pressKey(holdingModel(), { input: 'o' }).model.showOrgs).toBe(true);
    const over: ConsoleModel = { ...holdingModel(), phase: 'promoted' };
    const abort = pressKey(over, { input: 'a' });
    expect([abort.action, abort.model.notice]).toEqual([undefined, 'the rollout is over']);
    expect(keyHints(over).filter((h) => h.enabled).map((h) => h.key)).toEqual(['o', '?', 'q']);
    expect(keyHints(pausedModel()).find((h) => h.key === 'space')).toEqual({ key: 'space', label: 'resume', enabled: true });
  });
});

describe('orgs by version', () => {
  const rollout = { weights: [{ version: 'v1', percent: 75, role: 'stable' as const }, { version: 'v2', percent: 25, role: 'candidate' as const }], stable: 'v1', candidate: 'v2', phase: 'holding' };

  it('counts pins first, then the wave, then the unpinned rule', () => {
    const view = countOrgs({ ids: ['a', 'b', 'c', 'd', 'e'], pins: { a: 'v2', f: 'v1' }, unpinned: 'stable', wave: ['b', 'a'] }, rollout);
    expect(view).toEqual({
      total: 6,
      byVersion: [
        { version: 'v1', count: 4, pinned: 1, wave: 0, unpinned: 3 },
        { version: 'v2', count: 2, pinned: 1, wave: 1, unpinned: 0 },
      ],
      bySplit: 0,
      unpinnedTo: 'v1',
    });
  });

  it('counts orgs that follow the weighted split apart', () => {
    const view = countOrgs({ ids: ['a', 'b', 'c'], pins: { a: 'v2' }, unpinned: 'weighted', wave: [] }, rollout);
    expect(view.bySplit).toBe(2);
    expect(view.unpinnedTo).toBeUndefined();
  });
});

describe('text shapes', () => {
  it('gives 1% of traffic a visible cell and fills the bar exactly', () => {
    expect(splitCells([{ version: 'v2', percent: 1, role: 'candidate' }, { version: 'v1', percent: 99, role: 'stable' }], 40)).toEqual([1, 39]);
    expect(splitCells([{ version: 'v2', percent: 50, role: 'candidate' }, { version: 'v1', percent: 50, role: 'stable' }], 41).reduce((a, b) => a + b)).toBe(41);
  });

  it('draws sparklines between the lowest and highest value', () => {
    expect(sparkline([0, 1, 2, 3, 4, 5, 6, 7], 8)).toBe('▁▂▃▄▅▆▇█');
    expect(sparkline([1, 2, 3], 2)).toBe('▁█');
    expect(sparkline([], 5)).toBe('');
  });

  it('writes values in their unit and against their threshold', () => {
    expect(gateValue('errorRate', 0.2134)).toBe('0.213%');
    expect(gateValue('latencyP99', 740)).toBe('740ms');
    expect(gateValue('latencyP99', 4.953)).toBe('4.95ms');
    expect(gateValue('latencyP99', 1250)).toBe('1.25s');
    expect(gateValue('query', undefined)).toBe('—');
    expect(valueVsThreshold({ ...GATES[1]!, history: [] })).toBe('740ms > 500ms');
    expect(compactCount(130_000)).toBe('130k');
  });
});
