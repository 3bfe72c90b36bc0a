/**
 * A channel turns a notification into one HTTP request: the body and headers a kind of receiver
 * (a webhook, Slack, Teams) expects. Channels do no I/O; delivery (timeouts, retries, the queue)
 * is the notifier's, the same for every channel.
 */
import type { Notification } from './triggers.js';

/** One attempt at a delivery. */
export interface Attempt {
  /** The delivery's id, the same in every attempt (a receiver can drop repeats by it). */
  deliveryId: string;
  /** 1 for the first attempt. */
  number: number;
  /** When this attempt is sent (the injected clock). */
  sentAtMs: number;
}

/** What is POSTed. */
export interface ChannelRequest {
  /** The raw JSON body, exactly as sent (and signed). */
  body: string;
  /** Headers besides content-type. */
  headers: Record<string, string>;
}

/** A kind of receiver. */
export interface Channel {
  /** The config's `type`. */
  readonly type: 'webhook' | 'slack' | 'teams';
  /** The request for one attempt: built per attempt, since a signature covers the send time. */
  request(n: Notification, attempt: Attempt): ChannelRequest;
}
