/**
 * Gates over a metrics source that speaks no PromQL: a fake whose queries are plain words, so
 * what a gate reports sending can only come from the source.
 */
import { describe, expect, it } from 'vitest';
import { evaluateGate } from '../../src/gates/evaluate.js';
import { checkGateQueries, measureTraffic } from '../../src/gates/runner.js';
import type { Config } from '../../src/config/schema.js';
import type { Measurement, Metrics, MetricScope, RequestCounts } from '../../src/metrics/metrics.js';

type Counts = Record<string, RequestCounts | 'down'>;

/** Answers request counts from a table keyed by `version` (or `version@offset`); everything else is unreachable. */
function fakeMetrics(counts: Counts): Metrics & { asked: MetricScope[] } {
  const asked: MetricScope[] = [];
  const unreachable = async (): Promise<Measurement<never>> => ({ kind: 'unreachable', message: 'not in this fake', query: 'n/a', sent: [] });
  return {
    name: 'FakeWatch',
    unreachableHint: 'start the fake',
    asked,
    requestCounts: async (_gate, scope): Promise<Measurement<RequestCounts>> => {
      asked.push(scope);
      const key = scope.offsetSeconds ? `${scope.version}@${scope.offsetSeconds}` : scope.version;
      const sent = [`RequestCount ${key}`, `HTTPCode_Target_5XX_Count ${key}`];
      const c = counts[key];
      if (c === 'down') return { kind: 'unreachable', message: 'endpoint timed out', query: sent[0]!, sent };
      return c ? { kind: 'data', value: c, sent } : { kind: 'no-data', sent };
    },
    requestCountsByOrg: unreachable,
    latencyP99: unreachable,
    latencyRequests: unreachable,
    fastRequests: unreachable,
    queryValue: unreachable,
    replayRequestCounts: unreachable,
    replayLatency: unreachable,
    replayQueryValues: unreachable,
    check: async (gate) => (gate.name === 'broken' ? { kind: 'query-error', message: 'no such metric', query: 'Bogus', sent: ['Bogus'] } : { kind: 'no-data', sent: [] }),
  };
}

const w = { service: 'patient-api', stable: 'v1', candidate: 'v2', startMs: 0, atMs: 300_000 };
const gate = { name: 'errors', type: 'errorRate', maxIncrease: 0.01 } as const;

describe('gates over a neutral metrics source', () => {
  it('judges the counts the source gives and reports the source’s own queries', async () => {
    const metrics = fakeMetrics({ v2: { requests: 20_000, errors: 600 }, v1: { requests: 20_000, errors: 100 } });
    const r = await evaluateGate(gate, metrics, w);
    expect(r.verdict).toBe('failed');
    expect(r.queries).toEqual(['RequestCount v2', 'HTTPCode_Target_5XX_Count v2', 'RequestCount v1', 'HTTPCode_Target_5XX_Count v1']);
    expect(metrics.asked.every((s) => s.atMs === 300_000 && s.windowSeconds === 300)).toBe(true);
  });

  it('takes stable’s baseline from the window before when stable serves nothing', async () => {
    const metrics = fakeMetrics({ v2: { requests: 20_000, errors: 10 }, 'v1@300': { requests: 20_000, errors: 10 } });
    const r = await evaluateGate(gate, metrics, w);
    expect(r.verdict).toBe('passed');
    expect(r.queries.slice(-2)).toEqual(['RequestCount v1@300', 'HTTPCode_Target_5XX_Count v1@300']);
  });

  it('names the source when it cannot be reached', async () => {
    const r = await evaluateGate(gate, fakeMetrics({ v2: 'down' }), w);
    expect(r).toMatchObject({ verdict: 'error', reason: 'FakeWatch unreachable: endpoint timed out' });
  });

  it('preflight: a rejected query is a config error naming the gate and the source', async () => {
    const config = { service: 'patient-api', gates: [{ name: 'ok', type: 'errorRate' }, { name: 'broken', type: 'errorRate' }] } as unknown as Config;
    await expect(checkGateQueries(config, fakeMetrics({}), 'v1', 'v2')).rejects.toThrow('gate broken: FakeWatch rejected its query: no such metric\n  query: Bogus');
  });

  it('measures stable’s traffic through the first error-rate gate, and is undefined when the source is down', async () => {
    const config = { service: 'patient-api', gates: [gate] } as unknown as Config;
    expect(await measureTraffic(config, fakeMetrics({ v1: { requests: 1200, errors: 6 } }), 'v1', 0)).toEqual({ requestsPerSecond: 2, errorRate: 0.005, windowSeconds: 600 });
    expect(await measureTraffic(config, fakeMetrics({ v1: 'down' }), 'v1', 0)).toBeUndefined();
  });
});
