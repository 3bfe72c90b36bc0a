/**
 * What each key of the console does, as a pure step of the model: a key may open a y/n question,
 * toggle a view, or yield an operator action for the console to carry out. Risky actions (promote
 * now, abort) always pass through a confirmation first.
 */
import type { ConsoleModel } from './model.js';
import { withNotice } from './model.js';

/** What the console carries out for a key. */
export type OperatorAction = 'promote' | 'abort' | 'pause' | 'resume' | 'quit';

/** A key as the terminal reported it. */
export interface KeyPress {
  input: string;
  ctrl?: boolean;
  escape?: boolean;
}

/** One entry of the key line at the bottom of the console. */
export interface KeyHint {
  key: string;
  label: string;
  enabled: boolean;
}

const ACTIVE: readonly ConsoleModel['phase'][] = ['pending', 'progressing', 'holding', 'paused', 'failed'];

/** A rollout that keys can still act on. */
export function isActive(model: ConsoleModel): boolean {
  return ACTIVE.includes(model.phase);
}

/**
 * Whether moving on (promote, resume) can happen from here: the console that drives can always
 * drive again; `deploy watch` can only ask a driver that is running.
 */
export function canMoveOn(model: ConsoleModel): boolean {
  return model.mode === 'drive' || model.driver !== undefined;
}

/** What space does now: pause a hold, resume an operator's pause or an inconclusive one, retry a failed write. */
export function spaceAction(model: ConsoleModel): 'pause' | 'resume' | undefined {
  if (model.phase === 'holding') return 'pause';
  if (!canMoveOn(model)) return undefined;
  if (model.phase === 'failed' || (model.phase === 'paused' && model.pauseReason !== 'step')) return 'resume';
  return undefined;
}

/** The y/n question of promote-now, or undefined when there is nothing to promote. */
function promoteQuestion(m: ConsoleModel): string | undefined {
  if ((m.phase !== 'holding' && m.phase !== 'paused') || !canMoveOn(m)) return undefined;
  // Rungs are listed from the first step: the one after step n is rung n.
  const next = m.ladder[m.step];
  const target = next ? `go to step ${m.step + 1} (${stepLabel(next.label)})` : `finish: ${m.candidate} takes all traffic`;
  return m.phase === 'paused' ? `Promote now: ${target}?` : `Skip the rest of this hold and ${target}?`;
}

const stepLabel = (label: string) => (/^\d/.test(label) && !label.includes(' ') ? `${label}%` : label);

/** Why promote or pause does nothing now. */
function whyNot(m: ConsoleModel, what: 'promote' | 'pause'): string {
  if (!isActive(m)) return m.phase === 'none' ? 'no rollout yet' : 'the rollout is over';
  if (!canMoveOn(m)) return `no driver is running: \`deploy ${m.phase === 'paused' && m.pauseReason === 'step' ? `promote --to ${m.candidate}` : 'resume'}\` carries on`;
  return `nothing to ${what} while ${m.phase}`;
}

/** Apply one key to the model; the action, if any, is for the console to carry out. */
export function pressKey(model: ConsoleModel, key: KeyPress): { model: ConsoleModel; action?: OperatorAction } {
  const quit = key.input === 'q' || (key.ctrl === true && key.input === 'c');
  if (model.confirm) {
    const { confirm, ...rest } = model;
    if (quit && key.input !== 'q') return { model: rest, action: 'quit' };
    if (key.input === 'y' || key.input === 'Y') return { model: withNotice(rest, undefined), action: confirm.action };
    return { model: withNotice(rest, confirm.action === 'abort' ? 'not aborted' : 'not promoted') };
  }
  if (quit) return { model, action: 'quit' };
  if (key.escape) return { model: withNotice({ ...model, showHelp: false, showOrgs: false }, undefined) };
  switch (key.input) {
    case '?':
      return { model: { ...model, showHelp: !model.showHelp } };
    case 'o':
      return { model: { ...model, showOrgs: !model.showOrgs, showHelp: false } };
    case 'p': {
      const question = promoteQuestion(model);
      if (!question) return { model: withNotice(model, whyNot(model, 'promote')) };
      return { model: { ...withNotice(model, undefined), confirm: { action: 'promote', question } } };
    }
    case 'a':
      if (!isActive(model)) return { model: withNotice(model, model.phase === 'none' ? 'no rollout to abort' : 'the rollout is over') };
      return { model: { ...withNotice(model, undefined), confirm: { action: 'abort', question: `Abort: send all traffic back to ${model.stable}?` } } };
    case ' ': {
      const action = spaceAction(model);
      if (action) return { model: withNotice(model, undefined), action };
      return { model: withNotice(model, model.phase === 'paused' && model.pauseReason === 'step' && canMoveOn(model) ? 'the plan waits for a manual go here: p promotes' : whyNot(model, 'pause')) };
    }
    default:
      return { model };
  }
}

/** The key line: what each key does now, and whether it does anything. */
export function keyHints(model: ConsoleModel): KeyHint[] {
  const space = spaceAction(model);
  return [
    { key: 'p', label: 'promote', enabled: promoteQuestion(model) !== undefined },
    { key: 'a', label: 'abort', enabled: isActive(model) },
    { key: 'space', label: space ?? 'pause', enabled: space !== undefined },
    { key: 'o', label: model.showOrgs ? 'gates' : 'orgs', enabled: true },
    { key: '?', label: 'help', enabled: true },
    { key: 'q', label: 'leave', enabled: true },
  ];
}
