/**
 * The console's view model: everything the cutover console shows, folded from engine events (when
 * this process drives) and from the stored state (always; it is the only source for `deploy
 * watch`). Pure: no I/O and no clock of its own — time comes in as `now`, so a 30-minute hold can
 * be checked in a unit test. The ink components only render what is here.
 */
import { Chalk } from 'chalk';
import type { EngineEvent } from '../../engine/events.js';
import { stepNumberOf, type StepNumber } from '../../engine/plan.js';
import type { RolloutState } from '../../engine/state.js';
import type { GateResult, Verdict } from '../../gates/types.js';
import type { Weights } from '../../routers/router.js';
import type { AuditRecord } from '../../state/store.js';
import { renderEventLine } from '../plain.js';
import { auditLines, endLine, type AuditLine } from './audit.js';
import { stateChanges, type Seen } from './changes.js';
import { countOrgs, type OrgSource } from './orgs.js';
import { safetyOfRollback, safetyOfState } from './safety.js';
import type { ConsoleModel, DriverView, GateLine, HoldView, Rung, Share, Tone } from './types.js';

export * from './types.js';
export { foldMembers, foldTargets } from './parts.js';

/** How many recent values of a gate the sparkline keeps. */
export const GATE_HISTORY = 24;

/** An empty model for a service. */
export function createModel(mode: ConsoleModel['mode'], service: string, now: number): ConsoleModel {
  return { mode, service, phase: 'none', step: 0, ladder: [], weights: [], gates: [], log: [], showHelp: false, showOrgs: false, now, holdClock: {}, lastEventAt: 0 };
}

const plainColour = new Chalk({ level: 0 });

/** The same wording as the plain renderer, so a log reads alike in CI and in the console. */
function lineFor(e: EngineEvent): { text: string; tone: Tone } | undefined {
  if (e.event === 'hold' || e.event === 'weights') return undefined;
  // The console stays open through a pause or a failed write: no "done" while it carries on.
  if (e.event === 'done' && (e.phase === 'paused' || e.phase === 'failed')) return undefined;
  // An operator's pause is logged from the audit log, which says who paused.
  if (e.event === 'paused' && e.reason === 'operator') return undefined;
  const text = renderEventLine(e, plainColour);
  if (!text) return undefined;
  const tone: Tone =
    e.event === 'started' ? 'accent'
    : e.event === 'gate' ? verdictTone(e.verdict)
    : e.event === 'paused' ? 'warn'
    : e.event === 'rollback' || e.event === 'error' ? 'bad'
    : e.event === 'done' ? (e.phase === 'promoted' ? 'good' : e.phase === 'detached' || e.phase === 'paused' ? 'warn' : 'bad')
    : 'plain';
  return { text, tone };
}

/** The tone of a verdict, as the plain renderer colours it: passed, inconclusive, failed, error. */
export function verdictTone(verdict: Verdict): Tone {
  return verdict === 'passed' ? 'good' : verdict === 'inconclusive' ? 'warn' : verdict === 'failed' ? 'bad' : 'alert';
}

/** Append a finished line to the log. */
export function withLogLine(model: ConsoleModel, text: string, tone: Tone = 'plain'): ConsoleModel {
  return { ...model, log: [...model.log, { id: model.log.length, text, tone }] };
}

/** Set (or clear) the transient notice line. */
export function withNotice(model: ConsoleModel, notice: string | undefined): ConsoleModel {
  const { notice: _old, ...rest } = model;
  return notice === undefined ? rest : { ...rest, notice };
}

function shares(weights: Weights, stable?: string, candidate?: string): Share[] {
  return Object.entries(weights).map(([version, percent]) => ({
    version,
    percent,
    role: version === stable ? 'stable' : version === candidate ? 'candidate' : 'other',
  }));
}

/** The ladder's rungs with `current` (a step number, from 1) marked. */
function ladderOf(steps: { label: string; pause: boolean }[], current: StepNumber, phase: ConsoleModel['phase']): Rung[] {
  return steps.map((s, i) => {
    const step = stepNumberOf(i);
    return { ...s, status: step < current || (step === current && phase === 'promoted') ? 'done' : step === current ? 'current' : 'next' };
  });
}

