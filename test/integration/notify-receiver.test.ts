/**
 * Notifications against a real HTTP receiver on loopback (node:http, started here on a free
 * port): every trigger of real engine runs reaches a webhook, Slack and Teams in each one's
 * payload; the webhook's signature verifies with the secret; a 500 is retried until accepted;
 * a receiver that is down or hangs is given up within its bounds, recorded, and never holds the
 * caller past the grace (measured); no secret reaches a payload, a header or a record.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { drive } from '../../src/engine/driver.js';
import type { EngineEvent } from '../../src/engine/events.js';
import { emit, type EngineDeps, type GateRunner, startRollout, tick, unpause } from '../../src/engine/machine.js';
import { validateState, type RolloutState } from '../../src/engine/state.js';
import type { GateResult, Verdict } from '../../src/gates/types.js';
import { auditedNotifier, createNotifier, verifySignature, type Notifier, type NotifyConfig } from '../../src/notify/index.js';
import { LocalStateStore } from '../../src/state/local/store.js';
import { planCanary } from '../../strategies/canary.js';
import { engineHarness, FakeRouter } from '../helpers/fakes.js';

/** What the receiver got. */
interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  atMs: number;
}
type Answer = { status: number; body?: string; headers?: Record<string, string> } | 'hang';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A receiver on a free loopback port; `answer` decides each reply (or never replies). */
async function startReceiver(answer: (r: Received, count: number) => Answer = () => ({ status: 200, body: 'ok' })) {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r = { path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), atMs: performance.now() };
      received.push(r);
      const a = answer(r, received.filter((x) => x.path === r.path).length);
      if (a === 'hang') return;
      res.writeHead(a.status, a.headers);
      res.end(a.body ?? '');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new Error(`the test receiver could not start: ${e.message}`)));
    server.listen(0, '127.0.0.1', resolve);
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const close = () => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
  cleanups.push(close);
  return { base, received, close };
}

/** A loopback port nothing listens on: taken, then given back. */
async function refusedUrl(): Promise<string> {
  const { base, close } = await startReceiver();
  await close();
  return `${base}/down`;
}

/** A notifier whose records are kept in memory. */
function notifierFor(config: NotifyConfig, env: Record<string, string> = {}, extra: { queueLimit?: number } = {}) {
  const records: { action: string; detail: Record<string, unknown>; rolloutId?: string }[] = [];
  const notifier = createNotifier(config, {
    env,
    clock: Date.now,
    record: (action, detail, rolloutId) => void records.push({ action, detail, ...(rolloutId ? { rolloutId } : {}) }),
    backoffMs: 50,
    maxBackoffMs: 2_000,
    ...extra,
  });
  cleanups.push(() => void notifier.close(0));
  return { notifier, records };
}

const event = (body: Record<string, unknown>): EngineEvent =>
  ({ at: new Date().toISOString(), service: 'patient-api', rolloutId: 'r-1', ...body }) as EngineEvent;
const started = event({ event: 'started', stable: 'v1', candidate: 'v2', steps: [{ weight: 5, holdMs: 60_000, pause: false }, { weight: 100, holdMs: 0, pause: false }] });
const step = (n: number) => event({ event: 'step', step: n, steps: 2, weight: n ? 100 : 5, weights: n ? { v1: 0, v2: 100 } : { v1: 95, v2: 5 }, holdMs: 0, holdUntil: new Date().toISOString() });

class ScriptedGates implements GateRunner {
  verdict: Verdict = 'passed';
  async evaluate(_s: RolloutState, names: string[], atMs: number): Promise<GateResult[]> {
    return names.map((gate) => ({ gate, type: 'errorRate', verdict: this.verdict, queries: ['q'], reason: `scripted ${this.verdict}`, at: new Date(atMs).toISOString() }));
  }
}

/**
 * Four real engine runs, their events to `sink`: a pause for a person then the promotion, a
 * failed gate, an abort asked of the driver, a driver that gives up. Each ends with `done`
 * emitted as src/cli/drive.ts emits it.
 */
