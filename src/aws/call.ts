/**
 * How every AWS provider sends a call: the SDK's own retry off (so attempts are not multiplied),
 * each attempt bounded by a time limit well inside the driver's lease, transient failures retried
 * with exponential backoff and jitter, and every retry reported.
 */
import pRetry from 'p-retry';
import { classifyAwsError } from './errors.js';

/** Bounds of the attempts of one call. */
export interface CallBounds {
  /** Retries after the first attempt (default 5). */
  retries?: number;
  /** First and longest delay between attempts (default 200 ms and 5 s). */
  minDelayMs?: number;
  maxDelayMs?: number;
  /** Longest one attempt may take (default 10 s): a hung call is retried, never waited on. */
  requestTimeoutMs?: number;
  /** No retry starts after this long (default: only the count bounds them). */
  maxRetryTimeMs?: number;
}

/** Longest one AWS attempt may take by default. */
export const AWS_REQUEST_TIMEOUT_MS = 10_000;

/**
 * Bounds that keep a call, retries and all, inside a driver lease renewed just before it: a
 * quarter lease an attempt, half a lease for all of them.
 */
export function boundsForLease(leaseMs: number | undefined): CallBounds {
  return leaseMs ? { requestTimeoutMs: Math.min(AWS_REQUEST_TIMEOUT_MS, leaseMs / 4), maxRetryTimeMs: leaseMs / 2 } : {};
}

/** The SDK client settings for these bounds: one attempt, socket and connection timeouts. */
export function sdkClientSettings(bounds: CallBounds): { maxAttempts: 1; requestHandler: { connectionTimeout: number; requestTimeout: number } } {
  const timeoutMs = bounds.requestTimeoutMs ?? AWS_REQUEST_TIMEOUT_MS;
  return { maxAttempts: 1, requestHandler: { connectionTimeout: Math.min(3_000, timeoutMs), requestTimeout: timeoutMs } };
}

/** The signal that bounds one whole attempt (the socket timeouts only end a silent connection). */
export function attemptSignal(bounds: CallBounds): AbortSignal {
  return AbortSignal.timeout(bounds.requestTimeoutMs ?? AWS_REQUEST_TIMEOUT_MS);
}

/** Run `attempt` until it succeeds or fails permanently; `onRetry` hears of every retry. */
export function withRetries<T>(attempt: () => Promise<T>, bounds: CallBounds, onRetry?: (error: Error, delayMs: number) => void): Promise<T> {
  return pRetry(attempt, {
    retries: bounds.retries ?? 5,
    ...(bounds.maxRetryTimeMs ? { maxRetryTime: bounds.maxRetryTimeMs } : {}),
    factor: 2,
    minTimeout: bounds.minDelayMs ?? 200,
    maxTimeout: bounds.maxDelayMs ?? 5_000,
    randomize: true,
    shouldRetry: ({ error }) => classifyAwsError(error) === 'transient',
    onFailedAttempt: ({ error, retryDelay }) => {
      if (retryDelay > 0 && classifyAwsError(error) === 'transient') onRetry?.(error, retryDelay);
    },
  });
}
