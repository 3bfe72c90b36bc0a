/**
 * Errors of the ELBv2 API, sorted into the two kinds that matter to a rollout: transient ones
 * (throttling, 5xx, a dropped connection), which are retried with backoff, and permanent ones
 * (not found, access denied, validation, no credentials), which are reported once with the ARN
 * they concern and what to do about it.
 */
import { classifyAwsError, CREDENTIALS_HINT, setupProblem, type AwsErrorKind, type SdkErrorShape } from '../../aws/errors.js';
import { CutoverError, ExitCode } from '../../errors.js';

export { CREDENTIALS_HINT } from '../../aws/errors.js';

/** What a failed call means for retrying. */
export type AlbErrorKind = AwsErrorKind;

/** Throttling, 5xx and network failures are transient; everything else is permanent. */
export const classifyAlbError = classifyAwsError;

/** A failed ELBv2 call, after retries if it was transient. */
export class AlbApiError extends CutoverError {
  /**
   * @param code the API's error code (ListenerNotFound, AccessDenied, …)
   * @param arn the resource the call was about
   * @param operation the API operation (ModifyListener, …)
   */
  constructor(
    readonly code: string,
    readonly arn: string,
    readonly operation: string,
    detail: string,
    hint?: string,
    exitCode: ExitCode = ExitCode.Unexpected,
  ) {
    super(`ELBv2 ${operation} on ${arn}: ${code}: ${detail}`, exitCode, hint ?? hintFor(code, arn, operation));
  }

  /** Wrap whatever the SDK threw. */
  static from(error: unknown, arn: string, operation: string): AlbApiError {
    if (error instanceof AlbApiError) return error;
    const e = (error ?? {}) as SdkErrorShape;
    const code = e.name && e.name !== 'Error' ? e.name : (e.code ?? 'Error');
    const message = (e.message ?? String(error)).split('\n')[0]!;
    const setup = setupProblem(error);
    if (setup === 'credentials') {
      return new AlbApiError('NoCredentials', arn, operation, message, CREDENTIALS_HINT, ExitCode.BadInput);
    }
    if (setup === 'region') {
      return new AlbApiError('NoRegion', arn, operation, message, 'set router.region in deploy.yaml, or AWS_REGION', ExitCode.BadInput);
    }
    return new AlbApiError(code, arn, operation, message);
  }

  /** True for a resource that does not exist (listener, rule, target group, load balancer). */
  get notFound(): boolean {
    return /NotFound/.test(this.code);
  }

  /** True when the credentials may not do this. */
  get accessDenied(): boolean {
    return /AccessDenied|UnauthorizedOperation|Forbidden|InvalidClientTokenId|SignatureDoesNotMatch|ExpiredToken/.test(this.code);
  }
}

function hintFor(code: string, arn: string, operation: string): string {
  if (/NotFound/.test(code)) {
    const region = arn.split(':')[3];
    return `check the ARN in deploy.yaml's router section and that it lives in ${region ?? 'the configured region'} of this account; \`deploy plan\` shows the router`;
  }
  if (/AccessDenied|UnauthorizedOperation|Forbidden/.test(code)) {
    return `the credentials may not call elasticloadbalancing:${operation} on it; \`deploy iam-policy\` prints the policy the router needs`;
  }
  if (/InvalidClientTokenId|SignatureDoesNotMatch|ExpiredToken/.test(code)) return `the AWS credentials were refused. ${CREDENTIALS_HINT}`;
  if (/Throttl|TooManyRequests|RequestLimit/.test(code)) return 'ELBv2 kept throttling after every retry; `deploy resume` tries again';
  if (/TooMany|PriorityInUse/.test(code)) return 'the listener has no room for the rule: see the ALB quotas (100 rules per load balancer by default)';
  return 'the request was refused as it was; `deploy resume` retries once the cause is fixed';
}