/** Update or add a gate's line; `remember` appends the value to its sparkline. */
function withGate(model: ConsoleModel, r: Omit<GateResult, 'at' | 'queries'>, remember: boolean): ConsoleModel {
  const before = model.gates.find((g) => g.gate === r.gate);
  const history = before?.history ?? [];
  const line: GateLine = {
    gate: r.gate,
    type: r.type,
    verdict: r.verdict,
    reason: r.reason,
    history: remember && r.value !== undefined && Number.isFinite(r.value) ? [...history, r.value].slice(-GATE_HISTORY) : history,
    ...(r.value !== undefined ? { value: r.value } : {}),
    ...(r.bucket ? { bucket: r.bucket } : {}),
    ...(r.threshold !== undefined ? { threshold: r.threshold } : {}),
    ...(r.samples ? { samples: r.samples } : {}),
  };
  return { ...model, gates: before ? model.gates.map((g) => (g === before ? line : g)) : [...model.gates, line] };
}

/**
 * Fold one engine event. `quiet` folds it without a log line: a watcher's gate checks whose
 * verdict changes come from the audit log instead.
 */
export function foldEvent(model: ConsoleModel, e: EngineEvent, quiet = false): ConsoleModel {
  // A driving console shows its own rollout only.
  if (model.follow !== undefined && e.rolloutId !== model.follow) return model;
  const at = Date.parse(e.at);
  let m: ConsoleModel = { ...model, lastEventAt: Math.max(model.lastEventAt, at) };
  // A notice such as "asked the driver to pause…" is answered once the driver acts.
  if (e.event === 'step' || e.event === 'paused' || e.event === 'rollback' || e.event === 'done') m = withNotice(m, undefined);
  const line = quiet ? undefined : lineFor(e);
  // A gate is checked every few seconds; the log gets a line only when its verdict changes.
  const gateUnchanged = e.event === 'gate' && m.gates.find((g) => g.gate === e.gate)?.verdict === e.verdict;
  if (line && !gateUnchanged) m = withLogLine(m, line.text, line.tone);
  switch (e.event) {
    case 'started': {
      const { safety: _s, failedGate: _f, pausedBy: _p, outcome: _o, ...rest } = m;
      return derive({
        ...rest,
        rolloutId: e.rolloutId,
        service: e.service,
        stable: e.stable,
        candidate: e.candidate,
        phase: 'pending',
        step: 0,
        ladder: ladderOf(e.steps.map((s) => ({ label: `${s.weight}`, pause: s.pause })), 0, 'pending'),
        weights: shares({ [e.stable]: 100 }, e.stable, e.candidate),
        gates: [],
        holdClock: {},
      });
    }
    case 'step': {
      const { pauseReason: _p, inFlight: _f, failedGate: _g, pausedBy: _b, ...rest } = m;
      const ladder = m.ladder.length ? m.ladder : ladderOf(Array.from({ length: e.steps }, () => ({ label: '?', pause: false })), e.step, 'holding');
      return derive({
        ...rest,
        phase: 'holding',
        step: e.step,
        ladder: ladderOf(ladder, e.step, 'holding'),
        weights: shares(e.weights, m.stable, m.candidate),
        gates: [],
        holdClock: { until: Date.parse(e.holdUntil), totalMs: e.holdMs },
      });
    }
    case 'weights':
      return { ...m, weights: shares(e.weights, m.stable, m.candidate) };
    case 'hold': {
      const { pauseReason: _p, pausedBy: _b, ...rest } = m;
      return derive({ ...rest, phase: 'holding', holdClock: { ...m.holdClock, until: at + e.remainingMs } });
    }
    case 'gate':
      return withGate(e.verdict === 'failed' && !m.failedGate ? { ...m, failedGate: { gate: e.gate, at } } : m, e, true);
    case 'paused':
      return derive({ ...m, phase: 'paused', pauseReason: e.reason, holdClock: { ...m.holdClock, frozenRemainingMs: Math.max(0, (m.holdClock.until ?? at) - at) } });
    case 'rollback':
      return derive({ ...m, phase: e.cause === 'abort' ? 'aborted' : 'rolled_back', outcome: e.reason, safety: safetyOfRollback(e, m.failedGate, m.stable), weights: shares(e.weights, m.stable, m.candidate), holdClock: {} });
    case 'error':
      return { ...m, lastError: e.message, ...(e.retrying ? {} : { phase: 'failed' as const }) };
    case 'retry':
      return { ...m, lastError: `${e.provider} ${e.operation} failed (${e.error}); trying again` };
    case 'done':
      return derive({ ...m, ...(e.phase === 'detached' ? {} : { phase: e.phase }), weights: shares(e.weights, m.stable, m.candidate) });
  }
}

