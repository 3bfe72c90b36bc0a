/**
 * A narrow domain client over the CloudWatch SDK: the one call the `cloudwatch` metrics source
 * makes, GetMetricData, in its own terms. The source depends on the `MetricDataReader` interface
 * only, so unit tests can answer for CloudWatch where an emulator cannot.
 *
 * Calls go out as every AWS provider's do (src/aws/call.ts): one attempt at a time with a time
 * limit, transient failures retried with backoff. Every failure becomes a distinct answer, because
 * gates treat them differently: a request CloudWatch rejects (a bad expression, a statistic it
 * does not know) is a configuration mistake and is not retried; CloudWatch out of reach — or
 * refusing the credentials — is an outage of the source. Neither may read as a pass.
 */
import { CloudWatchClient, GetMetricDataCommand, type GetMetricDataCommandOutput, type MetricDataQuery } from '@aws-sdk/client-cloudwatch';
import { attemptSignal, sdkClientSettings, withRetries, type CallBounds } from '../../aws/call.js';
import { classifyAwsError, CREDENTIALS_HINT, setupProblem, type SdkErrorShape } from '../../aws/errors.js';
import { isExtended, type MetricDataRequest } from './queries.js';

/** One series of a query: ascending timestamps (epoch ms) and their values. */
export interface MetricPoints {
  timestamps: number[];
  values: number[];
}

/** What GetMetricData answered: each query id's series (a SEARCH expression may give several), or why not. */
export type MetricDataAnswer =
  | { kind: 'data'; results: Map<string, MetricPoints[]> }
  | { kind: 'query-error'; message: string }
  | { kind: 'unreachable'; message: string };

/** What the cloudwatch source asks of CloudWatch. */
export interface MetricDataReader {
  /** Every query of `request` over its range, all pages read. */
  getMetricData(request: MetricDataRequest): Promise<MetricDataAnswer>;
}

/** Where and how patiently to ask. Credentials always come from the default provider chain. */
export interface CloudWatchOptions extends CallBounds {
  region?: string;
  profile?: string;
  /** A CloudWatch-compatible endpoint instead of AWS's (an emulator). */
  endpointUrl?: string;
}

/** Sends one SDK command; injectable so tests can answer in CloudWatch's place where an emulator cannot. */
export type SendFn = (command: GetMetricDataCommand) => Promise<GetMetricDataCommandOutput>;

/**
 * A gate check waits for its answers, so a source that does not answer is given up on sooner
 * than a router write would be (as with Prometheus: two retries, five seconds an attempt).
 */
export const GATE_CALL_BOUNDS: CallBounds = { retries: 2, minDelayMs: 250, maxDelayMs: 2_000, requestTimeoutMs: 5_000 };

/** An endpoint that answered a request with an extended statistic by something that is no CloudWatch answer. */
class ExtendedStatisticUnsupported extends Error {}

const REFUSED = /AccessDenied|NotAuthorized|UnauthorizedOperation|InvalidClientTokenId|SignatureDoesNotMatch|ExpiredToken|UnrecognizedClient/;

/** GetMetricData through the SDK, with retries and answers sorted by what they mean. */
export class SdkMetricDataReader implements MetricDataReader {
  private readonly bounds: CallBounds;
  private readonly send: SendFn;
  private readonly where: string;

  constructor(options: CloudWatchOptions, send?: SendFn) {
    const { region, profile, endpointUrl, ...own } = options;
    this.bounds = { ...GATE_CALL_BOUNDS, ...own };
    this.where = endpointUrl ?? (region ? `CloudWatch in ${region}` : 'CloudWatch');
    if (send) this.send = send;
    else {
      const sdk = new CloudWatchClient({
        ...sdkClientSettings(this.bounds),
        ...(region ? { region } : {}),
        ...(profile ? { profile } : {}),
        ...(endpointUrl ? { endpoint: endpointUrl } : {}),
      });
      this.send = (command) => sdk.send(command, { abortSignal: attemptSignal(this.bounds) });
    }
  }

