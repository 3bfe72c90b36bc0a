/**
 * Notifications from the engine's own events: the engine runs in-process with a fake router (as
 * in engine.test.ts), its events go through the trigger tracker, and the triggers that fire are
 * those a person expects — once each, in order. Also the `notify:` schema and the payloads'
 * shapes, which need no receiver.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { drive } from '../../src/engine/driver.js';
import type { EngineEvent } from '../../src/engine/events.js';
import { emit, type EngineDeps, type GateRunner, startRollout, tick, unpause } from '../../src/engine/machine.js';
import type { RolloutState } from '../../src/engine/state.js';
import type { GateResult, Verdict } from '../../src/gates/types.js';
import { notifySchema } from '../../src/notify/schema.js';
import { SlackChannel } from '../../src/notify/slack.js';
import { TeamsChannel } from '../../src/notify/teams.js';
import { TriggerTracker, type Notification } from '../../src/notify/triggers.js';
import { signature, verifySignature, WebhookChannel } from '../../src/notify/webhook.js';
import { planCanary } from '../../strategies/canary.js';
import { engineHarness, FakeRouter } from '../helpers/fakes.js';

class ScriptedGates implements GateRunner {
  verdict: Verdict = 'passed';
  async evaluate(_s: RolloutState, names: string[], atMs: number): Promise<GateResult[]> {
    return names.map((gate) => ({ gate, type: 'errorRate', verdict: this.verdict, queries: ['q'], reason: `scripted ${this.verdict}`, at: new Date(atMs).toISOString() }));
  }
}

const disposers: (() => void)[] = [];
afterEach(() => disposers.splice(0).forEach((d) => d()));

/** An engine with a fake router whose events are kept, as a command's driver would see them. */
function engine(extra: Partial<EngineDeps> = {}) {
  const h = engineHarness(new FakeRouter(), extra);
  disposers.push(h.dispose);
  return h;
}

/** Drive until the rollout stops, then emit `done` as src/cli/drive.ts does. */
async function driveToEnd(state: RolloutState, h: ReturnType<typeof engine>, maxAttempts = 5): Promise<RolloutState> {
  const lock = await h.store.acquireLock(h.deps.actor, 30_000);
  try {
    const result = await drive(state, { ...h.deps, lock, sleep: h.clock.sleep, leaseMs: 30_000, checkIntervalMs: 10_000, requestPollMs: 5_000, maxAttempts });
    const s = result.state;
    emit(h.deps, s, {
      event: 'done',
      phase: s.phase,
      exitCode: result.exitCode,
      weights: s.weights,
      stable: s.stable,
      candidate: s.candidate,
      durationMs: h.clock.now - Date.parse(s.startedAt),
      ...(s.outcome ? { reason: s.outcome.reason } : {}),
      ...(s.gates?.length ? { gates: s.gates.map((g) => ({ gate: g.gate, verdict: g.verdict, reason: g.reason })) } : {}),
    });
    return s;
  } finally {
    await lock.release();
  }
}

const notificationsOf = (events: EngineEvent[]): Notification[] => {
  const tracker = new TriggerTracker();
  return events.map((e) => tracker.notificationOf(e)).filter((n): n is Notification => n !== undefined);
};