/**
 * Fold the stored state. It is authoritative unless an event newer than it was folded already
 * (a read that raced the driver). `live` says engine events are flowing: then the log and the
 * sparklines come from them, otherwise from the state's changes since the last fold. `audit`,
 * when it was read, holds records newer than the last folded: operator actions, and — without
 * events — the verdict changes, each from the check that made it.
 */
export function foldState(model: ConsoleModel, state: RolloutState | undefined, now: number, live: boolean, audit?: readonly AuditRecord[]): ConsoleModel {
  if (!state) return derive({ ...model, now });
  // A driving console's rollout ended and another began: it is not this console's to show.
  if (model.follow !== undefined && state.rolloutId !== model.follow) return derive({ ...model, now });
  let m: ConsoleModel = { ...model, now };
  const before = m.seen;
  const lines = audit ? newAuditLines(m, audit, state.rolloutId, !live) : [];
  // A rollout that ended between two reads, the next one already begun: its end from the audit
  // log — from any record, since a read of the log after an earlier state may already have held it.
  const missedEnd = !live && before && before.rolloutId !== state.rolloutId && m.rolloutId === before.rolloutId && !ENDED.includes(m.phase) && audit && m.auditSeq !== undefined
    ? endLine(audit, before.rolloutId)
    : undefined;
  if (missedEnd) lines.push(missedEnd);
  if (audit) m = { ...m, auditSeq: Math.max(m.auditSeq ?? -1, ...audit.map((r) => r.seq)) };
  if (!live && before) {
    // The state's changes and the audit's lines, in the order they happened; at the same instant
    // the record first, as it is written before the state it leads to.
    const steps: { at: number; fold: (x: ConsoleModel) => ConsoleModel }[] = [
      ...lines.map((l) => ({ at: l.at, fold: (x: ConsoleModel) => foldAuditLine(x, l) })),
      ...stateChanges(before, state).map((e) => ({ at: Date.parse(e.at), fold: (x: ConsoleModel) => foldEvent(x, e, e.event === 'gate' && audit !== undefined) })),
    ];
    for (const step of steps.sort((a, b) => a.at - b.at)) m = step.fold(m);
  } else {
    for (const l of lines) m = foldAuditLine(m, l);
  }
  m = { ...m, seen: snapshot(state) };
  // A rollout this model has not seen yet (the first read, or a new one while live).
  const fresh = m.rolloutId !== state.rolloutId;
  if (!fresh && Date.parse(state.updatedAt) < m.lastEventAt) return derive(m);

  const { pauseReason: _p, outcome: _o, lastError: _e, inFlight: _f, waitingFor: _w, pausedBy: _b, ...rest } = m;
  const step = state.plan.steps[state.step];
  const paused = state.phase === 'paused' ? state.paused : undefined;
  m = {
    ...rest,
    rolloutId: state.rolloutId,
    service: state.service,
    stable: state.stable,
    candidate: state.candidate,
    phase: state.phase,
    step: stepNumberOf(state.step),
    ladder: ladderOf(state.plan.steps.map((s) => ({ label: s.orgs ? `${s.orgs.length} orgs` : `${s.weight}`, pause: s.pause })), stepNumberOf(state.step), state.phase),
    weights: shares(state.weights, state.stable, state.candidate),
    gates: fresh ? [] : m.gates,
    stepGates: step?.gates ?? [],
    ungated: state.plan.steps.every((s) => s.gates.length === 0),
    holdClock:
      state.phase === 'holding' && state.holdUntil ? { until: Date.parse(state.holdUntil), totalMs: step?.holdMs ?? 0 }
      : paused?.reason === 'operator' ? { totalMs: step?.holdMs ?? 0, frozenRemainingMs: paused.remainingMs }
      : {},
    ...(paused ? { pauseReason: paused.reason } : {}),
    ...(paused?.reason === 'operator' ? { pausedBy: { by: paused.by, at: paused.at.slice(11, 19) } } : {}),
    ...(state.outcome ? { outcome: state.outcome.reason } : {}),
    ...(state.lastError ? { lastError: state.lastError.message } : {}),
    ...(state.waitingForTargets ? { waitingFor: state.waitingForTargets.detail } : {}),
    ...(state.intent ? { inFlight: shares(state.intent.weights, state.stable, state.candidate) } : {}),
  };
  // Back on stable: what the events said (the demo's time to safety rides on them), else the state's own record.
  if (state.phase === 'rolled_back' || state.phase === 'aborted') m = { ...m, safety: m.safety ?? safetyOfState(state) };
  else if (m.safety) {
    const { safety: _s, ...open } = m;
    m = open;
  }
  // Current values always follow the state; only events (or state changes) extend sparklines.
  for (const g of state.gates ?? []) m = withGate(m, g, !m.gates.some((l) => l.gate === g.gate));
  return derive(m);
}

