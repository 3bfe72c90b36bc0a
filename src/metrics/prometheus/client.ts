/**
 * PromQL over Prometheus' HTTP API (`/api/v1/query`, `/api/v1/query_range`).
 *
 * Every failure becomes a distinct answer instead of an exception, because gates treat them
 * differently: a query Prometheus rejected (`query-error`) is a configuration mistake and is never
 * retried, a server that cannot be reached after the retries (`unreachable`) is an outage, and an
 * empty result (`no-data`) usually means no traffic yet. None of them may read as a pass.
 */
import { setTimeout as delay } from 'node:timers/promises';
import pRetry from 'p-retry';
import { UsageError } from '../../errors.js';

/** One sample of an instant vector or a scalar. */
export interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** Answer of an instant query: samples, nothing, or a distinct failure. */
export type QueryAnswer =
  | { kind: 'data'; samples: Sample[] }
  | { kind: 'no-data' }
  | { kind: 'query-error'; message: string }
  | { kind: 'unreachable'; message: string };

/** One series of a range query. */
export interface RangeSeries {
  labels: Record<string, string>;
  points: [timeMs: number, value: number][];
}

/** Answer of a range query. */
export type RangeAnswer =
  | { kind: 'data'; series: RangeSeries[] }
  | { kind: 'no-data' }
  | { kind: 'query-error'; message: string }
  | { kind: 'unreachable'; message: string };

/** What the Prometheus metrics provider asks: PromQL, instant or over a range. */
export interface PromQL {
  /** Evaluate PromQL at `timeMs` (default: now). */
  query(promql: string, timeMs?: number): Promise<QueryAnswer>;
  /** Evaluate PromQL over [startMs, endMs] every `stepMs`. */
  queryRange(promql: string, startMs: number, endMs: number, stepMs: number): Promise<RangeAnswer>;
}

/** Where Prometheus is and how patiently to ask it. */
export interface PrometheusOptions {
  /** Base URL, path prefix included (`http://127.0.0.1:9090`, `https://host/prometheus`). */
  url: string;
  /** Limit of one request, body included. Default 5000 ms. */
  timeoutMs?: number;
  /** Retries after the first attempt for transient failures. Default 3 (four attempts). */
  retries?: number;
  /** Extra request headers, such as `Authorization`; never logged or put into messages. */
  headers?: Record<string, string>;
}

/** Side effects, replaceable in tests. */
export interface PrometheusDeps {
  fetch?: typeof fetch;
  /** Waits between retries; tests pass one that records the delays and returns at once. */
  sleep?: (ms: number) => Promise<void>;
}

const FIRST_RETRY_DELAY_MS = 250;
const MAX_RETRY_DELAY_MS = 5_000;

/** A failure worth another attempt: network error, timeout, HTTP 429 or 5xx. */
class TransientError extends Error {}

/** Decoded success payload of the query APIs. */
interface ApiData {
  resultType: string;
  result: unknown;
}

type Failure = Extract<QueryAnswer, { kind: 'query-error' | 'unreachable' }>;

/** Sends PromQL to one Prometheus server. */
export class PrometheusClient implements PromQL {
  private readonly base: URL;
  private readonly fetch: typeof fetch;
  private readonly sleep: (ms: number) => Promise<void>;

  /** @throws UsageError when `options.url` is not an http(s) URL. */
  constructor(
    private readonly options: PrometheusOptions,
    deps: PrometheusDeps = {},
  ) {
    let base: URL;
    try {
      base = new URL(options.url.endsWith('/') ? options.url : `${options.url}/`);
    } catch {
      throw new UsageError(`prometheus url ${JSON.stringify(options.url)} is not a URL`, 'use e.g. http://127.0.0.1:9090');
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') {
      throw new UsageError(`prometheus url must be http or https, got ${base.protocol}`);
    }
    this.base = base;
    this.fetch = deps.fetch ?? globalThis.fetch;
    this.sleep = deps.sleep ?? ((ms) => delay(ms));
  }

  /** Instant query. Without `timeMs` Prometheus evaluates at its own clock, which avoids skew. */
  async query(promql: string, timeMs?: number): Promise<QueryAnswer> {
    const params: Record<string, string> = { query: promql };
    if (timeMs !== undefined) params.time = seconds(timeMs);
    const answer = await this.call('api/v1/query', params);
    if ('kind' in answer) return answer;
    const samples = parseInstant(answer);
    if (typeof samples === 'string') return { kind: 'query-error', message: samples };
    return samples.length === 0 ? { kind: 'no-data' } : { kind: 'data', samples };
  }

  /** Range query over [startMs, endMs] every `stepMs`; points carry milliseconds. */
  async queryRange(promql: string, startMs: number, endMs: number, stepMs: number): Promise<RangeAnswer> {
    const params = { query: promql, start: seconds(startMs), end: seconds(endMs), step: seconds(stepMs) };
    const answer = await this.call('api/v1/query_range', params);
    if ('kind' in answer) return answer;
    if (answer.resultType !== 'matrix' || !Array.isArray(answer.result)) {
      return { kind: 'query-error', message: `range query answered ${answer.resultType}, not matrix` };
    }
    const series: RangeSeries[] = (answer.result as { metric?: Record<string, string>; values?: [number, string][] }[])
      .map((s) => ({ labels: s.metric ?? {}, points: (s.values ?? []).map(([t, v]) => [t * 1000, parseValue(v)] as [number, number]) }))
      .filter((s) => s.points.length > 0);
    return series.length === 0 ? { kind: 'no-data' } : { kind: 'data', series };
  }