describe('notification triggers from a real engine run', () => {
  it('started, each step, a pause for a person, and the promotion', async () => {
    const h = engine();
    const plan = planCanary({ steps: [{ weight: 10, hold: 60_000, pause: true }, { weight: 100 }] });
    let s = await driveToEnd(await startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v2', plan }, h.deps), h);
    expect(s.phase).toBe('paused');
    s = await unpause(s, 'promote', h.deps);
    await driveToEnd(s, h);
    const sent = notificationsOf(h.events);
    expect(sent.map((n) => n.trigger)).toEqual(['started', 'step', 'paused', 'step', 'promoted']);
    expect(sent.map((n) => n.title)).toEqual([
      'patient-api: rollout of v2 started',
      'patient-api: step 1/2, v2 at 10%',
      'patient-api: paused at step 1/2, waiting for a person',
      'patient-api: step 2/2, v2 at 100%',
      'patient-api: v2 promoted, all traffic on it',
    ]);
    expect(sent[2]!.text).toContain('`deploy promote` goes on');
    expect(sent[1]!.facts).toContainEqual(['Traffic', 'v1 90% · v2 10%']);
    expect(sent.every((n) => n.stable === 'v1' && n.candidate === 'v2' && n.rolloutId === s.rolloutId)).toBe(true);
  });

  it('a failed gate: rolled back once, at the rollback, with its reason — not again at done', async () => {
    const gates = new ScriptedGates();
    const h = engine({ gates });
    const plan = planCanary({ steps: [{ weight: 5, hold: 60_000 }, { weight: 100 }] }, ['errors']);
    let s = await tick(await startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v2', plan }, h.deps), h.deps);
    gates.verdict = 'failed';
    s = await driveToEnd(s, h);
    expect(s.phase).toBe('rolled_back');
    const sent = notificationsOf(h.events);
    expect(sent.map((n) => n.trigger)).toEqual(['started', 'step', 'rolled_back']);
    expect(sent[2]).toMatchObject({ severity: 'danger', title: 'patient-api: v2 rolled back, all traffic on v1', text: 'Rolled back: gate errors failed: scripted failed' });
    expect(h.events.filter((e) => e.event === 'done')).toHaveLength(1);
  });

  it('an abort asked of the running driver', async () => {
    const h = engine();
    const s = await tick(await startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v2', plan: planCanary() }, h.deps), h.deps);
    await h.store.postRequest({ id: 'r1', kind: 'abort', reason: 'pager went off', by: { ...h.deps.actor, owner: 'oncall@desk' }, at: new Date(h.clock.now).toISOString() });
    expect((await driveToEnd(s, h)).phase).toBe('aborted');
    const sent = notificationsOf(h.events);
    expect(sent.map((n) => n.trigger)).toEqual(['started', 'step', 'aborted']);
    expect(sent[2]!.text).toBe('Aborted: pager went off');
  });

  it('a driver that gives up: failed, with the error it gave up on', async () => {
    const h = engine();
    h.router.failNext = 100;
    const s = await driveToEnd(await startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v2', plan: planCanary() }, h.deps), h, 3);
    expect(s.phase).toBe('failed');
    const sent = notificationsOf(h.events);
    expect(sent.map((n) => n.trigger)).toEqual(['started', 'failed']);
    expect(sent[1]!.text).toContain('The driver gave up: router unavailable');
  });

  it('a rollback the process did not see is still said at done, once', () => {
    const tracker = new TriggerTracker();
    const done = { at: '2026-11-22T10:00:00.000Z', service: 'patient-api', rolloutId: 'r-1', event: 'done', phase: 'rolled_back', exitCode: 3, step: 1, weights: { v1: 100 }, stable: 'v1', candidate: 'v2', reason: 'gate errors failed' } as const;
    expect(tracker.notificationOf(done)?.trigger).toBe('rolled_back');
    expect(tracker.notificationOf(done)).toBeUndefined();
    expect(tracker.notificationOf({ ...done, phase: 'detached', exitCode: 130 })).toBeUndefined();
  });
});

describe('notify: config', () => {
  it('takes the three types with their fields', () => {
    const parsed = notifySchema.parse([
      { type: 'webhook', url: 'https://hooks.example.org/cutover', secretEnv: 'CUTOVER_WEBHOOK_SECRET', events: ['rolled_back', 'promoted'], timeout: '3s', retries: 2 },
      { type: 'slack', urlEnv: 'SLACK_WEBHOOK_URL', name: 'oncall' },
      { type: 'teams', urlEnv: 'TEAMS_WORKFLOW_URL' },
    ]);
    expect(parsed[0]).toMatchObject({ timeout: 3_000, retries: 2, events: ['rolled_back', 'promoted'] });
  });

  it.each([
    [[{ type: 'webhook', url: 'ftp://hooks.example.org/x' }], 'must be an http(s) URL without credentials (is not an http(s) URL)'],
    [[{ type: 'webhook', url: 'https://user:pw@hooks.example.org/x' }], 'carries a user or password'],
    [[{ type: 'webhook' }], 'needs url: or urlEnv:, one of the two'],
    [[{ type: 'webhook', url: 'https://a.example/x', secretEnv: 'lower' }], 'must be an environment variable name'],
    [[{ type: 'slack', url: 'https://hooks.slack.com/services/T/B/x' }], 'Unrecognized key'],
    [[{ type: 'discord', urlEnv: 'X' }], 'type must be one of: webhook, slack, teams (got "discord")'],
    [[{ type: 'slack', urlEnv: 'S', events: ['rollback'] }], 'Invalid option'],
    [[{ type: 'slack', urlEnv: 'S', timeout: '10ms' }], 'must be at least 100ms'],
    [[{ type: 'slack', urlEnv: 'S', name: 'a' }, { type: 'teams', urlEnv: 'T', name: 'a' }], 'a names two notifiers'],
    [[], 'must list at least one notifier'],
  ])('refuses %j', (value, message) => {
    const result = notifySchema.safeParse(value);
    expect(result.success).toBe(false);
    expect(result.error!.issues.map((i) => i.message).join('\n')).toContain(message);
  });
});

describe('payloads', () => {
  const n: Notification = {
    trigger: 'rolled_back',
    severity: 'danger',
    service: 'patient-api',
    rolloutId: 'r-1',
    at: '2026-11-22T10:00:00.000Z',
    stable: 'v1',
    candidate: 'v2',
    title: `patient-api: v2 rolled back, all traffic on v1 ${'x'.repeat(200)}`,
    text: 'Rolled back: error rate 2.1% > 0.6% <@channel> & more',
    facts: [['Traffic', 'v1 100%']],
    event: { at: '2026-11-22T10:00:00.000Z', service: 'patient-api', rolloutId: 'r-1', event: 'rollback', cause: 'gate', reason: 'x', weights: { v1: 100 } },
  };

  it('Slack: Block Kit within its limits, mrkdwn escaped so a reason cannot mention or link', () => {
    const body = JSON.parse(new SlackChannel().request(n).body);
    expect(body.blocks[0].type).toBe('header');
    expect(body.blocks[0].text.text.length).toBeLessThanOrEqual(150);
    expect(body.blocks[1].text.text).toBe('Rolled back: error rate 2.1% &gt; 0.6% &lt;@channel&gt; &amp; more');
    expect(body.text).toContain('&lt;@channel&gt;');
    expect(body.blocks[2].fields).toEqual([{ type: 'mrkdwn', text: '*Traffic*\nv1 100%' }]);
  });

  it('Teams: one Adaptive Card in a message', () => {
    const body = JSON.parse(new TeamsChannel().request(n).body);
    expect(body.type).toBe('message');
    expect(body.attachments[0].contentType).toBe('application/vnd.microsoft.card.adaptive');
    expect(body.attachments[0].content).toMatchObject({ type: 'AdaptiveCard', version: '1.4' });
    expect(body.attachments[0].content.body[0]).toMatchObject({ type: 'TextBlock', color: 'Attention' });
    expect(body.attachments[0].content.body[2]).toEqual({ type: 'FactSet', facts: [{ title: 'Traffic', value: 'v1 100%' }] });
  });

  it('webhook: the signature is an HMAC-SHA256 of the raw body, and covers the send time', () => {
    const request = new WebhookChannel('s3cret-value').request(n, { deliveryId: 'd-1', number: 1, sentAtMs: Date.parse('2026-11-22T10:00:05Z') });
    expect(request.headers['x-cutover-signature']).toBe(signature('s3cret-value', request.body));
    expect(request.headers['x-cutover-timestamp']).toBe(String(Date.parse('2026-11-22T10:00:05Z') / 1000));
    expect(JSON.parse(request.body)).toMatchObject({ schema: 'cutover.notification/v1', id: 'd-1', sentAt: '2026-11-22T10:00:05.000Z', trigger: 'rolled_back' });
    expect(verifySignature('s3cret-value', request.body, request.headers['x-cutover-signature'])).toBe(true);
    expect(verifySignature('other', request.body, request.headers['x-cutover-signature'])).toBe(false);
    expect(verifySignature('s3cret-value', request.body.replace('v2', 'v3'), request.headers['x-cutover-signature'])).toBe(false);
    expect(request.body).not.toContain('s3cret-value');
  });
});