async function engineRuns(sink: (e: EngineEvent) => void): Promise<void> {
  const run = async (extra: Partial<EngineDeps>, body: (h: ReturnType<typeof engineHarness<FakeRouter>>, end: (s: RolloutState, maxAttempts?: number) => Promise<RolloutState>) => Promise<void>) => {
    const h = engineHarness(new FakeRouter(), { ...extra, emit: sink });
    try {
      const end = async (s: RolloutState, maxAttempts = 5) => {
        const lock = await h.store.acquireLock(h.deps.actor, 30_000);
        try {
          const result = await drive(s, { ...h.deps, lock, sleep: h.clock.sleep, leaseMs: 30_000, checkIntervalMs: 10_000, requestPollMs: 5_000, maxAttempts });
          const r = result.state;
          emit(h.deps, r, { event: 'done', phase: r.phase, exitCode: result.exitCode, weights: r.weights, stable: r.stable, candidate: r.candidate, durationMs: h.clock.now - Date.parse(r.startedAt), ...(r.outcome ? { reason: r.outcome.reason } : {}) });
          return r;
        } finally {
          await lock.release();
        }
      };
      await body(h, end);
    } finally {
      h.dispose();
    }
  };
  const spec = (plan: RolloutState['plan']) => ({ service: 'patient-api', stable: 'v1', candidate: 'v2', plan });
  await run({}, async (h, end) => {
    const s = await end(await startRollout(spec(planCanary({ steps: [{ weight: 10, hold: 60_000, pause: true }, { weight: 100 }] })), h.deps));
    await end(await unpause(s, 'promote', h.deps));
  });
  const gates = new ScriptedGates();
  await run({ gates }, async (h, end) => {
    const s = await tick(await startRollout(spec(planCanary({ steps: [{ weight: 5, hold: 60_000 }, { weight: 100 }] }, ['errors'])), h.deps), h.deps);
    gates.verdict = 'failed';
    await end(s);
  });
  await run({}, async (h, end) => {
    const s = await tick(await startRollout(spec(planCanary()), h.deps), h.deps);
    await h.store.postRequest({ id: 'r1', kind: 'abort', reason: 'pager went off', by: { ...h.deps.actor, owner: 'oncall@desk' }, at: new Date(h.clock.now).toISOString() });
    await end(s);
  });
  await run({}, async (h, end) => {
    h.router.failNext = 100;
    await end(await startRollout(spec(planCanary()), h.deps), 3);
  });
}

const SECRET = 'whsec-9f2c1e77b0d54a3e';
const SLACK_TOKEN = 'xoxbTOKEN4d1f9a2b7c';
const TEAMS_SIG = 'sigTEAMS8e3b5c1d0f';

