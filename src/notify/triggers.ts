/**
 * Which engine events people are told about. The engine's events are the only source: a step
 * going live, a pause, a rollback (its cause says gate or abort) and the driver's `done` (its
 * phase says promoted or failed). What was said is remembered per rollout, so a rollback is
 * announced once — at the rollback, when traffic is already safe — and not again at `done`.
 */
import { formatDuration } from '../config/units.js';
import type { EngineEvent } from '../engine/events.js';
import type { StepNumber } from '../engine/plan.js';
import type { PauseReason } from '../engine/state.js';
import { formatWeights } from '../ui/plain.js';
import type { Trigger } from './schema.js';

/** How a notification should look: the colour or style a channel gives it. */
export type Severity = 'info' | 'good' | 'warning' | 'danger';

/** One thing to tell people, in words every channel renders its own way. */
export interface Notification {
  trigger: Trigger;
  severity: Severity;
  service: string;
  rolloutId: string;
  /** When it happened (the engine event's time). */
  at: string;
  stable?: string;
  candidate?: string;
  /** One line: `patient-api: v2 rolled back, all traffic on v1`. */
  title: string;
  /** What happened and what a person can do next. */
  text: string;
  /** Label and value pairs: traffic, step, reason. */
  facts: [string, string][];
  /** The engine event it came from, as `--output json` prints it. */
  event: EngineEvent;
}

const PAUSED_BECAUSE: Record<PauseReason, string> = {
  step: 'the plan asks for a manual go: `deploy promote` goes on, `deploy abort` goes back',
  operator: 'an operator paused it: `deploy resume` goes on, `deploy abort` goes back',
  inconclusive: 'the gates stayed inconclusive: `deploy resume` gives them more time, `deploy promote` goes on, `deploy abort` goes back',
  stuck: 'the promotion did not roll out: `deploy resume` once it is fixed, or `deploy abort`',
};

/** What is known about one rollout from the events seen so far. */
interface Seen {
  stable?: string;
  candidate?: string;
  steps?: number;
  /** The rollback already announced (a `done` that follows says nothing new). */
  rolledBack?: boolean;
  /** The last error the driver gave up on: why a `failed` rollout failed. */
  lastError?: string;
}

/** Turns engine events into notifications, remembering what each rollout has said. */
export class TriggerTracker {
  private readonly seen = new Map<string, Seen>();

