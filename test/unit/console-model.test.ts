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
import { pauseByOperator, promoteNow, rollback, startRollout, tick, unpause, type EngineDeps, type GateRunner } from '../../src/engine/machine.js';
import { validateState, type RolloutState } from '../../src/engine/state.js';
import type { GateResult } from '../../src/gates/types.js';
import type { AuditRecord } from '../../src/state/store.js';
import { LocalStateStore } from '../../src/state/local/store.js';
import { compactCount, gateValue, requestCount, sparkline, splitCells, timeLeft, valueVsThreshold } from '../../src/ui/console/format.js';
import { onAppend } from '../../src/ui/console/audit.js';
import { keyHints, pressKey } from '../../src/ui/console/keys.js';
import { createModel, foldAudit, foldClose, foldEvent, foldMembers, foldState, foldTargets, foldTick, GATE_HISTORY, type ConsoleModel } from '../../src/ui/console/model.js';
import { memberGates, targetGates } from '../../src/ui/console/parts.js';
import { countOrgs } from '../../src/ui/console/orgs.js';
import { eraseAddedRows, reflowedRows } from '../../src/ui/console/resize.js';
import { planCanary } from '../../strategies/canary.js';
import { eventsToStep3, fleetModel, GATES, gateEvent, groupModel, holdingModel, MEMBERS, pausedModel, safeModel, storedState, T0 } from '../helpers/console-models.js';
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

  it('says SAFE once all traffic is on stable: since when, how long after the failing check, and the users harmed', () => {
    const m = safeModel();
    expect(m.phase).toBe('rolled_back');
    expect(m.safety).toEqual({ at: T0 + 300_400, stable: 'v1', afterGate: { gate: 'errors', ms: 400 }, excessFailures: 37 });
    // The demo knows when its fault began: its rollback carries the time to safety from there.
    const demo = foldEvent(holdingModel(), { at: new Date(T0 + 361_000).toISOString(), service: 'patient-api', rolloutId: 'r1', event: 'rollback', cause: 'gate', reason: 'gate errors failed', weights: { v1: 100 }, timeToSafetyMs: 6_200, badRequests: 40, excessFailures: 35 });
    expect(demo.safety).toMatchObject({ timeToSafetyMs: 6_200, excessFailures: 35 });
    // A new rollout is not safe or unsafe yet.
    expect(foldEvent(m, { ...eventsToStep3()[0]!, rolloutId: 'r2' }).safety).toBeUndefined();
  });

  it('carries on through a pause without a "done" line', () => {
    const m = foldEvent(pausedModel(), { at: new Date(T0 + 240_000).toISOString(), service: 'patient-api', rolloutId: 'r1', event: 'done', phase: 'paused', exitCode: 4, step: 3, weights: { v1: 75, v2: 25 } });
    expect(m.log.map((l) => l.text).filter((t) => /done|paused/.test(t))).toEqual([]);
    expect(m.phase).toBe('paused');
  });

  it('never shows more time left than the hold has, even with a clock read just before the step began', () => {
    // The console's clock was last moved 400 ms before the driver entered step 3.
    let m = createModel('drive', 'patient-api', T0);
    const events = eventsToStep3();
    for (const e of events.slice(0, 3)) m = foldEvent(m, e);
    m = foldTick(m, T0 + 120_000 - 400);
    m = foldEvent(m, { ...events[3]!, event: 'step', holdMs: 60_000, holdUntil: new Date(T0 + 180_000).toISOString() } as EngineEvent);
    expect(m.hold).toMatchObject({ totalMs: 60_000, remainingMs: 60_000 });
    expect(`${timeLeft(m.hold!.remainingMs)} left of ${timeLeft(m.hold!.totalMs)}`).toBe('1m left of 1m');
  });

  it('follows only its own rollout once it drives one', () => {
    const m: ConsoleModel = { ...holdingModel(), follow: 'r1' };
    const later = foldEvent(m, { ...eventsToStep3()[0]!, rolloutId: 'r2', candidate: 'v3' } as EngineEvent);
    expect([later.rolloutId, later.candidate, later.log.length]).toEqual(['r1', 'v2', m.log.length]);
    const state = foldState(m, storedState(1, { rolloutId: 'r2', candidate: 'v3', phase: 'promoted' }), T0 + 400_000, false);
    expect([state.rolloutId, state.candidate, state.phase]).toEqual(['r1', 'v2', 'holding']);
  });

  it('leaves out a state read older than the events already folded', () => {
    const m = holdingModel();
    const stale = storedState(1, { updatedAt: new Date(T0 + 60_000).toISOString() });
    const folded = foldState(m, stale, T0 + 360_000, true);
    expect(folded.step).toBe(3);
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
    let watched: ConsoleModel = { ...createModel('watch', 'patient-api', T0), seen: { rolloutId: 'r0', stepIndex: 4, phase: 'promoted', gateAt: {} } };
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

  /** Save hook: every saved state with the audit log as it stood right after the save. */
  function recordSaves(): { state: RolloutState; audit: AuditRecord[] }[] {
    const saved: { state: RolloutState; audit: AuditRecord[] }[] = [];
    const save = deps.store.save.bind(deps.store);
    deps.store.save = async (st) => {
      await save(st);
      saved.push({ state: structuredClone(st), audit: await deps.store.audit.read() });
    };
    return saved;
  }

  /** The driver's console, as the runner builds it: its events, and each record its driver appends. */
  function drivenConsole(): () => ConsoleModel {
    let driven = createModel('drive', 'patient-api', T0);
    deps.emit = (e) => (driven = foldEvent(driven, e));
    deps.store = onAppend(deps.store, (record) => (driven = foldAudit(driven, [record])));
    return () => driven;
  }

  it('shows who promoted early, paused and resumed, before what followed, to its driver and to a watcher alike', async () => {
    const saved = recordSaves();
    const driven = drivenConsole();
    const plan = planCanary({ steps: [{ weight: 1, hold: 60_000 }, { weight: 50, hold: 60_000 }] }, ['errors']);
    let s = await startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v2', plan }, deps);
    s = await tick(s, deps);
    clock.now += 10_000;
    s = await promoteNow(s, false, deps, 'nurse@ward');
    clock.now += 10_000;
    s = await pauseByOperator(s, deps, 'charge-nurse@ward');
    // Who paused, for the status line, ahead of the state that says so too.
    expect(driven().pausedBy).toEqual({ by: 'charge-nurse@ward', at: '10:00:20' });
    clock.now += 5_000;
    s = await unpause(s, 'resume', deps, 'nurse@ward');
    await rollback(s, 'abort', 'no reason given', deps);

    const lines = driven().log.map((l) => l.text);
    const operator = lines.filter((l) => /@ward (promoted|paused|resumed)/.test(l));
    expect(operator).toEqual([
      "10:00:10 nurse@ward promoted early: skipped the rest of step 1's hold",
      '10:00:20 charge-nurse@ward paused the rollout at step 2',
      '10:00:25 nurse@ward resumed the rollout at step 2',
    ]);
    // Each before the step it led to; the pause once, with who; no "done".
    expect(lines.indexOf(operator[0]!)).toBe(lines.findIndex((l) => l.includes('step 2/3')) - 1);
    expect(lines.filter((l) => l.includes('paused'))).toHaveLength(1);
    expect(lines.at(-1)).toMatch(/aborted by nurse@ward: v1 100% — no reason given$/);

    // A watcher reading each saved state, and the audit log when it reads it, logs the same.
    let watched: ConsoleModel = createModel('watch', 'patient-api', T0);
    for (const { state, audit } of saved) watched = foldState(watched, state, clock.now, false, audit);
    expect(watched.log.map((l) => l.text)).toEqual(lines.slice(1));
    expect(watched.pausedBy).toBeUndefined();
    expect(watched.safety).toMatchObject({ stable: 'v1' });
  });

  it('logs the end of a rollout a watcher missed, the next one already begun', async () => {
    const saved = recordSaves();
    const plan = planCanary({ steps: [{ weight: 1, hold: 60_000 }] }, ['errors']);
    const first = await tick(await startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v2', plan }, deps), deps);
    clock.now += 5_000;
    await rollback(first, 'abort', 'pressed a in the console', deps);
    await startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v3', plan }, deps);
    // The watcher read the first rollout holding, then the second one pending: never the abort.
    const holding = saved.findIndex((x) => x.state.phase === 'holding');
    let watched = foldState(createModel('watch', 'patient-api', T0), saved[holding]!.state, clock.now, false, saved[holding]!.audit);
    watched = foldState(watched, saved.at(-1)!.state, clock.now, false, saved.at(-1)!.audit);
    expect(watched.log.map((l) => l.text)).toEqual(['10:00:05 aborted by nurse@ward: v1 100% — pressed a in the console', 'patient-api: rolling out v3 over v1 in 2 steps: 1% → 100%']);
    expect(watched.candidate).toBe('v3');
  });

  it('logs the end of a rollout a watcher missed even when a read of the audit log already held it', async () => {
    const saved = recordSaves();
    const plan = planCanary({ steps: [{ weight: 1, hold: 60_000 }] }, ['errors']);
    const first = await tick(await startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v2', plan }, deps), deps);
    clock.now += 5_000;
    await rollback(first, 'abort', 'from the console', deps);
    const withAbort = await deps.store.audit.read();
    await startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v3', plan }, deps);
    // One poll read the state still holding, then the log with the abort in it (it is read after
    // the state); the next poll read the second rollout already begun.
    const holding = saved.findIndex((x) => x.state.phase === 'holding');
    let watched = foldState(createModel('watch', 'patient-api', T0), saved[holding]!.state, clock.now, false, saved[holding]!.audit);
    watched = foldState(watched, saved[holding]!.state, clock.now, false, withAbort);
    watched = foldState(watched, saved.at(-1)!.state, clock.now, false, saved.at(-1)!.audit);
    expect(watched.log.map((l) => l.text)).toEqual(['10:00:05 aborted by nurse@ward: v1 100% — from the console', 'patient-api: rolling out v3 over v1 in 2 steps: 1% → 100%']);
  });

  it('logs each verdict change from the check that made it, to a watcher that missed checks too', async () => {
    const saved = recordSaves();
    const driven = drivenConsole();
    let check = 0;
    deps.gates = {
      evaluate: async (_s, names, atMs) =>
        names.map((gate) => {
          check += 1;
          const verdict = check < 4 ? ('inconclusive' as const) : ('passed' as const);
          return { gate, type: 'errorRate' as const, verdict, value: 0.2, threshold: 0.6, samples: { canary: check * 100, needed: 400 }, queries: [], reason: `${check * 100} requests, check ${check}`, at: new Date(atMs).toISOString() };
        }),
    };
    const plan = planCanary({ steps: [{ weight: 1, hold: 600_000 }, { weight: 50, hold: 60_000 }] }, ['errors']);
    let s = await startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v2', plan }, deps);
    for (let i = 0; i < 7; i++) {
      clock.now += 10_000;
      s = await tick(s, deps);
    }
    const verdictLines = (m: ConsoleModel) => m.log.filter((l) => l.text.includes(' gate ')).map((l) => l.text);
    expect(verdictLines(driven())).toEqual(['10:00:20 gate errors inconclusive: 100 requests, check 1', '10:00:50 gate errors passed: 400 requests, check 4']);

    // This watcher's reads come too seldom: it misses the checks where the verdict changed.
    const seldom = saved.filter((x) => !/check [14]$/.test(x.state.gates?.[0]?.reason ?? ''));
    expect(seldom.length).toBe(saved.length - 2);
    const fromStates = seldom.reduce((m, x) => foldState(m, x.state, clock.now, false), createModel('watch', 'patient-api', T0));
    const withAudit = seldom.reduce((m, x) => foldState(m, x.state, clock.now, false, x.audit), createModel('watch', 'patient-api', T0));
    // From the states alone it showed a later check than the driver did; the audit log has the one.
    expect(verdictLines(fromStates)).not.toEqual(verdictLines(driven()));
    expect(verdictLines(withAudit)).toEqual(verdictLines(driven()));
    expect(withAudit.gates[0]!.reason).toBe(driven().gates[0]!.reason);
  });

  it('is SAFE to its driver and to a watcher alike after a gate rolls back', async () => {
    const saved = recordSaves();
    const driven = drivenConsole();
    let checks = 0;
    deps.gates = {
      evaluate: async (_s, names, atMs) =>
        names.map((gate) => {
          checks += 1;
          const failed = checks >= 3;
          return { gate, type: 'errorRate' as const, verdict: failed ? ('failed' as const) : ('inconclusive' as const), value: failed ? 4 : 0.2, threshold: 0.6, samples: { canary: 900, excessFailures: failed ? 31 : 0 }, queries: [], reason: failed ? 'harm' : 'more', at: new Date(atMs).toISOString() };
        }),
    };
    const plan = planCanary({ steps: [{ weight: 5, hold: 60_000 }] }, ['errors']);
    let s = await startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v2', plan }, deps);
    for (let i = 0; i < 4 && s.phase !== 'rolled_back'; i++) {
      clock.now += 5_000;
      s = await tick(s, deps);
    }
    expect(s.phase).toBe('rolled_back');
    const watched = saved.reduce((m, x) => foldState(m, x.state, clock.now, false, x.audit), createModel('watch', 'patient-api', T0));
    expect(driven().safety).toEqual({ at: clock.now, stable: 'v1', afterGate: { gate: 'errors', ms: 0 }, excessFailures: 31 });
    expect(watched.safety).toEqual(driven().safety);
    // A watcher that opens after the rollback reads the same from the state alone.
    const late = foldState(createModel('watch', 'patient-api', T0), s, clock.now, false);
    expect(late.safety).toEqual(driven().safety);
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
    expect([requestCount(37), requestCount(1_387), requestCount(52_400), requestCount(1_387_397)]).toEqual(['37', '1,387', '52k', '1.4M']);
  });

  it('compares a value with its threshold only as far as the verdict agrees', () => {
    const line = (over: Partial<typeof GATES[number]>) => ({ ...GATES[0]!, history: [], ...over });
    expect(valueVsThreshold(line({ verdict: 'passed', value: 0.21, threshold: 0.62 }))).toBe('0.21% < 0.62%');
    // Too few requests to say: the numbers, no sign that reads as a pass.
    expect(valueVsThreshold(line({ verdict: 'inconclusive', value: 0, threshold: 5 }))).toBe('0% vs 5%');
    // Failed on the whole rollout's evidence while this step's rate is still below the line.
    expect(valueVsThreshold(line({ verdict: 'failed', value: 0.5, threshold: 0.62 }))).toBe('0.5% vs 0.62%');
    expect(valueVsThreshold(line({ verdict: 'failed', value: 0.9, threshold: 0.62 }))).toBe('0.9% > 0.62%');
    // A query gate may pass above its threshold: its sign is the plain comparison.
    expect(valueVsThreshold({ ...GATES[2]!, verdict: 'passed', value: 0.9, history: [] })).toBe('0.9 > 0.8');
  });

  it('erases, at a narrower terminal, the rows its re-wrap added to the last frame', () => {
    const frame = ['', `${'x'.repeat(50)}HOLDING step 1/3`, 'steps    [1] → 5', 'y'.repeat(120)].join('\n');
    expect(reflowedRows(frame, 120)).toBe(4);
    // At 80 columns the two long lines take two rows each: two rows more than ink erases.
    expect(reflowedRows(frame, 80)).toBe(5);
    expect(reflowedRows(frame, 50)).toBe(7);
    expect(eraseAddedRows(frame, 120)).toBe('');
    expect(eraseAddedRows(frame, 80)).toBe('\u001b[2K\u001b[1A\u001b[2K\u001b[G');
    // Colour codes take no cells.
    expect(reflowedRows(`\u001b[36m${'x'.repeat(80)}\u001b[39m`, 80)).toBe(1);
  });
});

describe('members and targets', () => {
  it('ties each member to the gates that name it, and keeps the rows last read when describe() fails', () => {
    const m = groupModel();
    expect(m.members!.rows.map((r) => [r.name, r.role, r.gates])).toEqual([
      ['patient-api', 'traffic', []],
      ['lis-testresult', 'consumer', ['lis-errors']],
      ['nightly-export', 'cron', ['export-errors']],
    ]);
    expect(memberGates(m, m.members!.rows[1]!)).toEqual([{ name: 'lis-errors', verdict: 'inconclusive' }]);
    // A gate left off the steps before its member's candidate runs has no verdict yet.
    expect(memberGates(m, m.members!.rows[2]!)).toEqual([{ name: 'export-errors' }]);
    const failed = foldMembers(m, new Error('deployments.apps "lis-testresult-canary" is forbidden\nmore detail'), {});
    expect(failed.members).toEqual({ rows: m.members!.rows, error: 'deployments.apps "lis-testresult-canary" is forbidden' });
    expect(foldMembers(failed, MEMBERS, {}).members!.error).toBeUndefined();
  });

  it('groups the gates of a fleet under their targets, named without the target', () => {
    const m = fleetModel();
    expect(targetGates(m, 'eu')).toEqual([{ name: 'errors', verdict: 'passed' }, { name: 'reachable', verdict: 'passed' }]);
    expect(targetGates(m, 'us')).toEqual([{ name: 'errors', verdict: 'failed' }, { name: 'reachable', verdict: 'inconclusive' }]);
    expect(targetGates(m, 'u')).toEqual([]);
    const unread = foldTargets(m, new Error('no credentials for us'));
    expect(unread.targets).toEqual({ rows: m.targets!.rows, error: 'no credentials for us' });
  });

  it('leaves both out of a model whose config has neither, and survives a state fold', () => {
    expect(holdingModel().members).toBeUndefined();
    expect(holdingModel().targets).toBeUndefined();
    const m = foldState(groupModel(), storedState(2), T0 + 400_000, true);
    expect(m.members!.rows).toHaveLength(3);
  });
});
