/**
 * The ELBv2 domain client's error handling, with the SDK's `send` replaced: throttling and 5xx
 * are retried with backoff, permanent errors are not and come back naming the ARN with a hint.
 */
import { describe, expect, it } from 'vitest';
import { SdkAlbClient, type SendFn } from '../../src/routers/alb/client.js';
import { AlbApiError, classifyAlbError } from '../../src/routers/alb/errors.js';
import { albClientOptions, albRegion } from '../../src/routers/alb/config.js';
import { ExitCode, UsageError } from '../../src/errors.js';
import { LISTENER } from '../helpers/fake-alb.js';

const sdkError = (name: string, status: number, fault: 'client' | 'server' = status >= 500 ? 'server' : 'client') =>
  Object.assign(new Error(`${name} happened`), { name, $fault: fault, $metadata: { httpStatusCode: status } });
const listenerPage = { Listeners: [{ ListenerArn: LISTENER, LoadBalancerArn: 'lb', DefaultActions: [{ Type: 'forward', TargetGroupArn: 'tg' }] }] };

/** A send that fails with `errors` in turn, then answers `answer`. */
function failing(errors: Error[], answer: unknown = listenerPage): SendFn & { sent: number } {
  const send = Object.assign(async () => {
    send.sent += 1;
    const e = errors.shift();
    if (e) throw e;
    return answer;
  }, { sent: 0 }) as SendFn & { sent: number };
  send.sent = 0;
  return send;
}

describe('ELBv2 domain client', () => {
  it('retries throttling and 5xx with growing, jittered delays, then returns the answer', async () => {
    const retries: number[] = [];
    const send = failing([sdkError('ThrottlingException', 400), sdkError('Throttling', 400), sdkError('InternalFailure', 500)]);
    const client = new SdkAlbClient({ region: 'eu-west-1', minDelayMs: 5, maxDelayMs: 100 }, send, (_op, _e, delay) => retries.push(delay));
    const listener = await client.describeListener(LISTENER);
    expect(listener.actions[0]!.forward!.targetGroups).toEqual([{ targetGroupArn: 'tg', weight: 1 }]);
    expect(send.sent).toBe(4);
    expect(client.calls).toEqual({ DescribeListeners: 1 });
    expect(client.attempts).toEqual({ DescribeListeners: 4 });
    expect(retries).toHaveLength(3);
    // Exponential with jitter: each delay is within [min·2^n, 2·min·2^n].
    retries.forEach((d, n) => {
      expect(d).toBeGreaterThanOrEqual(5 * 2 ** n);
      expect(d).toBeLessThanOrEqual(2 * 5 * 2 ** n);
    });
  });

  it('gives up after its retries with the throttling error and a hint to resume', async () => {
    const client = new SdkAlbClient({ region: 'eu-west-1', retries: 2, minDelayMs: 1, maxDelayMs: 2 }, failing(Array.from({ length: 5 }, () => sdkError('Throttling', 400))));
    const error = (await client.setListenerActions(LISTENER, []).catch((e: unknown) => e)) as AlbApiError;
    expect(error).toBeInstanceOf(AlbApiError);
    expect(client.attempts.ModifyListener).toBe(3);
    expect(error.message).toBe(`ELBv2 ModifyListener on ${LISTENER}: Throttling: Throttling happened`);
    expect(error.hint).toMatch(/deploy resume/);
  });

  it('does not retry permanent errors and names the ARN with a hint', async () => {
    for (const [name, hint] of [['ListenerNotFoundException', /check the ARN .* eu-west-1/], ['AccessDenied', /deploy iam-policy/], ['ValidationError', /refused/]] as const) {
      const send = failing([sdkError(name, 400)]);
      const error = (await new SdkAlbClient({ region: 'eu-west-1', minDelayMs: 1 }, send).describeListener(LISTENER).catch((e: unknown) => e)) as AlbApiError;
      expect(send.sent, name).toBe(1);
      expect(error.message).toContain(LISTENER);
      expect(error.hint).toMatch(hint);
    }
  });

  it('reports missing credentials as exit 2 with where the default chain looks', async () => {
    const noCredentials = Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' });
    const error = (await new SdkAlbClient({ region: 'eu-west-1' }, failing([noCredentials])).describeListener(LISTENER).catch((e: unknown) => e)) as AlbApiError;
    expect(error.exitCode).toBe(ExitCode.BadInput);
    expect(error.hint).toMatch(/AWS_PROFILE .* AWS_ACCESS_KEY_ID/);
  });

  it('classifies errors by name, status and fault', () => {
    expect(classifyAlbError(sdkError('TooManyRequestsException', 429))).toBe('transient');
    expect(classifyAlbError(sdkError('ServiceUnavailable', 503))).toBe('transient');
    expect(classifyAlbError(Object.assign(new Error('reset'), { code: 'ECONNRESET' }))).toBe('transient');
    expect(classifyAlbError(sdkError('RuleNotFound', 400))).toBe('permanent');
    expect(classifyAlbError(sdkError('PriorityInUse', 400))).toBe('permanent');
  });
});

describe('ALB region', () => {
  const r = { listenerArn: LISTENER, targetGroups: {}, type: 'alb' as const };
  it("defaults to the listener ARN's region and refuses another one, saying what to set", () => {
    expect(albRegion(r, {})).toBe('eu-west-1');
    expect(albRegion({ ...r, region: 'eu-west-1' }, { AWS_REGION: 'us-east-1' })).toBe('eu-west-1');
    expect(() => albRegion(r, { AWS_REGION: 'us-east-1' })).toThrow(UsageError);
    expect(() => albRegion(r, { AWS_REGION: 'us-east-1' })).toThrow('AWS_REGION is us-east-1, but the listener');
    expect(albClientOptions({ ...r, profile: 'clinic', endpointUrl: 'http://127.0.0.1:5000' }, {})).toEqual({ region: 'eu-west-1', profile: 'clinic', endpointUrl: 'http://127.0.0.1:5000' });
  });
});

describe('ELBv2 calls against an endpoint that never answers', () => {
  it('end each attempt at its time limit, retry it, and fail naming the operation: no call hangs', async () => {
    const { createServer } = await import('node:net');
    const held: import('node:net').Socket[] = [];
    // Accepts connections and reads requests, but never answers: a hung ModifyListener.
    const server = createServer((socket) => {
      held.push(socket);
      socket.on('data', () => undefined);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as import('node:net').AddressInfo).port;
    const env = { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' };
    const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
    Object.assign(process.env, env);
    try {
      const client = new SdkAlbClient({ region: 'eu-west-1', endpointUrl: `http://127.0.0.1:${port}`, requestTimeoutMs: 400, retries: 2, minDelayMs: 10, maxDelayMs: 20 });
      const t0 = performance.now();
      const error = await client.describeListener(LISTENER).catch((e: unknown) => e);
      const ms = performance.now() - t0;
      expect(error).toBeInstanceOf(AlbApiError);
      expect((error as Error).message).toMatch(/^ELBv2 DescribeListeners on arn:.*: /);
      expect(client.attempts.DescribeListeners).toBe(3);
      // Three attempts of 400 ms each and two short delays: far from hanging.
      expect(ms).toBeGreaterThan(3 * 350);
      expect(ms).toBeLessThan(3_000);
    } finally {
      for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
      else process.env[k] = v;
      held.forEach((s) => s.destroy());
      await new Promise((r) => server.close(r));
    }
  });
});
