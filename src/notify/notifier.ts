/**
 * The notifier: takes the driver's engine events without ever making it wait, and delivers the
 * notifications they make off the driver's path. Each destination has its own bounded queue and
 * one worker, so notifications reach a receiver in the order they happened and a receiver that
 * hangs delays nobody else. Every delivery's end — delivered after n attempts, failed and why,
 * dropped from a full queue, abandoned at the end — is handed to `record` (the audit log).
 * At the driver's end `close` gives what is still pending a bounded grace, then abandons it.
 */
import { randomUUID } from 'node:crypto';
import type { EngineEvent } from '../engine/events.js';
import type { Channel } from './channel.js';
import { deliver, type RetryPolicy } from './deliver.js';
import type { Trigger } from './schema.js';
import { TriggerTracker, type Notification } from './triggers.js';

/** How long `close` waits for pending deliveries by default. */
export const DEFAULT_GRACE_MS = 5_000;
/** Notifications waiting per destination; past it the oldest waiting one is dropped (and recorded). */
export const DEFAULT_QUEUE_LIMIT = 50;
/** How long `close` waits for the records themselves once deliveries are over. */
const RECORD_GRACE_MS = 2_000;

/** Records one delivery's end; the caller appends it to the audit log. Its failures are ignored. */
export type RecordDelivery = (action: string, detail: Record<string, unknown>, rolloutId?: string) => unknown;

/** One configured receiver, resolved: where, how, and what it is sent. */
export interface Destination {
  /** `slack#1`, or the config's name: how records name it. */
  label: string;
  type: Channel['type'];
  events: ReadonlySet<Trigger>;
  policy: RetryPolicy;
  /** Absent when the destination cannot be used (a variable not set); then `unavailable` says why. */
  target?: { url: URL; channel: Channel };
  unavailable?: string;
  /** Values no record may contain (the URL, its path, the signing secret). */
  secrets: string[];
}

/** What the notifier needs from outside. */
export interface NotifierDeps {
  record: RecordDelivery;
  clock: () => number;
  fetch?: typeof globalThis.fetch;
  queueLimit?: number;
}

/** Counts of how deliveries ended, as `close` reports them. */
export interface NotifySummary {
  delivered: number;
  failed: number;
  dropped: number;
  abandoned: number;
}

interface Job {
  notification: Notification;
  deliveryId: string;
}

/** One destination's queue and its worker. */
interface Outbox {
  destination: Destination;
  waiting: Job[];
  running: boolean;
  idle: (() => void)[];
}

/** Delivers notifications of a rollout's events to its destinations. */
export class Notifier {
  private readonly tracker = new TriggerTracker();
  private readonly outboxes: Outbox[];
  private readonly abandon = new AbortController();
  private readonly records = new Set<Promise<unknown>>();
  private readonly summary: NotifySummary = { delivered: 0, failed: 0, dropped: 0, abandoned: 0 };
  private closed = false;

  constructor(
    destinations: Destination[],
    private readonly deps: NotifierDeps,
  ) {
    this.outboxes = destinations.map((destination) => ({ destination, waiting: [], running: false, idle: [] }));
  }

  /** Whether any destination is configured (without one, events cost nothing). */
  get active(): boolean {
    return this.outboxes.length > 0;
  }

  /**
   * Take one engine event. Returns at once and never throws: the delivery happens later, off
   * the caller's path. Events after `close` are ignored.
   */
  event(e: EngineEvent): void {
    if (this.closed || !this.active) return;
    try {
      const notification = this.tracker.notificationOf(e);
      if (!notification) return;
      for (const outbox of this.outboxes) {
        if (outbox.destination.events.has(notification.trigger)) this.enqueue(outbox, notification);
      }
    } catch {
      // A notification must never cost the rollout anything, not even a bug here.
    }
  }

