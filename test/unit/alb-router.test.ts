/**
 * The `alb` router's logic against an in-memory listener: weights written once and read back,
 * stickiness kept, org rules chunked within ALB's quotas, moves ordered so that no org is ever
 * routed by the weighted default or switches twice, and refusals before any write.
 */
import { describe, expect, it } from 'vitest';
import { AlbRouter, type AlbRouterOptions } from '../../src/routers/alb/router.js';
import { albWeights, planOrgRules } from '../../src/routers/alb/routes.js';
import { UsageError } from '../../src/errors.js';
import { FakeAlbClient, forwardTo, LISTENER, TG } from '../helpers/fake-alb.js';

const options = (extra: Partial<AlbRouterOptions> = {}): AlbRouterOptions => ({ listenerArn: LISTENER, targetGroups: TG, orgHeader: 'X-Org-Id', maxRules: 100, ...extra });
const setup = (extra: Partial<AlbRouterOptions> = {}) => {
  const client = new FakeAlbClient();
  return { client, router: new AlbRouter(options(extra), client) };
};
const orgs = (n: number, version: string, prefix = 'org') => Object.fromEntries(Array.from({ length: n }, (_, i) => [`${prefix}-${String(i).padStart(3, '0')}`, version]));

describe('alb router: weights', () => {
  it('writes a shift as one ModifyListener, reads it back, and writes nothing when live already matches', async () => {
    const { client, router } = setup();
    expect(await router.apply({ weights: { v1: 95, v2: 5 } })).toEqual({ changed: true });
    expect(client.writes).toEqual(['ModifyListener']);
    expect(client.log.at(-1)).toBe('DescribeListeners');
    expect(client.defaultActions[0]!.forward!.targetGroups).toEqual([
      { targetGroupArn: TG.v1, weight: 95 },
      { targetGroupArn: TG.v2, weight: 5 },
    ]);
    client.log = [];
    expect(await router.apply({ weights: { v1: 95, v2: 5 } })).toEqual({ changed: false });
    expect(client.writes).toEqual([]);
    expect(await router.read()).toMatchObject({ weights: { v1: 95, v2: 5 }, orgs: {}, unpinned: { mode: 'weighted' } });
  });

  it('keeps target-group stickiness and keeps blue at weight 0 after the switch', async () => {
    const { client, router } = setup();
    client.defaultActions = [{ ...forwardTo(TG.v1), forward: { targetGroups: [{ targetGroupArn: TG.v1, weight: 1 }], stickiness: { enabled: true, durationSeconds: 600 } } }];
    await router.apply({ weights: { v1: 0, v2: 100 } });
    expect(client.defaultActions[0]!.forward).toEqual({
      targetGroups: [{ targetGroupArn: TG.v1, weight: 0 }, { targetGroupArn: TG.v2, weight: 100 }],
      stickiness: { enabled: true, durationSeconds: 600 },
    });
  });

  it('expresses tenths of a percent and refuses finer splits or more than 5 target groups', () => {
    expect(albWeights({ v1: 99.5, v2: 0.5 })).toEqual({ v1: 995, v2: 5 });
    expect(albWeights({ v1: 100 })).toEqual({ v1: 100 });
    expect(() => albWeights({ v1: 99.95, v2: 0.05 })).toThrow(UsageError);
    expect(() => albWeights({ a: 20, b: 20, c: 20, d: 20, e: 10, f: 10 })).toThrow(/at most 5 target groups/);
  });

  it('refuses to report done when the listener does not read back as written', async () => {
    const { client, router } = setup();
    client.dropWrites = true;
    await expect(router.apply({ weights: { v1: 50, v2: 50 } })).rejects.toThrow(/does not read back as written/);
  });

  it('puts the weights on a listener rule chosen by ARN, leaving the default action alone', async () => {
    const client = new FakeAlbClient();
    client.rules.push({ arn: `${LISTENER}/api`, priority: 20, conditions: [{ Field: 'path-pattern', PathPatternConfig: { Values: ['/api/*'] } }], actions: [forwardTo(TG.v1)] });
    const router = new AlbRouter(options({ rule: { arn: `${LISTENER}/api` } }), client);
    await router.apply({ weights: { v1: 75, v2: 25 } });
    expect(client.writes).toEqual(['ModifyRule']);
    expect(client.rules[0]!.actions[0]!.forward!.targetGroups.map((g) => g.weight)).toEqual([75, 25]);
    expect(client.defaultActions).toEqual([forwardTo(TG.v1)]);
  });

  it('needs a target group for every version it routes to', async () => {
    const { router } = setup({ targetGroups: { v1: TG.v1 } });
    await expect(router.apply({ weights: { v1: 90, v2: 10 } })).rejects.toThrow(/version v2 has no target group under router.targetGroups/);
  });
});

