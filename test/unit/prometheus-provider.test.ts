import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { PrometheusClient } from '../../src/metrics/prometheus/client.js';
import { escapeLabelValue, renderTemplate } from '../../src/metrics/prometheus/promql.js';

type Reply = Response | Error;

/** A fetch that answers from a script, one entry per call, and records what it was sent. */
function scriptedFetch(replies: Reply[]) {
  const calls: { url: string; body: URLSearchParams; headers: Headers }[] = [];
  const fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    calls.push({ url: String(input), body: new URLSearchParams(String(init?.body)), headers: new Headers(init?.headers) });
    const reply = replies.shift();
    if (reply === undefined) throw new Error('unexpected extra request');
    if (reply instanceof Error) throw reply;
    return reply;
  }) as typeof globalThis.fetch;
  return { fetch, calls };
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}

const vector = (result: unknown[]) => json(200, { status: 'success', data: { resultType: 'vector', result } });
const networkError = () => new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } });

function provider(replies: Reply[], options: { retries?: number; headers?: Record<string, string> } = {}) {
  const delays: number[] = [];
  const fake = scriptedFetch(replies);
  const prom = new PrometheusClient(
    { url: 'http://127.0.0.1:9090/prom', ...options },
    { fetch: fake.fetch, sleep: async (ms) => void delays.push(ms) },
  );
  return { prom, delays, calls: fake.calls };
}