describe('notifications to a real receiver on loopback', () => {
  it('every trigger of real engine runs reaches a webhook, Slack and Teams, each in its own payload', async () => {
    const rx = await startReceiver();
    const env = { HOOK_SECRET: SECRET, SLACK_URL: `${rx.base}/slack/services/T0/B0/${SLACK_TOKEN}`, TEAMS_URL: `${rx.base}/teams/workflows/run?sig=${TEAMS_SIG}` };
    const { notifier, records } = notifierFor(
      [
        { type: 'webhook', url: `${rx.base}/hook`, secretEnv: 'HOOK_SECRET' },
        { type: 'slack', urlEnv: 'SLACK_URL' },
        { type: 'teams', urlEnv: 'TEAMS_URL', events: ['paused', 'rolled_back', 'aborted', 'failed'] },
      ],
      env,
    );
    await engineRuns((e) => notifier.event(e));
    await notifier.idle();
    const all = ['started', 'step', 'paused', 'step', 'promoted', 'started', 'step', 'rolled_back', 'started', 'step', 'aborted', 'started', 'failed'];

    const hooks = rx.received.filter((r) => r.path === '/hook');
    const bodies = hooks.map((r) => JSON.parse(r.body));
    expect(bodies.map((b) => b.trigger)).toEqual(all);
    for (const r of hooks) {
      expect(r.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(verifySignature(SECRET, r.body, r.headers['x-cutover-signature'] as string)).toBe(true);
    }
    expect(bodies[2]).toMatchObject({ schema: 'cutover.notification/v1', trigger: 'paused', severity: 'warning', service: 'patient-api', stable: 'v1', candidate: 'v2', event: { event: 'paused', reason: 'step' } });
    expect(bodies[7]).toMatchObject({ trigger: 'rolled_back', text: 'Rolled back: gate errors failed: scripted failed', event: { event: 'rollback', cause: 'gate', weights: { v1: 100 } } });
    expect(bodies[12]).toMatchObject({ trigger: 'failed', severity: 'danger' });
    expect(bodies[12].text).toContain('router unavailable');

    const slack = rx.received.filter((r) => r.path.startsWith('/slack/')).map((r) => JSON.parse(r.body));
    expect(slack).toHaveLength(all.length);
    expect(slack.map((m) => m.blocks[0].text.text)).toEqual(bodies.map((b) => expect.stringContaining(b.title)));
    expect(slack[4]).toMatchObject({ text: expect.stringContaining('v2 promoted'), blocks: [{ type: 'header' }, { type: 'section' }, { type: 'section' }, { type: 'context' }] });

    const teams = rx.received.filter((r) => r.path.startsWith('/teams/')).map((r) => JSON.parse(r.body));
    const cards = teams.map((m) => m.attachments[0].content);
    expect(cards.map((c) => c.body[0].text)).toEqual([bodies[2].title, bodies[7].title, bodies[10].title, bodies[12].title]);
    expect(teams.every((m) => m.type === 'message' && m.attachments[0].contentType === 'application/vnd.microsoft.card.adaptive')).toBe(true);

    expect(records.filter((r) => r.action === 'notify.delivered')).toHaveLength(all.length * 2 + 4);
    expect(records.every((r) => r.action === 'notify.delivered' && r.detail.attempts === 1 && r.detail.status === 200)).toBe(true);
    expect(records[0]).toMatchObject({ detail: { notifier: 'webhook#1', type: 'webhook', trigger: 'started' } });
    expect(await notifier.close()).toEqual({ delivered: 30, failed: 0, dropped: 0, abandoned: 0 });
  });

  it("the webhook's signature verifies with the secret, covers the send time, and a changed body fails it", async () => {
    const rx = await startReceiver();
    const { notifier } = notifierFor([{ type: 'webhook', url: `${rx.base}/hook`, secretEnv: 'HOOK_SECRET' }], { HOOK_SECRET: SECRET });
    notifier.event(started);
    await notifier.idle();
    const [r] = rx.received;
    const header = r!.headers['x-cutover-signature'] as string;
    expect(header).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(verifySignature(SECRET, r!.body, header)).toBe(true);
    expect(verifySignature('not-the-secret', r!.body, header)).toBe(false);
    expect(verifySignature(SECRET, r!.body.replace('"v2"', '"v3"'), header)).toBe(false);
    const body = JSON.parse(r!.body);
    expect(Number(r!.headers['x-cutover-timestamp'])).toBe(Math.floor(Date.parse(body.sentAt) / 1000));
    expect(r!.headers['x-cutover-delivery']).toBe(body.id);
  });

  it('a 500 is retried with backoff until accepted, in one delivery; the record says after 3 attempts', async () => {
    const rx = await startReceiver((_r, n) => (n <= 2 ? { status: 500, body: 'busy' } : { status: 204 }));
    const { notifier, records } = notifierFor([{ type: 'webhook', url: `${rx.base}/hook`, secretEnv: 'HOOK_SECRET' }], { HOOK_SECRET: SECRET });
    notifier.event(started);
    await notifier.idle();
    expect(rx.received).toHaveLength(3);
    expect(new Set(rx.received.map((r) => r.headers['x-cutover-delivery'])).size).toBe(1);
    // Each attempt is signed anew (its send time is in the body), and each verifies.
    expect(rx.received.every((r) => verifySignature(SECRET, r.body, r.headers['x-cutover-signature'] as string))).toBe(true);
    const gaps = rx.received.slice(1).map((r, i) => r.atMs - rx.received[i]!.atMs);
    expect(gaps[0]).toBeGreaterThanOrEqual(25); // 50ms backoff, jittered down to half at least
    expect(gaps[1]).toBeGreaterThanOrEqual(50); // doubled
    expect(records).toEqual([{ action: 'notify.delivered', rolloutId: 'r-1', detail: expect.objectContaining({ notifier: 'webhook#1', trigger: 'started', attempts: 3, status: 204 }) }]);
  });

  it("a 429's Retry-After is waited for; a 404 is not retried", async () => {
    const rx = await startReceiver((r, n) => (r.path === '/slow' && n === 1 ? { status: 429, headers: { 'retry-after': '1' } } : r.path === '/gone' ? { status: 404, body: 'no_service' } : { status: 200 }));
    const { notifier, records } = notifierFor([
      { type: 'webhook', url: `${rx.base}/slow` },
      { type: 'slack', urlEnv: 'GONE' },
    ], { GONE: `${rx.base}/gone` });
    notifier.event(started);
    await notifier.idle();
    const slow = rx.received.filter((r) => r.path === '/slow');
    expect(slow[1]!.atMs - slow[0]!.atMs).toBeGreaterThanOrEqual(950);
    expect(rx.received.filter((r) => r.path === '/gone')).toHaveLength(1);
    expect(records.map((r) => [r.action, r.detail.notifier, r.detail.attempts, r.detail.reason])).toEqual(
      expect.arrayContaining([
        ['notify.delivered', 'webhook#1', 2, undefined],
        ['notify.failed', 'slack#2', 1, 'HTTP 404: no_service'],
      ]),
    );
  });

  it('a receiver that is down: refused, given up within its retries, recorded; the caller never waits', async () => {
    const { notifier, records } = notifierFor([{ type: 'webhook', url: await refusedUrl(), retries: 2 }]);
    const t0 = performance.now();
    notifier.event(started);
    notifier.event(step(0));
    const callerMs = performance.now() - t0;
    await notifier.idle();
    const totalMs = performance.now() - t0;
    expect(callerMs).toBeLessThan(20);
    expect(totalMs).toBeLessThan(2_000); // 2 × 3 attempts, backoff 50 → 100ms (jittered) each
    expect(records.map((r) => [r.action, r.detail.trigger, r.detail.attempts, r.detail.reason])).toEqual([
      ['notify.failed', 'started', 3, 'connection refused'],
      ['notify.failed', 'step', 3, 'connection refused'],
    ]);
    console.log(`receiver down: event() took ${callerMs.toFixed(2)}ms; both deliveries given up after ${totalMs.toFixed(0)}ms`);
  });

  it('a receiver that hangs: each attempt times out and is recorded, and it delays no other receiver', async () => {
    const rx = await startReceiver((r) => (r.path === '/hang' ? 'hang' : { status: 200 }));
    const { notifier, records } = notifierFor([
      { type: 'webhook', url: `${rx.base}/hang`, timeout: 200, retries: 1 },
      { type: 'webhook', url: `${rx.base}/fine` },
    ]);
    const t0 = performance.now();
    notifier.event(started);
    expect(performance.now() - t0).toBeLessThan(20);
    await notifier.idle();
    const fine = rx.received.find((r) => r.path === '/fine')!;
    expect(fine.atMs - t0).toBeLessThan(150); // not after the hanging receiver's 200ms timeout
    expect(rx.received.filter((r) => r.path === '/hang')).toHaveLength(2);
    expect(records.map((r) => [r.action, r.detail.notifier, r.detail.attempts, r.detail.reason])).toEqual([
      ['notify.delivered', 'webhook#2', 1, undefined],
      ['notify.failed', 'webhook#1', 2, 'no answer within 200ms'],
    ]);
  });

  it("at the driver's end a hanging receiver gets the grace, no more: the rest is abandoned and recorded", async () => {
    const rx = await startReceiver(() => 'hang');
    const { notifier, records } = notifierFor([{ type: 'slack', urlEnv: 'SLACK_URL', timeout: 300, retries: 10 }], { SLACK_URL: `${rx.base}/slack/services/T0/B0/${SLACK_TOKEN}` });
    const t0 = performance.now();
    notifier.event(started);
    notifier.event(step(0));
    notifier.event(step(1));
    const callerMs = performance.now() - t0;
    const closing = performance.now();
    const summary = await notifier.close(1_000);
    const closeMs = performance.now() - closing;
    expect(callerMs).toBeLessThan(20);
    expect(closeMs).toBeGreaterThanOrEqual(990);
    expect(closeMs).toBeLessThan(1_300);
    expect(summary).toEqual({ delivered: 0, failed: 0, dropped: 0, abandoned: 3 });
    const abandoned = records.filter((r) => r.action === 'notify.abandoned');
    expect(abandoned.map((r) => r.detail.trigger).sort()).toEqual(['started', 'step', 'step']);
    expect(abandoned.find((r) => r.detail.trigger === 'started')!.detail.attempts).toBeGreaterThanOrEqual(2);
    expect(abandoned.every((r) => r.detail.reason === 'not delivered within the 1000ms grace when the driver ended')).toBe(true);
    // Nothing is left running: no more attempts after close.
    const count = rx.received.length;
    await new Promise((r) => setTimeout(r, 400));
    expect(rx.received.length).toBe(count);
    console.log(`hanging receiver: event() ×3 took ${callerMs.toFixed(2)}ms; close(1000) returned after ${closeMs.toFixed(0)}ms`);
  });

  it('a full queue drops the oldest waiting notification, and says so', async () => {
    const rx = await startReceiver(() => 'hang');
    const { notifier, records } = notifierFor([{ type: 'webhook', url: `${rx.base}/hang`, timeout: 5_000 }], {}, { queueLimit: 2 });
    notifier.event(started);
    await new Promise((r) => setTimeout(r, 50)); // in flight, hanging
    for (const n of [0, 1, 0, 1]) notifier.event(step(n));
    expect(await notifier.close(100)).toEqual({ delivered: 0, failed: 0, dropped: 2, abandoned: 3 });
    expect(records.filter((r) => r.action === 'notify.dropped').map((r) => r.detail.reason)).toEqual([
      '2 notifications were waiting for this receiver; the oldest was dropped',
      '2 notifications were waiting for this receiver; the oldest was dropped',
    ]);
  });

  it('no secret reaches a payload, a header, a record or a reason — not even one a receiver echoes', async () => {
    const rx = await startReceiver((r) => (r.path.startsWith('/teams/') ? { status: 400, body: `no workflow at ${r.path}` } : { status: 200 }));
    const env = { HOOK_SECRET: SECRET, SLACK_URL: `${rx.base}/slack/services/T0/B0/${SLACK_TOKEN}`, TEAMS_URL: `${rx.base}/teams/workflows/run?sig=${TEAMS_SIG}` };
    const { notifier, records } = notifierFor(
      [
        { type: 'webhook', url: `${rx.base}/hook`, secretEnv: 'HOOK_SECRET' },
        { type: 'slack', urlEnv: 'SLACK_URL' },
        { type: 'teams', urlEnv: 'TEAMS_URL', retries: 0 },
      ],
      env,
    );
    await engineRuns((e) => notifier.event(e));
    await notifier.close();
    const teamsFailure = records.find((r) => r.detail.notifier === 'teams#3')!;
    expect(teamsFailure.detail.reason).toBe('HTTP 400: no workflow at [redacted]');
    const sent = rx.received.map((r) => `${r.body}\n${JSON.stringify({ ...r.headers, 'x-cutover-signature': undefined })}`).join('\n');
    const recorded = JSON.stringify(records);
    for (const secret of [SECRET, SLACK_TOKEN, TEAMS_SIG, env.SLACK_URL, env.TEAMS_URL]) {
      expect(sent).not.toContain(secret);
      expect(recorded).not.toContain(secret);
    }
    expect(recorded).not.toContain(rx.base);
  });

  it('a variable that is not set: that notifier sends nothing — never unsigned — and each miss is recorded', async () => {
    const rx = await startReceiver();
    const { notifier, records } = notifierFor([
      { type: 'webhook', url: `${rx.base}/hook`, secretEnv: 'HOOK_SECRET' },
      { type: 'slack', urlEnv: 'SLACK_URL' },
      { type: 'teams', urlEnv: 'TEAMS_URL' },
    ], { TEAMS_URL: 'not a url at all' });
    notifier.event(started);
    await notifier.close();
    expect(rx.received).toHaveLength(0);
    expect(records.map((r) => [r.action, r.detail.notifier, r.detail.reason])).toEqual([
      ['notify.failed', 'webhook#1', 'HOOK_SECRET is not set (the signing secret); not sent unsigned'],
      ['notify.failed', 'slack#2', 'SLACK_URL is not set'],
      ['notify.failed', 'teams#3', 'TEAMS_URL is not an http(s) URL'],
    ]);
  });

  it("records go to the rollout's audit log, chained and attributed", async () => {
    const rx = await startReceiver((_r, n) => (n === 1 ? { status: 503 } : { status: 200 }));
    const dir = mkdtempSync(join(tmpdir(), 'cutover-notify-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const store = new LocalStateStore<RolloutState>(dir, { validate: validateState });
    const notifier: Notifier = auditedNotifier([{ type: 'webhook', url: `${rx.base}/hook` }, { type: 'slack', urlEnv: 'SLACK_URL' }], {
      audit: store.audit,
      actor: 'nurse@ward',
      env: {},
      clock: Date.now,
      backoffMs: 50,
    });
    notifier.event(started);
    await notifier.close();
    const audit = await store.audit.read();
    expect(audit.map((r) => [r.action, r.actor, r.rolloutId, r.detail?.notifier, r.detail?.attempts])).toEqual(
      expect.arrayContaining([
        ['notify.delivered', 'nurse@ward', 'r-1', 'webhook#1', 2],
        ['notify.failed', 'nurse@ward', 'r-1', 'slack#2', 0],
      ]),
    );
    expect(await store.audit.verify()).toMatchObject({ ok: true, records: 2 });
  });
});