describe('alb router: org rules', () => {
  it('chunks pins into rules of 5 header values, with the catch-all for unpinned orgs after them', async () => {
    const { client, router } = setup();
    const pins = { ...orgs(7, 'v2'), ...orgs(2, 'v1', 'old') };
    await router.apply({ weights: { v1: 100 }, orgs: pins, unpinned: { mode: 'version', version: 'v1' } });
    const values = client.rules.map((r) => [r.priority, r.conditions[0]!.HttpHeaderConfig!.Values]);
    expect(values).toEqual([
      [1, ['old-000', 'old-001']],
      [2, ['org-000', 'org-001', 'org-002', 'org-003', 'org-004']],
      [3, ['org-005', 'org-006']],
      [50_000, ['*']],
    ]);
    expect(client.routeOf({ 'x-org-id': 'org-006' })).toBe('v2');
    expect(client.routeOf({ 'X-Org-Id': 'someone-else' })).toBe('v1');
    expect(await router.read()).toEqual({ weights: { v1: 100 }, orgs: pins, unpinned: { mode: 'version', version: 'v1' } });
  });

  it('moves orgs so that each switches once and none is ever routed by the weighted default', async () => {
    const { client, router } = setup();
    const before = { ...orgs(12, 'v1'), ...orgs(3, 'v2', 'b') };
    await router.apply({ weights: { v1: 50, v2: 50 }, orgs: before });
    const after: Record<string, string> = { ...before };
    for (const o of ['org-001', 'org-004', 'org-007', 'org-010', 'org-011', 'b-000']) after[o] = after[o] === 'v1' ? 'v2' : 'v1';
    const seen: Record<string, string[]> = Object.fromEntries(Object.keys(after).map((o) => [o, [before[o]!]]));
    client.afterWrite = () => {
      for (const o of Object.keys(after)) {
        const route = client.routeOf({ 'X-Org-Id': o });
        if (route !== seen[o]!.at(-1)) seen[o]!.push(route);
      }
    };
    client.log = [];
    await router.apply({ weights: { v1: 50, v2: 50 }, orgs: after });
    for (const [o, routes] of Object.entries(seen)) {
      expect(routes, o).toEqual(before[o] === after[o] ? [before[o]] : [before[o], after[o]]);
    }
    const firstRemoval = client.writes.findIndex((w) => w === 'DeleteRule');
    expect(client.writes.slice(0, firstRemoval === -1 ? undefined : firstRemoval)).not.toContain('DeleteRule');
    expect(await router.read()).toMatchObject({ orgs: after });
  });

  it('places org rules between the nearest other rule and the weighted rule, carrying its conditions', async () => {
    const client = new FakeAlbClient();
    const api = [{ Field: 'path-pattern', PathPatternConfig: { Values: ['/api/*'] } }];
    client.rules.push({ arn: `${LISTENER}/admin`, priority: 5, conditions: [{ Field: 'path-pattern', PathPatternConfig: { Values: ['/admin/*'] } }], actions: [forwardTo(TG.v3)] });
    client.rules.push({ arn: `${LISTENER}/api`, priority: 100, conditions: api, actions: [forwardTo(TG.v1)] });
    const router = new AlbRouter(options({ rule: { arn: `${LISTENER}/api` } }), client);
    await router.apply({ weights: { v1: 90, v2: 10 }, orgs: orgs(9, 'v2') });
    const ours = client.rules.filter((r) => (r.priority as number) > 5 && (r.priority as number) < 100);
    expect(ours.map((r) => r.priority)).toEqual([6, 7, 8]);
    // Four values per rule: the weighted rule's path pattern counts against ALB's five.
    expect(ours.map((r) => r.conditions[1]!.HttpHeaderConfig!.Values!.length)).toEqual([4, 4, 1]);
    expect(client.routeOf({ 'X-Org-Id': 'org-000' }, '/api/records')).toBe('v2');
    expect(client.routeOf({ 'X-Org-Id': 'org-000' }, '/static/app.js')).toBe('v1');
    expect(client.routeOf({ 'X-Org-Id': 'org-000' }, '/admin/x')).toBe('v3');
    expect(client.routeOf({ 'X-Org-Id': 'org-009' }, '/api/records')).toBe('weighted');
    expect((await router.read()).orgs).toEqual(orgs(9, 'v2'));
  });

  it('refuses before any write when the pins need more rules than the quota or the free priorities allow', async () => {
    const { client, router } = setup({ maxRules: 3 });
    await expect(router.apply({ weights: { v1: 100 }, orgs: orgs(16, 'v2') })).rejects.toThrow(/16 pinned orgs need 4 listener rules at 5 orgs per rule, over the load balancer's 3-rule quota/);
    expect(client.writes).toEqual([]);

    const tight = new FakeAlbClient();
    tight.rules.push({ arn: `${LISTENER}/a`, priority: 10, conditions: [{ Field: 'path-pattern', PathPatternConfig: { Values: ['/a'] } }], actions: [forwardTo(TG.v3)] });
    tight.rules.push({ arn: `${LISTENER}/api`, priority: 12, conditions: [{ Field: 'path-pattern', PathPatternConfig: { Values: ['/api/*'] } }], actions: [forwardTo(TG.v1)] });
    const onRule = new AlbRouter(options({ rule: { arn: `${LISTENER}/api` } }), tight);
    const error = await onRule.apply({ weights: { v1: 100 }, orgs: orgs(5, 'v2') }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).message).toMatch(/no free rule priority left for 5 pinned orgs .*priority 12/);
    expect(tight.writes).toEqual([]);
  });

  it('refuses org ids that differ only in case but go to different versions', () => {
    const room = { freePriorities: [1, 2, 3], weightedPriority: 50_001, rulesNow: 0, maxRules: 100, valuesPerRule: 5 };
    expect(() => planOrgRules([], { Acme: 'v1', acme: 'v2' }, undefined, room)).toThrow(/differ only in case/);
  });

  it('removes every org rule and puts all weight on the fallback', async () => {
    const { client, router } = setup();
    await router.apply({ weights: { v1: 50, v2: 50 }, orgs: orgs(6, 'v2'), unpinned: { mode: 'version', version: 'v1' } });
    await router.removeManaged('v1');
    expect(client.rules).toEqual([]);
    expect(client.routeOf({ 'X-Org-Id': 'org-000' })).toBe('v1');
  });
});

describe('alb router: preflight and targets', () => {
  it('names a missing target group and exits 2 before anything is written', async () => {
    const { router } = setup({ targetGroups: { ...TG, v2: TG.v2.replace('a1b2', 'ffff') } });
    const error = await router.preflight().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).message).toContain('targetgroup/patient-api-v2/ffff');
    expect((error as UsageError).hint).toMatch(/check the ARN in deploy.yaml's router section/);
  });

  it('is ready only when targets are registered and every one is healthy (moto reports all healthy, so this path is tested here)', async () => {
    const { client, router } = setup();
    client.health[TG.v2] = [];
    expect(await router.targetsReady('v2')).toEqual({ ready: false, detail: "no targets registered in v2's target group" });
    client.health[TG.v2] = [{ id: '10.0.0.2', port: 80, state: 'healthy' }, { id: '10.0.0.3', port: 80, state: 'initial', reason: 'Elb.RegistrationInProgress' }];
    expect(await router.targetsReady('v2')).toEqual({ ready: false, detail: '1/2 targets of v2 healthy; 10.0.0.3:80 initial (Elb.RegistrationInProgress)' });
    client.health[TG.v2]![1]!.state = 'healthy';
    expect((await router.targetsReady('v2')).ready).toBe(true);
  });
});
