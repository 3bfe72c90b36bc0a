/**
 * The `alb` router against moto's ELBv2 server, driven through the real AWS SDK: a VPC, subnets,
 * a load balancer, target groups with targets and a listener are created per test, then the
 * strategies run and the listener and its rules are read back through the SDK after every step.
 * The server is installed and started by the test itself and a failure to start fails the file.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CreateRuleCommand, DeleteListenerCommand, DescribeRulesCommand, DescribeTagsCommand, ElasticLoadBalancingV2Client, ModifyListenerCommand } from '@aws-sdk/client-elastic-load-balancing-v2';
import { LockedError } from '../../src/errors.js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { rollback, startRollout, tick, type EngineDeps, type GateRunner } from '../../src/engine/machine.js';
import { validateState, type RolloutState } from '../../src/engine/state.js';
import type { GateResult } from '../../src/gates/types.js';
import { AlbRouter } from '../../src/routers/alb/router.js';
import { SdkAlbClient, type SendFn } from '../../src/routers/alb/client.js';
import { startMoto, type MotoProcess } from '../../src/sandbox/moto-process.js';
import { LocalStateStore } from '../../src/state/local/store.js';
import { planBlueGreen } from '../../strategies/blue-green.js';
import { planCanary } from '../../strategies/canary.js';
import { createAlb, REGION, useEmulatorCredentials, type AlbFixture } from '../helpers/alb.js';
import { runCli } from '../helpers/cli.js';
import { ManualClock } from '../helpers/fakes.js';

let moto: MotoProcess;
let alb: AlbFixture;
let dir: string;

beforeAll(async () => {
  useEmulatorCredentials();
  moto = await startMoto();
});
afterAll(async () => {
  await moto?.stop();
});
beforeEach(async () => {
  await moto.reset();
  alb = await createAlb(moto.url);
  dir = mkdtempSync(path.join(tmpdir(), 'cutover-alb-'));
  return () => rmSync(dir, { recursive: true, force: true });
});

/**
 * The SDK's send, logging each operation, with `faults` thrown before the matching attempts and
 * `answers` given instead of the server's for an operation.
 */
function loggingSend(log: string[], faults: { operation: string; error: () => Error; times: number; after?: boolean }[] = [], answers: Record<string, () => unknown> = {}): SendFn {
  const sdk = new ElasticLoadBalancingV2Client({ region: REGION, endpoint: moto.url, maxAttempts: 1 });
  return async (command) => {
    const operation = command.constructor.name.replace(/Command$/, '');
    log.push(operation);
    const fault = faults.find((f) => f.operation === operation && f.times > 0);
    if (fault) {
      fault.times -= 1;
      // `after`: the call reaches the server and does its work, then its answer is lost.
      if (fault.after) await sdk.send(command as never);
      throw fault.error();
    }
    const answer = answers[operation];
    return answer ? answer() : sdk.send(command as never);
  };
}

function routerWith(log: string[] = [], extra: { maxRules?: number; faults?: Parameters<typeof loggingSend>[1]; answers?: Parameters<typeof loggingSend>[2] } = {}) {
  const client = new SdkAlbClient({ region: REGION, endpointUrl: moto.url, minDelayMs: 5, maxDelayMs: 50 }, loggingSend(log, extra.faults, extra.answers));
  return { client, router: new AlbRouter({ listenerArn: alb.listenerArn, targetGroups: alb.targetGroups, orgHeader: 'X-Org-Id', maxRules: extra.maxRules ?? 100 }, client) };
}

function engine(router: AlbRouter, gates?: GateRunner) {
  const clock = new ManualClock();
  const store = new LocalStateStore<RolloutState>(path.join(dir, 'state'), { clock: clock.clock, validate: validateState });
  const deps: EngineDeps = { router, store, clock: clock.clock, emit: () => undefined, actor: { owner: 'ci@ward', pid: 1, host: 'ward' }, ...(gates ? { gates } : {}) };
  return { clock, store, deps };
}

/** deploy.yaml as in the README, pointed at the emulator. */
function writeConfig(strategy: string, targetGroups = alb.targetGroups): string {
  const file = path.join(dir, 'deploy.yaml');
  writeFileSync(
    file,
    `service: patient-api
stable: v1
versions:
  v1: {}
  v2: {}
router:
  type: alb
  listenerArn: ${alb.listenerArn}
  targetGroups:
    v1: ${targetGroups.v1}
    v2: ${targetGroups.v2}
  endpointUrl: ${moto.url}
state:
  type: local
  dir: ${path.join(dir, 'state')}
strategy:
${strategy}`,
  );
  return file;
}

