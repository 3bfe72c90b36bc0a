/**
 * Errors of any AWS API, sorted into the two kinds that matter to a rollout: transient ones
 * (throttling, 5xx, a dropped connection or an attempt past its time limit), retried with
 * backoff, and permanent ones, reported once. Every AWS provider classifies with this.
 */

/** What a failed call means for retrying. */
export type AwsErrorKind = 'transient' | 'permanent';

const THROTTLING = new Set(['Throttling', 'ThrottlingException', 'ThrottledException', 'TooManyRequestsException', 'RequestLimitExceeded', 'SlowDown', 'RequestThrottled']);
// AbortError: an attempt ended by its own time limit (the client aborts nothing else).
const NETWORK = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'TimeoutError', 'AbortError', 'RequestTimeout', 'RequestTimeoutException']);

/** The fields of an SDK error that say what happened. */
export interface SdkErrorShape {
  name?: string;
  code?: string;
  message?: string;
  $fault?: 'client' | 'server';
  $metadata?: { httpStatusCode?: number };
  $retryable?: { throttling?: boolean };
}

/** Throttling, 5xx and network failures are transient; everything else is permanent. */
export function classifyAwsError(error: unknown): AwsErrorKind {
  const e = (error ?? {}) as SdkErrorShape;
  const status = e.$metadata?.httpStatusCode;
  if (e.name && THROTTLING.has(e.name)) return 'transient';
  if (e.$retryable || status === 429 || (status !== undefined && status >= 500) || e.$fault === 'server') return 'transient';
  if ((e.code && NETWORK.has(e.code)) || (e.name && NETWORK.has(e.name))) return 'transient';
  return 'permanent';
}

/** Where the AWS default provider chain looks, as a hint. */
export const CREDENTIALS_HINT =
  'Cutover uses the AWS default credential chain: set AWS_PROFILE (or aws.profile) to a profile in ~/.aws/config, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run with an instance, task or web-identity role';

/** Whether the SDK failed for want of credentials or a region: bad set-up, not a failed call. */
export function setupProblem(error: unknown): 'credentials' | 'region' | undefined {
  const e = (error ?? {}) as SdkErrorShape;
  const message = e.message ?? String(error);
  if (e.name === 'CredentialsProviderError' || (/credential/i.test(message) && /could not load|missing/i.test(message))) return 'credentials';
  if (/region is missing/i.test(message)) return 'region';
  return undefined;
}