  /**
   * POST a form (long queries do not fit a URL) and decode the API envelope, retrying transient
   * failures with exponential backoff and jitter so that several drivers do not retry in step.
   */
  private async call(path: string, params: Record<string, string>): Promise<ApiData | Failure> {
    const url = new URL(path, this.base);
    const retries = this.options.retries ?? 3;
    try {
      return await pRetry(() => this.attempt(url, params), {
        retries,
        // p-retry decides whether and how often; the wait itself goes through the injected sleep.
        minTimeout: 0,
        shouldRetry: async ({ error, retriesConsumed }) => {
          if (!(error instanceof TransientError)) return false;
          await this.sleep(backoffDelay(retriesConsumed));
          return true;
        },
      });
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      return { kind: 'unreachable', message: `Prometheus at ${this.where()} unreachable after ${retries + 1} attempts: ${reason}` };
    }
  }

  /** One request. Answers that retrying cannot change are returned; transient ones are thrown. */
  private async attempt(url: URL, params: Record<string, string>): Promise<ApiData | Failure> {
    const timeoutMs = this.options.timeoutMs ?? 5_000;
    let status: number;
    let text: string;
    try {
      const response = await this.fetch(url, {
        method: 'POST',
        headers: { ...this.options.headers, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams(params).toString(),
        signal: AbortSignal.timeout(timeoutMs),
      });
      status = response.status;
      text = await response.text();
    } catch (error) {
      throw new TransientError(describeFetchError(error, timeoutMs));
    }
    const body = parseEnvelope(text);
    const apiError = body?.status === 'error' ? `${body.errorType ?? 'error'}: ${body.error ?? 'no message'}` : undefined;
    if (status === 429 || status >= 500) throw new TransientError(`HTTP ${status}${apiError ? ` (${apiError})` : ''}`);
    // 400 bad_data and 422 execution errors: the query itself is wrong; asking again gives the same.
    if (status === 400 || status === 422) return { kind: 'query-error', message: apiError ?? `HTTP ${status}: ${snippet(text)}` };
    if (status < 200 || status > 299) {
      return { kind: 'unreachable', message: `Prometheus at ${this.where()} answered HTTP ${status}: ${snippet(text)}` };
    }
    if (body === undefined) return { kind: 'unreachable', message: `${this.where()} did not answer like a Prometheus API: ${snippet(text)}` };
    if (apiError !== undefined) return { kind: 'query-error', message: apiError };
    const data = body.data as ApiData | undefined;
    if (data === undefined || typeof data.resultType !== 'string') {
      return { kind: 'unreachable', message: `${this.where()} answered without data: ${snippet(text)}` };
    }
    return data;
  }

  /** The server without credentials that may sit in the URL, for messages. */
  private where(): string {
    return `${this.base.origin}${this.base.pathname.replace(/\/$/, '')}`;
  }
}

/** Samples of an instant answer, or why it is not one. */
function parseInstant(data: ApiData): Sample[] | string {
  if (data.resultType === 'scalar' && Array.isArray(data.result)) {
    return [{ labels: {}, value: parseValue((data.result as [number, string])[1]) }];
  }
  if (data.resultType === 'vector' && Array.isArray(data.result)) {
    // Native histogram samples carry `histogram` instead of `value`; a gate cannot compare them.
    return (data.result as { metric?: Record<string, string>; value?: [number, string] }[])
      .filter((s) => s.value !== undefined)
      .map((s) => ({ labels: s.metric ?? {}, value: parseValue(s.value![1]) }));
  }
  return `query answered ${data.resultType}, not a number or a vector`;
}

/** Prometheus writes floats as Go does: `NaN`, `+Inf`, `-Inf` besides ordinary numbers. */
function parseValue(text: string): number {
  if (text === '+Inf' || text === 'Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  return Number(text);
}

function parseEnvelope(text: string): { status?: string; errorType?: string; error?: string; data?: unknown } | undefined {
  try {
    const body: unknown = JSON.parse(text);
    return typeof body === 'object' && body !== null ? body : undefined;
  } catch {
    return undefined;
  }
}

function describeFetchError(error: unknown, timeoutMs: number): string {
  if (error instanceof Error && error.name === 'TimeoutError') return `no answer within ${timeoutMs} ms`;
  if (!(error instanceof Error)) return String(error);
  // undici reports "fetch failed" and keeps the useful part (ECONNREFUSED, …) in the cause.
  const cause = error.cause as { code?: string; message?: string } | undefined;
  const detail = cause?.code ?? cause?.message;
  return detail === undefined ? error.message : `${error.message} (${detail})`;
}

/** Doubling delays with jitter in [1, 2): the first retry after 250–500 ms, capped at 5 s. */
function backoffDelay(retriesConsumed: number): number {
  return Math.min(Math.round(FIRST_RETRY_DELAY_MS * 2 ** retriesConsumed * (1 + Math.random())), MAX_RETRY_DELAY_MS);
}

function seconds(ms: number): string {
  return String(ms / 1000);
}

function snippet(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > 200 ? `${line.slice(0, 200)}…` : line || '(empty body)';
}
