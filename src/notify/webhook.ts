/**
 * The webhook payload: the notification as JSON, with the engine event it came from, signed the
 * way GitHub signs its webhooks — `X-Cutover-Signature: sha256=<hex>`, an HMAC-SHA256 of the raw
 * body — when a secret is configured. The send time is inside the signed body as well as in
 * `X-Cutover-Timestamp`, so a receiver that checks the signature and the age rejects a replay;
 * `X-Cutover-Delivery` stays the same across attempts, so it can also drop a repeat.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Notification } from './triggers.js';
import type { Channel, Attempt, ChannelRequest } from './channel.js';

/** Header names (lower case, as node's http server reports them). */
export const SIGNATURE_HEADER = 'x-cutover-signature';
export const TIMESTAMP_HEADER = 'x-cutover-timestamp';
export const DELIVERY_HEADER = 'x-cutover-delivery';

/** What a webhook receives. */
export interface WebhookBody extends Omit<Notification, 'facts'> {
  schema: 'cutover.notification/v1';
  /** The delivery's id: the same in every attempt. */
  id: string;
  /** When this attempt was sent. */
  sentAt: string;
  facts: { name: string; value: string }[];
}

/** `sha256=<hex>`: HMAC-SHA256 of the raw body with the secret. */
export function signature(secret: string, rawBody: string): string {
  return `sha256=${createHmac('sha256', secret).update(rawBody, 'utf8').digest('hex')}`;
}

/** Whether `header` is the body's signature with `secret` (constant time); what a receiver runs. */
export function verifySignature(secret: string, rawBody: string, header: string | undefined): boolean {
  if (header === undefined) return false;
  const expected = Buffer.from(signature(secret, rawBody));
  const given = Buffer.from(header);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** A generic JSON webhook, signed when a secret is given. */
export class WebhookChannel implements Channel {
  readonly type = 'webhook';

  /** @param secret the HMAC secret's value, read from the environment by the caller. */
  constructor(private readonly secret?: string) {}

  /** The body for one attempt, signed. */
  request(n: Notification, attempt: Attempt): ChannelRequest {
    const { facts, ...rest } = n;
    const payload: WebhookBody = {
      schema: 'cutover.notification/v1',
      id: attempt.deliveryId,
      sentAt: new Date(attempt.sentAtMs).toISOString(),
      ...rest,
      facts: facts.map(([name, value]) => ({ name, value })),
    };
    const body = JSON.stringify(payload);
    const headers: Record<string, string> = {
      [DELIVERY_HEADER]: attempt.deliveryId,
      [TIMESTAMP_HEADER]: String(Math.floor(attempt.sentAtMs / 1000)),
    };
    if (this.secret !== undefined) headers[SIGNATURE_HEADER] = signature(this.secret, body);
    return { body, headers };
  }
}