  /** The notification an event makes, or undefined when it makes none. */
  notificationOf(e: EngineEvent): Notification | undefined {
    const seen = this.seen.get(e.rolloutId) ?? {};
    this.seen.set(e.rolloutId, seen);
    const base = (trigger: Trigger, severity: Severity, title: string, text: string, facts: [string, string][]): Notification => ({
      trigger,
      severity,
      service: e.service,
      rolloutId: e.rolloutId,
      at: e.at,
      ...(seen.stable !== undefined ? { stable: seen.stable } : {}),
      ...(seen.candidate !== undefined ? { candidate: seen.candidate } : {}),
      title: `${e.service}: ${title}`,
      text,
      facts: facts.filter(([, v]) => v !== ''),
      event: e,
    });
    const ofStep = (step: StepNumber) => (seen.steps !== undefined ? `${step}/${seen.steps}` : `${step}`);
    switch (e.event) {
      case 'started':
        Object.assign(seen, { stable: e.stable, candidate: e.candidate, steps: e.steps.length });
        return base('started', 'info', `rollout of ${e.candidate} started`, `${e.stable} → ${e.candidate} in ${e.steps.length} steps: ${e.steps.map((s) => `${s.weight}%`).join(' → ')}`, [
          ['Stable', e.stable],
          ['Candidate', e.candidate],
          ['Holds', formatDuration(e.steps.reduce((sum, s) => sum + s.holdMs, 0))],
        ]);
      case 'step': {
        seen.steps = e.steps;
        const share = e.orgs !== undefined ? `${e.orgs} orgs` : `${+e.weight.toFixed(3)}%`;
        return base('step', 'info', `step ${ofStep(e.step)}, ${seen.candidate ?? 'the candidate'} at ${share}`, `Traffic is ${formatWeights(e.weights)}${e.holdMs ? `; the gates watch it for ${formatDuration(e.holdMs)}` : ''}.`, [
          ['Step', ofStep(e.step)],
          ['Traffic', formatWeights(e.weights)],
          ['Hold', e.holdMs ? `${formatDuration(e.holdMs)}, until ${e.holdUntil}` : ''],
          ['Orgs on the candidate', e.orgs !== undefined ? String(e.orgs) : ''],
        ]);
      }
      case 'paused':
        return base('paused', 'warning', `paused at step ${ofStep(e.step)}, waiting for a person`, `Paused because ${PAUSED_BECAUSE[e.reason]}.`, [
          ['Step', ofStep(e.step)],
          ['Reason', e.reason],
        ]);
      case 'rollback': {
        seen.rolledBack = true;
        const abort = e.cause === 'abort';
        const safe = Object.entries(e.weights).find(([, w]) => w === 100)?.[0] ?? seen.stable;
        return base(abort ? 'aborted' : 'rolled_back', 'danger', `${seen.candidate ?? 'the candidate'} ${abort ? 'aborted' : 'rolled back'}${safe ? `, all traffic on ${safe}` : ''}`, `${abort ? 'Aborted' : 'Rolled back'}: ${e.reason}`, [
          ['Traffic', formatWeights(e.weights)],
          ['Reason', e.reason],
          ['Target', e.target ?? ''],
          ['Failed requests beyond stable', e.excessFailures !== undefined ? String(e.excessFailures) : ''],
          ['Time to safety', e.timeToSafetyMs !== undefined ? formatDuration(e.timeToSafetyMs) : ''],
        ]);
      }
      case 'error':
        if (!e.retrying) seen.lastError = e.message;
        return undefined;
      case 'done':
        return this.doneNotification(e, seen, base);
      default:
        return undefined;
    }
  }

  /** `done`: promoted and failed are said here; a rollback only when its own event was not seen. */
  private doneNotification(
    e: Extract<EngineEvent, { event: 'done' }>,
    seen: Seen,
    base: (trigger: Trigger, severity: Severity, title: string, text: string, facts: [string, string][]) => Notification,
  ): Notification | undefined {
    if (e.stable !== undefined) seen.stable = e.stable;
    if (e.candidate !== undefined) seen.candidate = e.candidate;
    const facts: [string, string][] = [
      ['Traffic', formatWeights(e.weights)],
      ['Ran', e.durationMs !== undefined ? formatDuration(e.durationMs) : ''],
      ...(e.gates ?? []).map((g): [string, string] => [`Gate ${g.gate}`, `${g.verdict}: ${g.reason}`]),
    ];
    const candidate = seen.candidate ?? 'the candidate';
    switch (e.phase) {
      case 'promoted':
        return base('promoted', 'good', `${candidate} promoted, all traffic on it`, e.reason ? `Promoted: ${e.reason}.` : 'Promoted.', facts);
      case 'failed': {
        const why = e.reason ?? seen.lastError;
        return base('failed', 'danger', `rollout of ${candidate} failed`, `The driver gave up${why ? `: ${why}` : ''}. Traffic stays as last recorded; \`deploy resume\` tries again, \`deploy abort\` goes back.`, [
          ...facts,
          ['Reason', why ?? ''],
        ]);
      }
      case 'rolled_back':
      case 'aborted': {
        if (seen.rolledBack) return undefined;
        seen.rolledBack = true;
        const aborted = e.phase === 'aborted';
        return base(e.phase, 'danger', `${candidate} ${aborted ? 'aborted' : 'rolled back'}`, `${aborted ? 'Aborted' : 'Rolled back'}${e.reason ? `: ${e.reason}` : '.'}`, [...facts, ['Reason', e.reason ?? '']]);
      }
      default:
        // paused was said by its own event; detached is a driver stopping, not the rollout.
        return undefined;
    }
  }
}
