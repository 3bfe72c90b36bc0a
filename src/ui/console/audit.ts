/**
 * Lines of the console's history taken from the audit log. Operator actions — a pause, a resume,
 * an early promote — reach the log only there with who did them; and a verdict change is recorded
 * there once, from the very check that changed it, where a watcher reading the state file sees
 * only the latest check and may have missed that one.
 */
import { Chalk } from 'chalk';
import type { StepNumber } from '../../engine/plan.js';
import type { RolloutState } from '../../engine/state.js';
import type { GateResult } from '../../gates/types.js';
import type { AuditLog, AuditRecord, StateStore } from '../../state/store.js';
import { renderEventLine } from '../plain.js';
import type { Tone } from './types.js';

/** A log line recovered from an audit record, with the time it happened (epoch ms). */
export interface AuditLine {
  seq: number;
  at: number;
  text: string;
  tone: Tone;
  /** A verdict change: the console folds it as that check's gate line. */
  gate?: Omit<GateResult, 'at' | 'queries'> & { step: StepNumber };
  /** An operator's pause: who, and when (`HH:MM:SS`). */
  pausedBy?: { by: string; at: string };
}

const plainColour = new Chalk({ level: 0 });
const clock = (iso: string) => iso.slice(11, 19);

/** Who did what, in the words of the console's history. */
function operatorText(r: AuditRecord): string | undefined {
  // Records count steps as people do, from 1.
  const step = typeof r.detail?.step === 'number' ? r.detail.step : undefined;
  const at = step !== undefined ? ` at step ${step}` : '';
  switch (r.action) {
    case 'rollout.paused':
      // Pauses the plan or the gates asked for are the engine's, and have their own line.
      return r.detail?.reason === 'operator' ? `${r.actor} paused the rollout${at}` : undefined;
    case 'rollout.continued':
      return r.detail?.how === 'promote' ? `${r.actor} promoted the rollout on from step ${step ?? '?'}` : `${r.actor} resumed the rollout${at}`;
    case 'rollout.promote_step':
      return `${r.actor} promoted early: skipped the rest of step ${step ?? '?'}'s hold`;
    case 'rollout.promote_full':
      return `${r.actor} promoted to the last step from step ${step ?? '?'}`;
    default:
      return undefined;
  }
}

/**
 * The lines of `records` for rollout `rolloutId`: operator actions always, verdict changes when
 * `verdicts` is set (a watcher's; a driver's console has them as events).
 */
export function auditLines(records: readonly AuditRecord[], rolloutId: string, verdicts: boolean): AuditLine[] {
  const lines: AuditLine[] = [];
  for (const r of records) {
    if (r.rolloutId !== rolloutId) continue;
    const at = Date.parse(r.at);
    const text = operatorText(r);
    if (text) {
      const paused = r.action === 'rollout.paused' ? { pausedBy: { by: r.actor, at: clock(r.at) } } : {};
      lines.push({ seq: r.seq, at, text: `${clock(r.at)} ${text}`, tone: 'accent', ...paused });
      continue;
    }
    if (verdicts && r.action === 'gate.verdict' && isVerdict(r.detail)) {
      const { queries: _q, at: checkedAt, memory: _m, ...gate } = r.detail;
      const line = renderEventLine({ ...gate, at: checkedAt, service: '', rolloutId, event: 'gate', queries: [] }, plainColour);
      if (line) lines.push({ seq: r.seq, at: Date.parse(checkedAt), text: line, tone: 'plain', gate });
    }
  }
  return lines;
}

/**
 * The end of rollout `rolloutId` as its audit record tells it, in the words of its plain line: a
 * watcher whose reads missed that state (the demo starts its next release at once) still logs it.
 */
export function endLine(records: readonly AuditRecord[], rolloutId: string): AuditLine | undefined {
  const r = records.findLast((x) => x.rolloutId === rolloutId && END_ACTIONS.includes(x.action));
  if (!r) return undefined;
  const base = { at: r.at, service: '', rolloutId };
  const weights = (r.detail?.weights ?? {}) as Record<string, number>;
  const reason = typeof r.detail?.reason === 'string' ? r.detail.reason : r.action.slice('rollout.'.length).replace('_', ' ');
  const line =
    r.action === 'rollout.promoted'
      ? renderEventLine({ ...base, event: 'done', phase: 'promoted', exitCode: 0, step: Number(r.detail?.step ?? 0), weights }, plainColour)
      : renderEventLine({ ...base, event: 'rollback', cause: r.action === 'rollout.aborted' ? 'abort' : 'gate', reason, weights, ...(r.action === 'rollout.aborted' ? { by: r.actor } : {}) }, plainColour);
  return line ? { seq: r.seq, at: Date.parse(r.at), text: line, tone: r.action === 'rollout.promoted' ? 'good' : 'bad' } : undefined;
}

const END_ACTIONS = ['rollout.promoted', 'rollout.rolled_back', 'rollout.aborted'];

/** How the rollout `rolloutId` ended according to the audit log, if it did. */
export function endOf(records: readonly AuditRecord[], rolloutId: string): 'promoted' | 'rolled_back' | 'aborted' | undefined {
  for (let i = records.length - 1; i >= 0; i--) {
    const r = records[i]!;
    if (r.rolloutId !== rolloutId) continue;
    if (r.action === 'rollout.promoted') return 'promoted';
    if (r.action === 'rollout.rolled_back') return 'rolled_back';
    if (r.action === 'rollout.aborted') return 'aborted';
  }
  return undefined;
}

function isVerdict(detail: unknown): detail is GateResult & { step: StepNumber } {
  if (typeof detail !== 'object' || detail === null) return false;
  const d = detail as Record<string, unknown>;
  return typeof d.gate === 'string' && typeof d.verdict === 'string' && typeof d.reason === 'string' && typeof d.at === 'string' && typeof d.step === 'number';
}

/** The store as it is, but each record appended to its audit log is handed to `listener` too. */
export function onAppend(store: StateStore<RolloutState>, listener: (record: AuditRecord) => void): StateStore<RolloutState> {
  const inner = store.audit;
  const audit: AuditLog = {
    append: async (entry) => {
      const record = await inner.append(entry);
      listener(record);
      return record;
    },
    read: () => inner.read(),
    verify: () => inner.verify(),
    ...(inner.archive ? { archive: inner.archive.bind(inner) } : {}),
  };
  return new Proxy(store, { get: (target, prop) => (prop === 'audit' ? audit : (Reflect.get(target, prop, target) as unknown)) });
}
