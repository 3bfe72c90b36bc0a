/**
 * Errors of the ECS API, after retries (src/aws/call.ts retries the transient ones): each names
 * the operation and the cluster, service or task definition it was about, and what to check.
 * No credentials or no region are the user's to fix (exit 2); the workload's preflight turns a
 * missing cluster or service and a refused call into exit 2 as well, before anything is written.
 */
import { CREDENTIALS_HINT, setupProblem, type SdkErrorShape } from '../../aws/errors.js';
import { CutoverError, ExitCode } from '../../errors.js';

/** A failed ECS call. */
export class EcsApiError extends CutoverError {
  /**
   * @param code the API's error code (ClusterNotFoundException, AccessDeniedException, …)
   * @param resource the cluster, service or task definition the call was about
   * @param operation the API operation (UpdateService, …)
   */
  constructor(
    readonly code: string,
    readonly resource: string,
    readonly operation: string,
    detail: string,
    hint?: string,
    exitCode: ExitCode = ExitCode.Unexpected,
  ) {
    super(`ECS ${operation} on ${resource}: ${code}: ${detail}`, exitCode, hint ?? hintFor(code, operation));
  }

  /** Wrap whatever the SDK threw. */
  static from(error: unknown, resource: string, operation: string): EcsApiError {
    if (error instanceof EcsApiError) return error;
    const e = (error ?? {}) as SdkErrorShape;
    const code = e.name && e.name !== 'Error' ? e.name : (e.code ?? 'Error');
    const message = (e.message ?? String(error)).split('\n')[0]!;
    const setup = setupProblem(error);
    if (setup === 'credentials') return new EcsApiError('NoCredentials', resource, operation, message, CREDENTIALS_HINT, ExitCode.BadInput);
    if (setup === 'region') return new EcsApiError('NoRegion', resource, operation, message, 'set aws.region in deploy.yaml, or AWS_REGION', ExitCode.BadInput);
    return new EcsApiError(code, resource, operation, message);
  }

  /** True for a cluster or service that does not exist (or no longer does). */
  get notFound(): boolean {
    return /ClusterNotFound|ServiceNotFound|ServiceNotActive/.test(this.code);
  }

  /** True when the credentials may not do this. */
  get accessDenied(): boolean {
    return /AccessDenied|UnauthorizedOperation|Forbidden|InvalidClientTokenId|SignatureDoesNotMatch|ExpiredToken/.test(this.code);
  }
}

function hintFor(code: string, operation: string): string {
  if (/ClusterNotFound/.test(code)) return "check workload.cluster in deploy.yaml and the region (aws.region); `aws ecs list-clusters` shows the cluster's names";
  if (/ServiceNotFound|ServiceNotActive/.test(code)) return 'check workload.services in deploy.yaml; `aws ecs list-services --cluster …` shows the names';
  if (/AccessDenied|UnauthorizedOperation|Forbidden/.test(code)) {
    return `the credentials may not call ecs:${operation} on it; \`deploy iam-policy\` prints the policy the ecs workload needs`;
  }
  if (/InvalidClientTokenId|SignatureDoesNotMatch|ExpiredToken/.test(code)) return `the AWS credentials were refused. ${CREDENTIALS_HINT}`;
  if (/Throttl|TooManyRequests|RequestLimit/.test(code)) return 'ECS kept throttling after every retry; `deploy resume` tries again';
  return 'the request was refused as it was; `deploy resume` retries once the cause is fixed';
}