describe('alb router on moto', () => {
  it('walks a canary through every step, checking the listener after each, one write per step', async () => {
    const log: string[] = [];
    const { router, client } = routerWith(log);
    const { clock, deps } = engine(router);
    let s = await startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v2', plan: planCanary() }, deps);
    const seen: Record<string, number>[] = [];
    while (s.phase !== 'promoted') {
      const before = log.length;
      s = await tick(s, deps);
      if (s.phase === 'holding') {
        seen.push(await alb.listenerWeights());
        expect(log.slice(before).filter((op) => op.startsWith('Modify'))).toEqual(['ModifyListener']);
        expect(log.slice(before).at(-1)).toBe('DescribeListeners');
        clock.now += s.plan.steps[s.step]!.holdMs;
      }
    }
    expect(seen).toEqual([1, 5, 25, 50, 100].map((w) => ({ v1: 100 - w, v2: w })));
    // Per step: target health of v2, the listener and its rules, one write, the listener read back.
    expect(client.calls).toEqual({ DescribeTargetHealth: 5, DescribeListeners: 10, DescribeRules: 5, ModifyListener: 5 });
  });

  it('rolls back on a failed gate with one ModifyListener, read back', async () => {
    const failing: GateRunner = {
      async evaluate(state): Promise<GateResult[]> {
        const verdict = state.step === 2 ? 'failed' : 'passed';
        return [{ gate: 'errors', type: 'errorRate', verdict, reason: verdict === 'failed' ? 'errors 4% over 0.5%' : 'within', queries: [], at: new Date().toISOString() }];
      },
    };
    const log: string[] = [];
    const { router } = routerWith(log);
    const { clock, deps } = engine(router, failing);
    let s = await startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v2', plan: planCanary({}, ['errors']) }, deps);
    while (s.phase === 'pending' || s.phase === 'holding') {
      if (s.phase === 'holding') clock.now += s.plan.steps[s.step]!.holdMs;
      const before = log.length;
      s = await tick(s, deps);
      if (s.phase === 'rolled_back') expect(log.slice(before).filter((op) => !op.startsWith('Describe'))).toEqual(['ModifyListener']);
    }
    expect([s.phase, s.step, s.outcome?.reason]).toEqual(['rolled_back', 2, 'gate errors failed: errors 4% over 0.5%']);
    expect(await alb.listenerWeights()).toEqual({ v1: 100 });
  });

  it('blue/green: checks green health first, shifts, keeps blue at 0, and `deploy abort` during the bake is one write back to blue', async () => {
    const file = writeConfig('  blueGreen:\n    bake: 30m\n    healthTimeout: 1m\n');
    const log: string[] = [];
    const { router } = routerWith(log);
    const { deps } = engine(router);
    let s = await startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v2', plan: planBlueGreen({ bake: 30 * 60_000 }) }, deps);
    s = await tick(s, deps);
    expect(log.indexOf('DescribeTargetHealth')).toBeGreaterThanOrEqual(0);
    expect(log.indexOf('DescribeTargetHealth')).toBeLessThan(log.indexOf('ModifyListener'));
    expect([s.phase, s.weights]).toEqual(['holding', { v1: 0, v2: 100 }]);
    expect(await alb.listenerWeights()).toEqual({ v1: 0, v2: 100 });

    const abort = await runCli(['abort', '-f', file, '--reason', 'bake showed lab-result errors', '-o', 'json']);
    expect(abort.code).toBe(0);
    expect(JSON.parse(abort.stdout.trim().split('\n').at(-1)!)).toMatchObject({ event: 'abort', phase: 'aborted', weights: { v1: 100 } });
    expect(await alb.listenerWeights()).toEqual({ v1: 100 });
  });

  it('blue/green waits on unhealthy green targets and rolls back untouched at the deadline (health injected at the client boundary: moto reports every target healthy)', async () => {
    const log: string[] = [];
    let state = 'initial';
    const health = () => ({ TargetHealthDescriptions: [{ Target: { Id: '10.10.0.11', Port: 80 }, TargetHealth: { State: state, Reason: 'Elb.RegistrationInProgress' } }] });
    const { router } = routerWith(log, { answers: { DescribeTargetHealth: health } });
    const { clock, deps } = engine(router);
    let s = await startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v2', plan: planBlueGreen({ healthTimeout: 60_000 }) }, deps);
    s = await tick(s, deps);
    expect(s.waitingForTargets?.detail).toBe('0/1 targets of v2 healthy; 10.10.0.11:80 initial (Elb.RegistrationInProgress)');
    state = 'unhealthy';
    clock.now += 60_000;
    s = await tick(s, deps);
    expect([s.phase, s.outcome?.reason]).toEqual(['rolled_back', "v2's targets were not ready within 60s: 0/1 targets of v2 healthy; 10.10.0.11:80 unhealthy (Elb.RegistrationInProgress)"]);
    expect(log.filter((op) => op.startsWith('Modify'))).toEqual([]);
    expect(await alb.listenerWeights()).toEqual({ v1: 1 });
  });

  it('`deploy promote` runs the README example against the emulator', async () => {
    const file = writeConfig('  canary:\n    checkInterval: 50ms\n    steps:\n      - { weight: 10, hold: 100ms }\n      - { weight: 50, hold: 100ms }\n');
    const run = await runCli(['promote', '--to', 'v2', '-f', file, '-o', 'json']);
    expect(run.code, run.stderr).toBe(0);
    const steps = run.stdout.trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.event === 'step');
    expect(steps.map((e) => e.weights)).toEqual([{ v1: 90, v2: 10 }, { v1: 50, v2: 50 }, { v1: 0, v2: 100 }]);
    expect(await alb.listenerWeights()).toEqual({ v1: 0, v2: 100 });
  });

  it('keeps org pins in listener rules beyond one rule\'s five values, and refuses a layout past the rule quota before writing', async () => {
    const { router } = routerWith([], { maxRules: 4 });
    const pins = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`clinic-${String(i).padStart(2, '0')}`, i < 9 ? 'v2' : 'v1']));
    await router.apply({ weights: { v1: 95, v2: 5 }, orgs: pins, unpinned: { mode: 'version', version: 'v1' } });
    const rules = await alb.rules();
    expect(rules.map((r) => [r.Priority, r.Conditions![0]!.HttpHeaderConfig!.Values!.length])).toEqual([['1', 3], ['2', 5], ['3', 4], ['50000', 1]]);
    expect(rules.every((r) => r.Conditions![0]!.HttpHeaderConfig!.HttpHeaderName === 'X-Org-Id')).toBe(true);
    expect(await router.read()).toEqual({ weights: { v1: 95, v2: 5 }, orgs: pins, unpinned: { mode: 'version', version: 'v1' } });

    const more = { ...pins, ...Object.fromEntries(['a', 'b', 'c', 'd', 'e', 'f'].map((o) => [`new-${o}`, 'v2'])) };
    await expect(router.apply({ weights: { v1: 95, v2: 5 }, orgs: more })).rejects.toThrow(/over the load balancer's 4-rule quota/);
    expect((await alb.rules()).map((r) => r.RuleArn)).toEqual(rules.map((r) => r.RuleArn));
  });

  it('retries throttling injected at the domain-client boundary and ends with the weights written', async () => {
    const log: string[] = [];
    const throttled = () => Object.assign(new Error('Rate exceeded'), { name: 'Throttling', $fault: 'client', $metadata: { httpStatusCode: 400 } });
    const { router, client } = routerWith(log, { faults: [{ operation: 'ModifyListener', error: throttled, times: 2 }] });
    await router.apply({ weights: { v1: 75, v2: 25 } });
    expect(client.attempts.ModifyListener).toBe(3);
    expect(client.calls.ModifyListener).toBe(1);
    expect(await alb.listenerWeights()).toEqual({ v1: 75, v2: 25 });
  });

  it('a listener deleted mid-rollout fails the step naming the listener; the intent stays for `deploy resume`', async () => {
    const { router } = routerWith();
    const { clock, deps, store } = engine(router);
    let s = await tick(await startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v2', plan: planCanary() }, deps), deps);
    await alb.elb.send(new DeleteListenerCommand({ ListenerArn: alb.listenerArn }));
    clock.now += s.plan.steps[0]!.holdMs;
    await expect(tick(s, deps)).rejects.toThrow(`ELBv2 DescribeListeners on ${alb.listenerArn}: ListenerNotFound`);
    s = (await store.load())!;
    expect([s.phase, s.intent?.weights, s.weights]).toEqual(['progressing', { v1: 95, v2: 5 }, { v1: 99, v2: 1 }]);
  });

  it('exits 2 naming a target group that does not exist, before anything is written', async () => {
    const missing = alb.targetGroups.v2!.replace(/\/[0-9a-f]+$/, '/0000000000000000');
    const file = writeConfig('  canary:\n    steps: [{ weight: 10, hold: 1s }]\n', { ...alb.targetGroups, v2: missing });
    const run = await runCli(['promote', '--to', 'v2', '-f', file]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`DescribeTargetGroups on ${missing}: TargetGroupNotFound`);
    expect(run.stderr).toMatch(/hint: check the ARN in deploy.yaml's router section/);
    expect(await alb.listenerWeights()).toEqual({ v1: 1 });
  });

  it('exits 2 saying what to set with no credentials, or with a region the listener is not in', async () => {
    const file = writeConfig('  canary:\n    steps: [{ weight: 10, hold: 1s }]\n');
    const saved = { ...process.env };
    try {
      delete process.env.AWS_ACCESS_KEY_ID;
      delete process.env.AWS_SECRET_ACCESS_KEY;
      process.env.AWS_SHARED_CREDENTIALS_FILE = path.join(dir, 'no-credentials');
      process.env.AWS_CONFIG_FILE = path.join(dir, 'no-config');
      const none = await runCli(['promote', '--to', 'v2', '-f', file]);
      expect(none.code).toBe(2);
      expect(none.stderr).toMatch(/NoCredentials/);
      expect(none.stderr).toMatch(/hint: Cutover uses the AWS default credential chain: set AWS_PROFILE/);
      Object.assign(process.env, saved, { AWS_REGION: 'eu-west-1' });
      const wrong = await runCli(['promote', '--to', 'v2', '-f', file]);
      expect(wrong.code).toBe(2);
      expect(wrong.stderr).toContain(`AWS_REGION is eu-west-1, but the listener ${alb.listenerArn} is in us-east-1`);
      expect(wrong.stderr).toContain('hint: set router.region to us-east-1');
      Object.assign(process.env, saved);
      delete process.env.AWS_REGION;
      const flag = await runCli(['promote', '--to', 'v2', '--region', 'eu-west-1', '-f', file]);
      expect(flag.code).toBe(2);
      expect(flag.stderr).toMatch(/eu-west-1.*us-east-1/);
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
    expect(await alb.listenerWeights()).toEqual({ v1: 1 });
  });
});

describe('org moves on the ALB through the CLI (moto)', () => {
  it('`deploy orgs move` writes header rules of at most five orgs, and exits 2 past the rule quota with nothing written', async () => {
    const ids = Array.from({ length: 30 }, (_, i) => `clinic-${String(i).padStart(2, '0')}`);
    const file = writeConfig(`  canary:\n    steps: [{ weight: 10, hold: 1s }]\norgs:\n  list: [${ids.join(', ')}]\n`);
    writeFileSync(file, readFileSync(file, 'utf8').replace('  endpointUrl:', '  maxRules: 5\n  endpointUrl:'));
    const move = await runCli(['orgs', 'move', ...ids.slice(0, 7), '--to', 'v2', '-f', file]);
    expect(move.code, move.stderr).toBe(0);
    const rules = await alb.rules();
    expect(rules.map((r) => [r.Priority, r.Conditions![0]!.HttpHeaderConfig!.Values])).toEqual([
      ['1', ids.slice(0, 5)],
      ['2', ids.slice(5, 7)],
      ['50000', ['*']],
    ]);
    const tooMany = await runCli(['orgs', 'move', '--all', '--to', 'v2', '-f', file]);
    expect(tooMany.code).toBe(2);
    expect(tooMany.stderr).toMatch(/30 pinned orgs need 7 listener rules at 5 orgs per rule, over the load balancer's 5-rule quota/);
    expect((await alb.rules()).map((r) => r.RuleArn)).toEqual(rules.map((r) => r.RuleArn));
    const list = await runCli(['orgs', 'list', '-f', file, '-o', 'json']);
    expect(list.stdout).toContain('clinic-06');
  });
});

describe('alb router on a listener rule (moto)', () => {
  it('creates the weighted rule by priority and conditions, shifts it, and puts org rules above it', async () => {
    const client = new SdkAlbClient({ region: REGION, endpointUrl: moto.url });
    const api = [{ Field: 'path-pattern', PathPatternConfig: { Values: ['/api/*'] } }];
    const router = new AlbRouter({ listenerArn: alb.listenerArn, rule: { priority: 200, conditions: api }, targetGroups: alb.targetGroups, orgHeader: 'X-Org-Id', maxRules: 100 }, client);
    await router.apply({ weights: { v1: 90, v2: 10 } });
    await router.apply({ weights: { v1: 50, v2: 50 }, orgs: { 'st-marys': 'v2', riverside: 'v2' } });
    const rules = await alb.rules();
    expect(rules.map((r) => [r.Priority, r.Conditions!.map((c) => c.Field)])).toEqual([['1', ['path-pattern', 'http-header']], ['200', ['path-pattern']]]);
    expect(rules[1]!.Actions![0]!.ForwardConfig!.TargetGroups!.map((t) => t.Weight)).toEqual([50, 50]);
    expect(await alb.listenerWeights()).toEqual({ v1: 1 });
    expect(await router.read()).toEqual({ weights: { v1: 50, v2: 50 }, orgs: { 'st-marys': 'v2', riverside: 'v2' }, unpinned: { mode: 'weighted' } });
  });
});

describe('alb router: only what it made', () => {
  it('without orgs: leaves a hand-made org-header rule alone, and says when it leaves a foreign target group out', async () => {
    const three = await createAlb(moto.url, ['v1', 'v2', 'v3'], 'shared');
    const sdk = new ElasticLoadBalancingV2Client({ region: REGION, endpoint: moto.url, maxAttempts: 1 });
    // Someone else's: 10% to a target group Cutover was not given, and a rule for org acme.
    await sdk.send(new ModifyListenerCommand({ ListenerArn: three.listenerArn, DefaultActions: [{ Type: 'forward', ForwardConfig: { TargetGroups: [{ TargetGroupArn: three.targetGroups.v1, Weight: 90 }, { TargetGroupArn: three.targetGroups.v3, Weight: 10 }] } }] }));
    const handMade = await sdk.send(new CreateRuleCommand({
      ListenerArn: three.listenerArn, Priority: 5,
      Conditions: [{ Field: 'http-header', HttpHeaderConfig: { HttpHeaderName: 'X-Org-Id', Values: ['acme'] } }],
      Actions: [{ Type: 'forward', TargetGroupArn: three.targetGroups.v2 }],
    }));
    const client = new SdkAlbClient({ region: REGION, endpointUrl: moto.url, minDelayMs: 5, maxDelayMs: 50 });
    const router = new AlbRouter({ listenerArn: three.listenerArn, targetGroups: { v1: three.targetGroups.v1!, v2: three.targetGroups.v2! }, orgHeader: 'X-Org-Id', maxRules: 100, manageOrgs: false }, client);
    const step = await router.apply({ weights: { v1: 90, v2: 10 } });
    expect(step.drift).toMatch(new RegExp(`^the forward action held target group not under router.targetGroups \\(${three.targetGroups.v3!.replace(/[/:.-]/g, '\\$&')} weight 10\\); this write left it out$`));
    expect(await three.listenerWeights()).toEqual({ v1: 90, v2: 10 });
    const abort = await router.apply({ weights: { v1: 100 } });
    expect(abort.drift).toBeUndefined();
    const rules = (await sdk.send(new DescribeRulesCommand({ ListenerArn: three.listenerArn }))).Rules!;
    expect(rules.map((r) => r.RuleArn)).toContain(handMade.Rules![0]!.RuleArn);
    expect(await router.read()).toMatchObject({ weights: { v1: 100 }, orgs: {} });
  });
});

describe('alb router: tags for ownership and the fencing token', () => {
  it('with orgs: tags the rules it creates, never touches an untagged org-header rule and reports it as drift', async () => {
    const sdk = new ElasticLoadBalancingV2Client({ region: REGION, endpoint: moto.url, maxAttempts: 1 });
    const handMade = (await sdk.send(new CreateRuleCommand({
      ListenerArn: alb.listenerArn, Priority: 5,
      Conditions: [{ Field: 'http-header', HttpHeaderConfig: { HttpHeaderName: 'X-Org-Id', Values: ['acme'] } }],
      Actions: [{ Type: 'forward', TargetGroupArn: alb.targetGroups.v2 }],
    }))).Rules![0]!.RuleArn!;
    const client = new SdkAlbClient({ region: REGION, endpointUrl: moto.url, minDelayMs: 5, maxDelayMs: 50 });
    const router = new AlbRouter({ listenerArn: alb.listenerArn, targetGroups: alb.targetGroups, orgHeader: 'X-Org-Id', maxRules: 100, owner: 'patient-api' }, client);
    const moved = await router.apply({ weights: { v1: 100 }, orgs: { 'st-marys': 'v2' } });
    expect(moved.drift).toMatch(/^1 rule\(s\) on the org header not made by Cutover \(priorities 5\) route orgs acme; they were left alone$/);
    const rules = (await sdk.send(new DescribeRulesCommand({ ListenerArn: alb.listenerArn }))).Rules!.filter((r) => !r.IsDefault);
    const ours = rules.filter((r) => r.RuleArn !== handMade).map((r) => r.RuleArn!);
    expect(ours).toHaveLength(1);
    const tags = (await sdk.send(new DescribeTagsCommand({ ResourceArns: [...ours, handMade] }))).TagDescriptions!;
    expect(tags.map((d) => [d.ResourceArn, d.Tags?.map((t) => `${t.Key}=${t.Value}`)])).toEqual([[ours[0], ['cutover:owner=patient-api']], [handMade, []]]);
    // The abort's write: every pin of Cutover's goes; the hand-made rule stays, and is not read as a pin.
    await router.apply({ weights: { v1: 100 }, orgs: {} });
    const left = (await sdk.send(new DescribeRulesCommand({ ListenerArn: alb.listenerArn }))).Rules!.filter((r) => !r.IsDefault).map((r) => r.RuleArn);
    expect(left).toEqual([handMade]);
    expect(await router.read()).toMatchObject({ weights: { v1: 100 }, orgs: {} });
  });

  it('keeps the fencing token in a listener tag and refuses a write under an older one, writing nothing', async () => {
    const log: string[] = [];
    const { client } = routerWith(log);
    const router = new AlbRouter({ listenerArn: alb.listenerArn, targetGroups: alb.targetGroups, orgHeader: 'X-Org-Id', maxRules: 100, owner: 'patient-api' }, client);
    await router.apply({ weights: { v1: 95, v2: 5 }, fence: 4 });
    const sdk = new ElasticLoadBalancingV2Client({ region: REGION, endpoint: moto.url, maxAttempts: 1 });
    const tag = async () => (await sdk.send(new DescribeTagsCommand({ ResourceArns: [alb.listenerArn] }))).TagDescriptions![0]!.Tags!.find((t) => t.Key === 'cutover:fence:patient-api')?.Value;
    expect(await tag()).toBe('4');
    await router.apply({ weights: { v1: 100 }, fence: 5 });
    expect(await tag()).toBe('5');
    log.length = 0;
    const stale = await router.apply({ weights: { v1: 75, v2: 25 }, fence: 4 }).then(() => undefined, (e: unknown) => e);
    expect(stale).toBeInstanceOf(LockedError);
    expect((stale as Error).message).toMatch(/last written under fencing token 5, newer than this driver's 4; nothing was written/);
    expect(log.filter((op) => !op.startsWith('Describe'))).toEqual([]);
    expect(await alb.listenerWeights()).toEqual({ v1: 100 });
  });

  it('`deploy promote` writes under the lock\'s fencing token: the listener tag follows the driver', async () => {
    const file = writeConfig('  canary:\n    checkInterval: 50ms\n    steps:\n      - { weight: 50, hold: 100ms }\n');
    const run = await runCli(['promote', '--to', 'v2', '-y', '-f', file, '-o', 'json']);
    expect(run.code, run.stderr).toBe(0);
    const sdk = new ElasticLoadBalancingV2Client({ region: REGION, endpoint: moto.url, maxAttempts: 1 });
    const tags = (await sdk.send(new DescribeTagsCommand({ ResourceArns: [alb.listenerArn] }))).TagDescriptions![0]!.Tags!;
    const fence = readFileSync(path.join(dir, 'state', 'lock.fence'), 'utf8').trim();
    expect(tags).toContainEqual({ Key: 'cutover:fence:patient-api', Value: fence });
    expect(Number(fence)).toBeGreaterThanOrEqual(1);
  });
});

describe('retries the operator sees', () => {
  it('`deploy promote` prints a retry event for every throttled ModifyListener, then the step', async () => {
    const { queryAction, startFaultProxy } = await import('../../src/sandbox/fault-proxy.js');
    const proxy = await startFaultProxy(new URL(moto.url).host);
    try {
      const file = writeConfig('  canary:\n    checkInterval: 50ms\n    steps:\n      - { weight: 50, hold: 100ms }\n');
      proxy.failNext('throttle', 2, (request) => queryAction(request) === 'ModifyListener');
      const run = await runCli(['promote', '--to', 'v2', '-y', '-f', file, '-o', 'json', '--endpoint-url', `http://${proxy.address}`]);
      expect(run.code, run.stderr).toBe(0);
      const events = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      const retries = events.filter((e) => e.event === 'retry');
      expect(retries.map((e) => [e.provider, e.operation, e.service])).toEqual([['alb', 'ModifyListener', 'patient-api'], ['alb', 'ModifyListener', 'patient-api']]);
      expect(retries.every((e) => typeof e.error === 'string' && /Rate exceeded|Throttl/.test(e.error as string) && (e.delayMs as number) > 0)).toBe(true);
      // Each retry comes before the step it delayed, and the rollout ends promoted.
      expect(events.findIndex((e) => e.event === 'retry')).toBeLessThan(events.findIndex((e) => e.event === 'step'));
      expect(events.at(-1)).toMatchObject({ event: 'done', phase: 'promoted' });
      expect(await alb.listenerWeights()).toEqual({ v1: 0, v2: 100 });
    } finally {
      await proxy.stop();
    }
  });
});

describe('deploy iam-policy', () => {
  it.each([
    ['weights on the listener, no orgs', false],
    ['weights and org rules', true],
  ] as const)('allows every call a rollout makes on moto: %s', async (_name, orgs) => {
    const log: string[] = [];
    const client = new SdkAlbClient({ region: REGION, endpointUrl: moto.url, minDelayMs: 5, maxDelayMs: 50 }, loggingSend(log));
    const router = new AlbRouter({ listenerArn: alb.listenerArn, targetGroups: alb.targetGroups, orgHeader: 'X-Org-Id', maxRules: 100, manageOrgs: orgs }, client);
    await router.preflight();
    await router.targetsReady('v2');
    await router.apply({ weights: { v1: 90, v2: 10 }, ...(orgs ? { orgs: { acme: 'v2', bravo: 'v1' }, unpinned: { mode: 'weighted' } } : {}) });
    await router.apply({ weights: { v1: 50, v2: 50 }, ...(orgs ? { orgs: { acme: 'v1' }, unpinned: { mode: 'weighted' } } : {}) });
    await router.removeManaged('v1');
    await router.read();
    const { albIamPolicy } = await import('../../src/routers/alb/policy.js');
    const policy = albIamPolicy({ type: 'alb', listenerArn: alb.listenerArn, targetGroups: alb.targetGroups } as never, orgs ? { orgs: { list: ['acme', 'bravo'] } as never } : {});
    const allowed = new Set(policy.Statement.flatMap((s) => s.Action));
    const made = [...new Set(log)].map((op) => `elasticloadbalancing:${op}`);
    expect(made.length).toBeGreaterThan(4);
    expect(made.filter((a) => !allowed.has(a))).toEqual([]);
    if (orgs) expect(made).toEqual(expect.arrayContaining(['elasticloadbalancing:CreateRule', 'elasticloadbalancing:DeleteRule']));
    else expect(made).not.toContain('elasticloadbalancing:DeleteRule');
  });
});

describe('alb router: answers lost after the write', () => {
  it('recognises its own rule on retry instead of failing the move, for a create and for a delete', async () => {
    const log: string[] = [];
    const lost = () => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    const faults = [{ operation: 'CreateRule', error: lost, times: 1, after: true }, { operation: 'DeleteRule', error: lost, times: 1, after: true }];
    const client = new SdkAlbClient({ region: REGION, endpointUrl: moto.url, minDelayMs: 5, maxDelayMs: 50 }, loggingSend(log, faults));
    const router = new AlbRouter({ listenerArn: alb.listenerArn, targetGroups: alb.targetGroups, orgHeader: 'X-Org-Id', maxRules: 100 }, client);
    const pinned = await router.apply({ weights: { v1: 100 }, orgs: { acme: 'v2' }, unpinned: { mode: 'weighted' } });
    expect(pinned.changed).toBe(true);
    expect(log.filter((op) => op === 'CreateRule')).toHaveLength(2);
    expect(await router.read()).toMatchObject({ orgs: { acme: 'v2' } });
    const unpinned = await router.apply({ weights: { v1: 100 }, orgs: {}, unpinned: { mode: 'weighted' } });
    expect(unpinned.changed).toBe(true);
    expect(log.filter((op) => op === 'DeleteRule')).toHaveLength(2);
    expect(await router.read()).toMatchObject({ orgs: {} });
  });
});

describe('alb router behind the fault proxy', () => {
  /** The invariant: moto's listener (read straight from moto, not through the proxy) holds the recorded weights or the recorded intent's. */
  async function expectRecordMatchesMoto(store: LocalStateStore<RolloutState>, context: string): Promise<RolloutState> {
    const state = (await store.load())!;
    const live = await alb.listenerWeights();
    const same = (w: Record<string, number>) => JSON.stringify(Object.fromEntries(Object.entries(w).filter(([, x]) => x > 0))) === JSON.stringify(Object.fromEntries(Object.entries(live).filter(([, x]) => x > 0)));
    expect(same(state.weights) || (state.intent !== undefined && same(state.intent.weights)), `${context}: listener ${JSON.stringify(live)} vs ${JSON.stringify(state.weights)} / ${JSON.stringify(state.intent?.weights)}`).toBe(true);
    return state;
  }

  /** A retry as SdkAlbClient's onRetry reports it, with the error's name and HTTP status. */
  type Retry = { operation: string; code: string; status?: number; delayMs: number };

  /** A client through the proxy whose every reported retry lands in `retries`. */
  function clientVia(proxy: { address: string }, retries: Retry[] = [], budget = 2) {
    return new SdkAlbClient({ region: REGION, endpointUrl: `http://${proxy.address}`, minDelayMs: 5, maxDelayMs: 20, retries: budget, requestTimeoutMs: 500 }, undefined, (operation, error, delayMs) =>
      retries.push({ operation, code: error.name, status: (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode, delayMs }),
    );
  }

  const total = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);

  it.each(['hang', 'reset', 'lose-answer'] as const)('%s in front of moto: the record matches the listener; an abort during the fault lands once it answers', async (mode) => {
    const { startFaultProxy } = await import('../../src/sandbox/fault-proxy.js');
    const proxy = await startFaultProxy(new URL(moto.url).host);
    try {
      const client = clientVia(proxy);
      const router = new AlbRouter({ listenerArn: alb.listenerArn, targetGroups: alb.targetGroups, orgHeader: 'X-Org-Id', maxRules: 100 }, client);
      const { deps, store } = engine(router);
      const plan = planCanary({ steps: [{ weight: 10, hold: 0 }, { weight: 50, hold: 600_000 }, { weight: 100 }] });
      let s = await tick(await startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v2', plan }, deps), deps);
      expect(await alb.listenerWeights()).toEqual({ v1: 90, v2: 10 });
      proxy.mode = mode;
      await expect(tick(s, deps)).rejects.toThrow();
      s = await expectRecordMatchesMoto(store, mode);
      await expect(rollback(s, 'abort', 'incident', deps)).rejects.toThrow();
      s = await expectRecordMatchesMoto(store, mode);
      proxy.mode = 'pass';
      s = await tick(s, deps);
      s = await rollback(s, 'abort', 'incident', deps);
      expect([s.phase, await alb.listenerWeights()]).toEqual(['aborted', { v1: 100 }]);
      await expectRecordMatchesMoto(store, mode);
    } finally {
      await proxy.stop();
    }
  }, 60_000);

  it('throttling answered by the proxy on ModifyListener during a step: every retry is reported, the step ends with its weights written, and the record equals the listener', async () => {
    const { queryAction, startFaultProxy } = await import('../../src/sandbox/fault-proxy.js');
    const proxy = await startFaultProxy(new URL(moto.url).host);
    try {
      const retries: Retry[] = [];
      const client = clientVia(proxy, retries, 4);
      const router = new AlbRouter({ listenerArn: alb.listenerArn, targetGroups: alb.targetGroups, orgHeader: 'X-Org-Id', maxRules: 100 }, client);
      const { deps, store } = engine(router);
      const plan = planCanary({ steps: [{ weight: 10, hold: 0 }, { weight: 50, hold: 600_000 }, { weight: 100 }] });
      let s = await tick(await startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v2', plan }, deps), deps);
      expect(await alb.listenerWeights()).toEqual({ v1: 90, v2: 10 });
      expect(retries).toEqual([]);
      const before = { attempts: client.attempts.ModifyListener ?? 0, calls: client.calls.ModifyListener ?? 0 };

      // The next three ModifyListener requests are throttled by the proxy, the rest pass to moto.
      proxy.failNext('throttle', 3, (request) => queryAction(request) === 'ModifyListener');
      s = await tick(s, deps);
      expect([proxy.faulted, proxy.pending]).toEqual([3, 0]);
      expect(retries.map((r) => [r.operation, r.code, r.status])).toEqual([
        ['ModifyListener', 'Throttling', 400],
        ['ModifyListener', 'Throttling', 400],
        ['ModifyListener', 'Throttling', 400],
      ]);
      expect(retries.every((r) => r.delayMs >= 5 && r.delayMs <= 20)).toBe(true);
      // One logical write, four attempts; and no attempt anywhere went unreported.
      expect([client.calls.ModifyListener! - before.calls, client.attempts.ModifyListener! - before.attempts]).toEqual([1, 4]);
      expect(total(client.attempts) - total(client.calls)).toBe(retries.length);

      expect([s.phase, s.step, s.weights, s.intent]).toEqual(['holding', 1, { v1: 50, v2: 50 }, undefined]);
      const recorded = (await store.load())!;
      expect([recorded.phase, recorded.weights, recorded.intent]).toEqual(['holding', { v1: 50, v2: 50 }, undefined]);
      expect(await alb.listenerWeights()).toEqual(recorded.weights);
      expect(await alb.rules()).toEqual([]);
    } finally {
      await proxy.stop();
    }
  }, 60_000);

  it('5xx from the proxy on ModifyListener past the retry budget: the step fails with every retry reported, the record matches the listener; an abort during the fault lands once it answers', async () => {
    const { queryAction, startFaultProxy } = await import('../../src/sandbox/fault-proxy.js');
    const proxy = await startFaultProxy(new URL(moto.url).host);
    try {
      const retries: Retry[] = [];
      const client = clientVia(proxy, retries, 2);
      const router = new AlbRouter({ listenerArn: alb.listenerArn, targetGroups: alb.targetGroups, orgHeader: 'X-Org-Id', maxRules: 100 }, client);
      const { deps, store } = engine(router);
      const plan = planCanary({ steps: [{ weight: 10, hold: 0 }, { weight: 50, hold: 600_000 }, { weight: 100 }] });
      let s = await tick(await startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v2', plan }, deps), deps);
      expect(await alb.listenerWeights()).toEqual({ v1: 90, v2: 10 });

      // Every write answers 503 from now on; reads still reach moto.
      proxy.failNext('error-5xx', Infinity, (request) => queryAction(request) === 'ModifyListener');
      await expect(tick(s, deps)).rejects.toThrow(/ELBv2 ModifyListener on .*: ServiceUnavailable: Service is unavailable/);
      // The first attempt and both retries met the 503, and both retries were reported.
      expect(proxy.faulted).toBe(3);
      expect(retries.map((r) => [r.operation, r.code, r.status])).toEqual([
        ['ModifyListener', 'ServiceUnavailable', 503],
        ['ModifyListener', 'ServiceUnavailable', 503],
      ]);
      s = await expectRecordMatchesMoto(store, 'error-5xx, step write');
      expect([s.phase, s.weights, s.intent?.weights]).toEqual(['progressing', { v1: 90, v2: 10 }, { v1: 50, v2: 50 }]);
      expect(await alb.listenerWeights()).toEqual({ v1: 90, v2: 10 });

      // The abort during the fault reads the listener, but its write meets the 503 too: it stays
      // owed, and nothing the listener does not hold is recorded.
      await expect(rollback(s, 'abort', 'incident', deps)).rejects.toThrow(/ModifyListener.*ServiceUnavailable/);
      expect([proxy.faulted, retries.length]).toEqual([6, 4]);
      expect(total(client.attempts) - total(client.calls)).toBe(retries.length);
      s = await expectRecordMatchesMoto(store, 'error-5xx, abort during the fault');
      expect(s.phase).not.toBe('aborted');
      expect(await alb.listenerWeights()).toEqual({ v1: 90, v2: 10 });

      proxy.mode = 'pass';
      s = await tick(s, deps);
      s = await rollback(s, 'abort', 'incident', deps);
      expect([s.phase, s.weights, await alb.listenerWeights()]).toEqual(['aborted', { v1: 100 }, { v1: 100 }]);
      await expectRecordMatchesMoto(store, 'error-5xx, after the abort');
      expect([proxy.faulted, retries.length]).toEqual([6, 4]);
    } finally {
      await proxy.stop();
    }
  }, 60_000);
});