/**
 * Fold audit records as they are appended (the console's own driver writes them): operator
 * actions become lines at once, ahead of the step or pause they lead to.
 */
export function foldAudit(model: ConsoleModel, records: readonly AuditRecord[]): ConsoleModel {
  let m = model;
  for (const r of records) {
    if (m.auditSeq !== undefined && r.seq <= m.auditSeq) continue;
    // Before its first event (a resume's first move) the console's rollout is the one written to.
    const rolloutId = m.follow ?? m.rolloutId ?? r.rolloutId;
    if (rolloutId !== undefined) for (const l of auditLines([r], rolloutId, false)) m = foldAuditLine(m, l);
    m = { ...m, auditSeq: r.seq };
  }
  return m;
}

/** Lines of the records newer than the last folded; the first read only marks where the log stands. */
function newAuditLines(m: ConsoleModel, records: readonly AuditRecord[], rolloutId: string, verdicts: boolean): AuditLine[] {
  if (m.auditSeq === undefined) return [];
  return auditLines(records.filter((r) => r.seq > m.auditSeq!), rolloutId, verdicts);
}

const ENDED: readonly ConsoleModel['phase'][] = ['promoted', 'rolled_back', 'aborted'];

function foldAuditLine(m: ConsoleModel, l: AuditLine): ConsoleModel {
  const logged = withLogLine(m, l.text, l.gate ? verdictTone(l.gate.verdict) : l.tone);
  // Who paused: the state says so too, but a driver's own events run ahead of its state.
  return l.pausedBy ? { ...logged, pausedBy: l.pausedBy } : logged;
}

/** Move the model's clock: the hold's time left runs down. */
export function foldTick(model: ConsoleModel, now: number): ConsoleModel {
  return derive({ ...model, now });
}

/** The console is closing with `exitCode`: no question or notice is left open in the last frame. */
export function foldClose(model: ConsoleModel, exitCode: number): ConsoleModel {
  const { confirm: _c, notice: _n, ...rest } = model;
  return { ...rest, exitCode, showHelp: false };
}

/** Fold who holds the driver lock (undefined: nobody, or a lease that ran out). */
export function foldDriver(model: ConsoleModel, driver: DriverView | undefined): ConsoleModel {
  const { driver: _d, ...rest } = model;
  return driver ? { ...rest, driver } : rest;
}

/** Fold the org directory and registry (only when the config has orgs). */
export function foldOrgs(model: ConsoleModel, source: OrgSource): ConsoleModel {
  return derive({ ...model, orgSource: source });
}

function snapshot(state: RolloutState): Seen {
  return { rolloutId: state.rolloutId, stepIndex: state.step, phase: state.phase, gateAt: Object.fromEntries((state.gates ?? []).map((g) => [g.gate, g.at])) };
}

/** Recompute what depends on time and on several sources: the hold and the orgs by version. */
function derive(m: ConsoleModel): ConsoleModel {
  const { hold: _h, orgs: _o, ...rest } = m;
  const c = m.holdClock;
  let hold: HoldView | undefined;
  if (m.phase === 'paused' && c.frozenRemainingMs !== undefined && c.totalMs) {
    hold = { totalMs: c.totalMs, remainingMs: c.frozenRemainingMs, fraction: clamp(1 - c.frozenRemainingMs / c.totalMs), frozen: true };
  } else if ((m.phase === 'holding' || m.phase === 'progressing') && c.until !== undefined) {
    // A step's hold can start a moment after the console last looked at its clock: never more
    // time left than the hold has ("1m1s left of 1m").
    const untilNow = Math.max(0, c.until - m.now);
    const remainingMs = c.totalMs !== undefined ? Math.min(c.totalMs, untilNow) : untilNow;
    const totalMs = c.totalMs ?? remainingMs;
    hold = { totalMs, remainingMs, fraction: totalMs > 0 ? clamp(1 - remainingMs / totalMs) : 1, frozen: false };
  }
  const orgs = m.orgSource ? countOrgs(m.orgSource, m) : undefined;
  return { ...rest, ...(hold ? { hold } : {}), ...(orgs ? { orgs } : {}) };
}

const clamp = (x: number) => Math.min(1, Math.max(0, x));
