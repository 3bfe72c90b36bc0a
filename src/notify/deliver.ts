/**
 * One delivery: POST a channel's request with a timeout on every attempt, retry what another
 * attempt can fix (no answer, a dropped connection, 408, 429, 5xx) with exponential backoff and
 * jitter, honour a Retry-After within the bound, and give up on what it cannot (other 4xx, a
 * redirect — a signed body is not forwarded to wherever a 3xx points). Failure reasons name what
 * went wrong in words (`connection refused`, `HTTP 500: …`), never the URL: for Slack and Teams
 * the URL is the secret.
 */
import { setTimeout as delay } from 'node:timers/promises';
import pRetry from 'p-retry';
import type { Attempt, ChannelRequest } from './channel.js';

/** Why an attempt failed, and whether another could succeed. */
export class DeliveryError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'DeliveryError';
  }
}

/** How hard to try. */
export interface RetryPolicy {
  /** Attempts after the first. */
  retries: number;
  /** Per attempt: connect, send, answer and its body. */
  timeoutMs: number;
  /** The first backoff; each next one doubles, with jitter. */
  backoffMs: number;
  /** No wait (backoff or Retry-After) is longer than this. */
  maxBackoffMs: number;
}

/** How a delivery ended: delivered, failed for a reason, or abandoned when the signal was aborted. */
export type DeliveryResult =
  | { outcome: 'delivered'; attempts: number; status: number }
  | { outcome: 'failed'; attempts: number; reason: string }
  | { outcome: 'abandoned'; attempts: number };

/** What a delivery needs from outside. */
export interface DeliverDeps {
  fetch: typeof globalThis.fetch;
  clock: () => number;
  /** Aborted when the notifier abandons its deliveries: attempts and waits stop at once. */
  signal: AbortSignal;
}

/** Deliver `build(attempt)` to `url` under `policy`. */
export async function deliver(url: URL, build: (attempt: Attempt) => ChannelRequest, deliveryId: string, policy: RetryPolicy, deps: DeliverDeps): Promise<DeliveryResult> {
  let attempts = 0;
  try {
    const status = await pRetry(
      async () => {
        attempts += 1;
        return postOnce(url, build({ deliveryId, number: attempts, sentAtMs: deps.clock() }), policy.timeoutMs, deps);
      },
      {
        retries: policy.retries,
        // p-retry counts and decides; the wait is ours, so it can follow Retry-After and stop on abort.
        minTimeout: 0,
        signal: deps.signal,
        shouldRetry: async ({ error, retriesConsumed }) => {
          if (!(error instanceof DeliveryError) || !error.retryable) return false;
          const backoff = policy.backoffMs * 2 ** retriesConsumed;
          const wait = Math.min(policy.maxBackoffMs, Math.max(error.retryAfterMs ?? 0, backoff / 2 + (Math.random() * backoff) / 2));
          await delay(wait, undefined, { signal: deps.signal });
          return true;
        },
      },
    );
    return { outcome: 'delivered', attempts, status };
  } catch (error) {
    if (deps.signal.aborted) return { outcome: 'abandoned', attempts };
    return { outcome: 'failed', attempts, reason: error instanceof DeliveryError ? error.message : `unexpected ${(error as Error).name}` };
  }
}

/** One POST; resolves to the 2xx status, throws a DeliveryError otherwise. */
async function postOnce(url: URL, request: ChannelRequest, timeoutMs: number, deps: DeliverDeps): Promise<number> {
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = AbortSignal.any([timeout, deps.signal]);
  let response: Response;
  let snippet: string;
  try {
    response = await deps.fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8', 'user-agent': 'cutover-notify/1', ...request.headers },
      body: request.body,
      signal,
      redirect: 'manual',
    });
    snippet = await readSnippet(response);
  } catch (error) {
    if (deps.signal.aborted) throw deps.signal.reason;
    throw new DeliveryError(timeout.aborted ? `no answer within ${timeoutMs}ms` : networkReason(error), true);
  }
  const status = response.status;
  if (status >= 200 && status < 300) return status;
  const said = `HTTP ${status}${snippet ? `: ${snippet}` : ''}`;
  if (status >= 300 && status < 400) throw new DeliveryError(`${said} (a redirect; not followed)`, false);
  const retryable = status === 408 || status === 425 || status === 429 || status >= 500;
  throw new DeliveryError(said, retryable, retryable ? retryAfterMs(response.headers.get('retry-after')) : undefined);
}

/** The first line of an answer, up to 120 characters (Slack says `invalid_payload`, Teams its error). */
async function readSnippet(response: Response): Promise<string> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  // Read little: a receiver that streams a large answer must not hold the delivery.
  while (size < 512) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.byteLength;
  }
  await reader.cancel().catch(() => undefined);
  const text = Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0]!.trim();
  return text.length > 120 ? `${text.slice(0, 119)}…` : text;
}

/** A network failure in words, from the error code undici puts in `cause`. */
function networkReason(error: unknown): string {
  const cause = (error as { cause?: { code?: string } }).cause;
  const code = cause?.code ?? (error as { code?: string }).code;
  const words: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    ECONNRESET: 'connection reset',
    ENOTFOUND: 'host not found',
    EAI_AGAIN: 'host name lookup failed',
    ETIMEDOUT: 'connection timed out',
    EHOSTUNREACH: 'host unreachable',
    ENETUNREACH: 'network unreachable',
    UND_ERR_SOCKET: 'connection closed',
    UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
    CERT_HAS_EXPIRED: 'TLS certificate expired',
    DEPTH_ZERO_SELF_SIGNED_CERT: 'TLS certificate not trusted',
    UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'TLS certificate not trusted',
    ERR_TLS_CERT_ALTNAME_INVALID: 'TLS certificate is for another host',
  };
  return code ? (words[code] ?? `network error ${code}`) : 'network error';
}

/** Retry-After in milliseconds: seconds or an HTTP date. */
function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}