  /**
   * The driver is ending: wait up to `graceMs` for pending deliveries, then abandon the rest and
   * record each as abandoned. Resolves within the grace plus a short wait for the records.
   */
  async close(graceMs = DEFAULT_GRACE_MS): Promise<NotifySummary> {
    this.closed = true;
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), graceMs)));
    const drained = await Promise.race([this.idle().then(() => true as const), graceOver]);
    clearTimeout(timer);
    if (!drained) {
      const reason = `not delivered within the ${graceMs}ms grace when the driver ended`;
      for (const outbox of this.outboxes) {
        for (const job of outbox.waiting.splice(0)) this.finish(outbox.destination, job, 'notify.abandoned', { attempts: 0, reason });
      }
      // In-flight attempts and backoff waits stop at once; their workers record them as abandoned.
      this.abandon.abort(new Error(reason));
      await this.idle();
    }
    await Promise.race([Promise.allSettled([...this.records]), new Promise((resolve) => setTimeout(resolve, RECORD_GRACE_MS).unref())]);
    return { ...this.summary };
  }

  /** Resolves when every queue is empty and no delivery is in flight. */
  idle(): Promise<void> {
    return Promise.all(
      this.outboxes.map((o) => (o.running || o.waiting.length ? new Promise<void>((resolve) => o.idle.push(resolve)) : undefined)),
    ).then(() => undefined);
  }

  private enqueue(outbox: Outbox, notification: Notification): void {
    const job = { notification, deliveryId: randomUUID() };
    const { destination } = outbox;
    if (!destination.target) {
      this.finish(destination, job, 'notify.failed', { attempts: 0, reason: destination.unavailable ?? 'unavailable' });
      return;
    }
    const limit = this.deps.queueLimit ?? DEFAULT_QUEUE_LIMIT;
    if (outbox.waiting.length >= limit) {
      const dropped = outbox.waiting.shift()!;
      this.finish(destination, dropped, 'notify.dropped', { attempts: 0, reason: `${limit} notifications were waiting for this receiver; the oldest was dropped` });
    }
    outbox.waiting.push(job);
    if (outbox.running) return;
    // Started on the next turn of the event loop: even the first fetch's set-up stays off the caller.
    outbox.running = true;
    setImmediate(() => void this.work(outbox));
  }

  /** The destination's worker: one delivery at a time, oldest first, until the queue is empty. */
  private async work(outbox: Outbox): Promise<void> {
    const { destination } = outbox;
    const { url, channel } = destination.target!;
    try {
      for (let job = outbox.waiting.shift(); job; job = outbox.waiting.shift()) {
        const notification = job.notification;
        const started = performance.now();
        const result = await deliver(url, (attempt) => channel.request(notification, attempt), job.deliveryId, destination.policy, {
          fetch: this.deps.fetch ?? globalThis.fetch,
          clock: this.deps.clock,
          signal: this.abandon.signal,
        }).catch((e: unknown) => ({ outcome: 'failed' as const, attempts: 0, reason: `unexpected ${(e as Error).name}` }));
        const ms = Math.round(performance.now() - started);
        if (result.outcome === 'delivered') this.finish(destination, job, 'notify.delivered', { attempts: result.attempts, status: result.status, ms });
        else if (result.outcome === 'failed') this.finish(destination, job, 'notify.failed', { attempts: result.attempts, reason: result.reason, ms });
        else this.finish(destination, job, 'notify.abandoned', { attempts: result.attempts, reason: String((this.abandon.signal.reason as Error).message), ms });
      }
    } finally {
      outbox.running = false;
      for (const resolve of outbox.idle.splice(0)) resolve();
    }
  }

  /** Count a delivery's end and record it, with every secret of the destination taken out. */
  private finish(destination: Destination, job: Job, action: 'notify.delivered' | 'notify.failed' | 'notify.dropped' | 'notify.abandoned', detail: Record<string, unknown>): void {
    this.summary[action.slice('notify.'.length) as keyof NotifySummary] += 1;
    const n = job.notification;
    const reason = typeof detail.reason === 'string' ? redact(detail.reason, destination.secrets) : undefined;
    const record = {
      notifier: destination.label,
      type: destination.type,
      trigger: n.trigger,
      delivery: job.deliveryId,
      ...detail,
      ...(reason !== undefined ? { reason } : {}),
    };
    const pending = Promise.resolve()
      .then(() => this.deps.record(action, record, n.rolloutId))
      .catch(() => undefined);
    this.records.add(pending);
    void pending.finally(() => this.records.delete(pending));
  }
}

/** `text` with every secret replaced: a receiver may echo a URL, and a reason must not carry it on. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  // Longest first, so a URL is replaced whole rather than piece by piece.
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    if (secret.length >= 4) out = out.split(secret).join('[redacted]');
  }
  return out;
}