describe('PrometheusClient', () => {
  it('POSTs the query as a form and parses a vector', async () => {
    const { prom, calls } = provider([vector([{ metric: { version: 'v2' }, value: [1700000000, '0.25'] }])], {
      headers: { authorization: 'Bearer t' },
    });
    const answer = await prom.query('sum(rate(x[5m]))', 1_700_000_000_500);
    expect(answer).toEqual({ kind: 'data', samples: [{ labels: { version: 'v2' }, value: 0.25 }] });
    expect(calls[0]!.url).toBe('http://127.0.0.1:9090/prom/api/v1/query');
    expect(calls[0]!.body.get('query')).toBe('sum(rate(x[5m]))');
    expect(calls[0]!.body.get('time')).toBe('1700000000.5');
    expect(calls[0]!.headers.get('authorization')).toBe('Bearer t');
  });

  it('retries 503, 429 and network errors, then answers', async () => {
    const { prom, delays, calls } = provider([
      json(503, { status: 'error', errorType: 'unavailable', error: 'busy' }),
      json(429, {}),
      networkError(),
      vector([{ metric: {}, value: [1, '3'] }]),
    ]);
    expect(await prom.query('up')).toEqual({ kind: 'data', samples: [{ labels: {}, value: 3 }] });
    expect(calls).toHaveLength(4);
    expect(delays).toHaveLength(3);
  });

  it('does not retry a 422 and reports Prometheus’ error', async () => {
    const { prom, calls, delays } = provider([
      json(422, { status: 'error', errorType: 'execution', error: 'vector cannot contain metrics with the same labelset' }),
    ]);
    expect(await prom.query('x')).toEqual({
      kind: 'query-error',
      message: 'execution: vector cannot contain metrics with the same labelset',
    });
    expect(calls).toHaveLength(1);
    expect(delays).toEqual([]);
  });

  it('is unreachable after retries + 1 attempts, waiting longer each time', async () => {
    const { prom, calls, delays } = provider([networkError(), networkError(), networkError(), networkError()], { retries: 3 });
    const answer = await prom.query('up');
    expect(answer.kind).toBe('unreachable');
    expect(answer.kind === 'unreachable' && answer.message).toMatch(/127\.0\.0\.1:9090\/prom unreachable after 4 attempts: fetch failed \(ECONNREFUSED\)/);
    expect(calls).toHaveLength(4);
    expect(delays).toHaveLength(3);
    expect(delays[0]!).toBeGreaterThanOrEqual(250);
    expect(delays[1]!).toBeGreaterThan(delays[0]!);
    expect(delays[2]!).toBeGreaterThan(delays[1]!);
  });

  it('treats a timeout as transient', async () => {
    const timeout = new DOMException('The operation was aborted due to timeout', 'TimeoutError');
    const { prom, calls } = provider([timeout, timeout], { retries: 1 });
    const answer = await prom.query('up');
    expect(answer).toMatchObject({ kind: 'unreachable' });
    expect(answer.kind === 'unreachable' && answer.message).toContain('no answer within 5000 ms');
    expect(calls).toHaveLength(2);
  });

  it('answers no-data for an empty vector and an empty matrix', async () => {
    const { prom } = provider([vector([]), json(200, { status: 'success', data: { resultType: 'matrix', result: [] } })]);
    expect(await prom.query('absent_metric')).toEqual({ kind: 'no-data' });
    expect(await prom.queryRange('absent_metric', 0, 60_000, 15_000)).toEqual({ kind: 'no-data' });
  });

  it('parses NaN, ±Inf and scalars', async () => {
    const { prom } = provider([
      json(200, { status: 'success', data: { resultType: 'scalar', result: [1, 'NaN'] } }),
      vector([
        { metric: { a: '1' }, value: [1, '+Inf'] },
        { metric: { a: '2' }, value: [1, '-Inf'] },
      ]),
    ]);
    const scalar = await prom.query('0/0');
    expect(scalar.kind === 'data' && scalar.samples).toEqual([{ labels: {}, value: NaN }]);
    const inf = await prom.query('1/0');
    expect(inf.kind === 'data' && inf.samples.map((s) => s.value)).toEqual([Infinity, -Infinity]);
  });

  it('converts range points to milliseconds', async () => {
    const { prom, calls } = provider([
      json(200, { status: 'success', data: { resultType: 'matrix', result: [{ metric: { v: '1' }, values: [[10, '1'], [25, '2']] }] } }),
    ]);
    const answer = await prom.queryRange('x', 10_000, 25_000, 15_000);
    expect(answer).toEqual({ kind: 'data', series: [{ labels: { v: '1' }, points: [[10_000, 1], [25_000, 2]] }] });
    expect(Object.fromEntries(calls[0]!.body)).toMatchObject({ start: '10', end: '25', step: '15' });
  });

  it('does not retry other client errors and keeps credentials out of messages', async () => {
    const fake = scriptedFetch([new Response('no', { status: 401 })]);
    const prom = new PrometheusClient({ url: 'http://user:secret@127.0.0.1:9090' }, { fetch: fake.fetch, sleep: async () => {} });
    const answer = await prom.query('up');
    expect(answer).toMatchObject({ kind: 'unreachable' });
    expect(JSON.stringify(answer)).not.toContain('secret');
    expect(fake.calls).toHaveLength(1);
  });
});

describe('escapeLabelValue', () => {
  it('escapes backslash, double quote and newline', () => {
    expect(escapeLabelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
  });
});

describe('renderTemplate', () => {
  it('escapes label values and inserts raw values as is', () => {
    const query = renderTemplate('sum(rate(http_requests_total{version="{{version}}",service="{{ service }}"}[{{window}}]))', {
      labels: { version: 'v2"} or vector(1) or {x="', service: 'patient-api' },
      raw: { window: '5m' },
    });
    expect(query).toBe('sum(rate(http_requests_total{version="v2\\"} or vector(1) or {x=\\"",service="patient-api"}[5m]))');
  });

  it('names an unknown placeholder', () => {
    expect(() => renderTemplate('x{version="{{verison}}"}', { labels: { version: 'v2' } })).toThrow(UsageError);
    expect(() => renderTemplate('x{version="{{verison}}"}', { labels: { version: 'v2' } })).toThrow(/\{\{verison\}\}/);
  });

  it('refuses raw values that could change the query', () => {
    expect(() => renderTemplate('rate(x[{{window}}])', { raw: { window: '5m]) or vector(1) #' } })).toThrow(UsageError);
    expect(() => renderTemplate('rate(x[{{window}}])', { raw: { window: '5M' } })).toThrow(/outside \[0-9a-z_.\]/);
  });
});