  async getMetricData(request: MetricDataRequest): Promise<MetricDataAnswer> {
    const extended = request.queries.flatMap((q) => ('stat' in q && isExtended(q.stat) ? [q.stat] : []));
    const series = new Map<string, { id: string; points: [number, number][] }>();
    let token: string | undefined;
    try {
      do {
        const page = await withRetries(() => this.attempt(request, token, extended), this.bounds);
        const failed = (page.MetricDataResults ?? []).find((r) => r.StatusCode === 'InternalError' || r.StatusCode === 'Forbidden');
        if (failed) {
          const why = [...(failed.Messages ?? []), ...(page.Messages ?? [])].map((m) => `${m.Code ?? 'error'}: ${m.Value ?? ''}`).join('; ') || failed.StatusCode!;
          return { kind: failed.StatusCode === 'Forbidden' ? 'unreachable' : 'query-error', message: `CloudWatch could not compute ${failed.Id}: ${why}` };
        }
        for (const r of page.MetricDataResults ?? []) {
          const key = `${r.Id}\u0000${r.Label ?? ''}`;
          const s = series.get(key) ?? { id: r.Id ?? '', points: [] };
          (r.Timestamps ?? []).forEach((t, i) => {
            const v = r.Values?.[i];
            if (v !== undefined && Number.isFinite(v)) s.points.push([t.getTime(), v]);
          });
          series.set(key, s);
        }
        token = page.NextToken;
      } while (token);
    } catch (error) {
      return this.explain(error, extended);
    }
    const results = new Map<string, MetricPoints[]>();
    for (const { id, points } of series.values()) {
      points.sort((a, b) => a[0] - b[0]);
      results.set(id, [...(results.get(id) ?? []), { timestamps: points.map((p) => p[0]), values: points.map((p) => p[1]) }]);
    }
    return { kind: 'data', results };
  }

  private async attempt(request: MetricDataRequest, token: string | undefined, extended: string[]): Promise<GetMetricDataCommandOutput> {
    try {
      return await this.send(
        new GetMetricDataCommand({
          StartTime: new Date(request.startMs),
          EndTime: new Date(request.endMs),
          ScanBy: 'TimestampAscending',
          MetricDataQueries: request.queries.map(toSdk),
          ...(token ? { NextToken: token } : {}),
        }),
      );
    } catch (error) {
      // CloudWatch answers every request in its protocol; a body that is none (an HTML error page)
      // to a request with a percentile is an endpoint that cannot compute one (moto), not an outage.
      if (extended.length && /Deserialization error/.test((error as Error)?.message ?? '')) {
        throw new ExtendedStatisticUnsupported(`${this.where} answered HTTP ${(error as SdkErrorShape).$metadata?.httpStatusCode ?? '?'} with no CloudWatch answer to a request for ${extended.join(', ')}`);
      }
      throw error;
    }
  }

  /** The answer for a call that failed for good. */
  private explain(error: unknown, extended: string[]): MetricDataAnswer {
    const e = (error ?? {}) as SdkErrorShape;
    const name = e.name && e.name !== 'Error' ? e.name : (e.code ?? 'Error');
    const message = (e.message ?? String(error)).split('\n')[0]!;
    if (error instanceof ExtendedStatisticUnsupported) {
      return { kind: 'query-error', message: `${message}: it computes no extended statistics (${extended.join(', ')})` };
    }
    const setup = setupProblem(error);
    if (setup === 'credentials') return { kind: 'unreachable', message: `no AWS credentials for ${this.where} (${message}). ${CREDENTIALS_HINT}` };
    if (setup === 'region') return { kind: 'unreachable', message: `no AWS region for CloudWatch (${message}): set aws.region in deploy.yaml, or AWS_REGION` };
    if (classifyAwsError(error) === 'transient') {
      return { kind: 'unreachable', message: `${this.where} unreachable after ${(this.bounds.retries ?? 5) + 1} attempts: ${name}: ${message}` };
    }
    if (e.$metadata?.httpStatusCode === 403 || REFUSED.test(name)) {
      return { kind: 'unreachable', message: `${this.where} refused GetMetricData: ${name}: ${message}; the credentials need cloudwatch:GetMetricData (\`deploy iam-policy\`)` };
    }
    return { kind: 'query-error', message: `${name}: ${message}` };
  }
}

function toSdk(q: MetricDataRequest['queries'][number]): MetricDataQuery {
  if ('expression' in q) return { Id: q.id, Expression: q.expression, Period: q.periodSeconds, ReturnData: true };
  return {
    Id: q.id,
    MetricStat: {
      Metric: { Namespace: q.namespace, MetricName: q.metric, Dimensions: q.dimensions.map((d) => ({ Name: d.name, Value: d.value })) },
      Period: q.periodSeconds,
      Stat: q.stat,
    },
    ReturnData: q.returnData ?? true,
  };
}
