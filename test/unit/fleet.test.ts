/**
 * The fleet over fake routers and a manual clock: its plans (lockstep, waves), its writes (all
 * targets or none moving forward, rollbacks wherever they reach, staged activation at one
 * instant), the engine's record of each target, the owed rollback, and its gates per target.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { drive } from '../../src/engine/driver.js';
import { type EngineDeps, rollback, startRollout, tick } from '../../src/engine/machine.js';
import type { Plan } from '../../src/engine/plan.js';
import type { RolloutState } from '../../src/engine/state.js';
import { FleetGates, projected, roleAt } from '../../src/fleet/gates.js';
import { FleetRouter, FleetWriteError } from '../../src/fleet/router.js';
import { targetConfig } from '../../src/fleet/config.js';
import { parseConfig } from '../../src/config/parse.js';
import type { GateResult } from '../../src/gates/types.js';
import type { ApplyResult, RouteSpec, StagedRoutes } from '../../src/routers/router.js';
import { planCanary } from '../../strategies/canary.js';
import { planFleet, REACHABLE_GATE } from '../../strategies/fleet.js';
import { engineHarness, FakeRouter, type ManualClock } from '../helpers/fakes.js';

const actor = { owner: 'nurse@ward', pid: 1, host: 'ward' };
const ladder = () => planCanary({ steps: [{ weight: 10, hold: 60_000 }, { weight: 50, hold: 60_000 }, { weight: 100 }] }, ['errors']);

/** A fake router that also stages, activating at the time it is given (recorded, not waited for). */
class StagingRouter extends FakeRouter {
  staged: { spec: RouteSpec; generation: number } | undefined;
  failStage = false;
  activatedAt: number[] = [];
  async stage(spec: RouteSpec, generation = 0): Promise<StagedRoutes> {
    if (this.failStage) throw new Error('admin endpoint down');
    const live = await this.read();
    const { fence: _f, ...routes } = spec;
    if (JSON.stringify(live.weights) === JSON.stringify(routes.weights) && JSON.stringify(live.orgs ?? {}) === JSON.stringify(routes.orgs ?? {})) return { generation: live.generation!, changed: false };
    this.staged = { spec: routes, generation: Math.max(generation, live.generation! + 1) };
    return { generation: this.staged.generation, changed: true };
  }
  async activate(staged: StagedRoutes, atMs: number): Promise<ApplyResult> {
    if (this.staged?.generation !== staged.generation) throw new Error('nothing staged');
    this.activatedAt.push(atMs);
    this.live = { ...this.staged.spec, generation: staged.generation };
    this.writes.push(this.staged.spec);
    return { changed: true, generation: staged.generation };
  }
}

describe('fleet plans', () => {
  it('lockstep keeps the ladder and watches every held step for unreachable targets', () => {
    const plan = planFleet(ladder(), { strategy: 'lockstep', order: ['eu', 'us'], bakeMs: 300_000, writeTimeoutMs: 30_000 });
    expect(plan.steps.map((s) => [s.weight, s.gates])).toEqual([[10, ['errors', REACHABLE_GATE]], [50, ['errors', REACHABLE_GATE]], [100, []]]);
    expect(plan.writeTimeoutMs).toBe(30_000);
  });

  it('waves run the ladder target by target, with a bake at 100% before the next, and orgs follow the share all have reached', () => {
    const plan = planFleet(ladder(), { strategy: 'waves', order: ['eu', 'us', 'ap'], bakeMs: 300_000, writeTimeoutMs: 30_000 });
    expect(plan.steps.map((s) => s.targets)).toEqual([
      { eu: 10, us: 0, ap: 0 },
      { eu: 50, us: 0, ap: 0 },
      { eu: 100, us: 0, ap: 0 },
      { eu: 100, us: 10, ap: 0 },
      { eu: 100, us: 50, ap: 0 },
      { eu: 100, us: 100, ap: 0 },
      { eu: 100, us: 100, ap: 10 },
      { eu: 100, us: 100, ap: 50 },
      { eu: 100, us: 100, ap: 100 },
    ]);
    expect(plan.steps.map((s) => s.weight)).toEqual([0, 0, 0, 0, 0, 0, 10, 50, 100]);
    expect(plan.steps.map((s) => s.holdMs)).toEqual([60_000, 60_000, 300_000, 60_000, 60_000, 300_000, 60_000, 60_000, 0]);
    expect(plan.steps[2]!.gates).toEqual(['errors', REACHABLE_GATE]);
    expect(plan.steps[8]!.gates).toEqual([]);
    expect(plan.steps.map((s) => s.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('in waves a target is judged from its first share through its bake, watched after, idle before', () => {
    const plan = planFleet(ladder(), { strategy: 'waves', order: ['eu', 'us'], bakeMs: 300_000, writeTimeoutMs: 30_000 });
    expect(plan.steps.map((_, i) => [roleAt(plan, i, 'eu'), roleAt(plan, i, 'us')])).toEqual([
      ['judged', 'idle'],
      ['judged', 'idle'],
      ['judged', 'idle'],
      ['watched', 'judged'],
      ['watched', 'judged'],
      ['watched', 'judged'],
    ]);
    const state = { plan, step: 3, gateMemory: { 'errors@us': { m: 1 }, 'errors@eu': { m: 2 } } } as unknown as RolloutState;
    const us = projected(state, 'us');
    expect(us.plan.steps.map((s) => s.weight)).toEqual([0, 0, 0, 10, 50, 100]);
    expect(us.plan.steps[0]!.gates).toEqual([]);
    expect(us.gateMemory).toEqual({ errors: { m: 1 } });
  });
});

describe('fleet config', () => {
  const yaml = `service: patient-api
stable: v1
versions: { v1: {}, v2: {} }
router: { type: fleet, strategy: waves, order: [us, eu] }
prometheus: { url: http://127.0.0.1:9090, labels: { job: api } }
targets:
  eu:
    router: { type: nginx, listen: 127.0.0.1:8080, admin: 127.0.0.1:8081, prefix: nginx-eu }
    versions: { v1: { endpoints: ["127.0.0.1:9001"] }, v2: { endpoints: ["127.0.0.1:9002"] } }
    prometheus: { labels: { region: eu } }
  us:
    router: { type: nginx, listen: 127.0.0.1:8090, admin: 127.0.0.1:8091, prefix: nginx-us }
    versions: { v1: { endpoints: ["127.0.0.1:9011"] }, v2: { endpoints: ["127.0.0.1:9012"] } }
    prometheus: { url: http://127.0.0.1:9190, labels: { region: us } }
`;

  it('gives each target the config as it sees it: its router, servers and metrics over the shared ones', () => {
    const config = parseConfig(yaml, 'deploy.yaml');
    const us = targetConfig(config, 'us');
    expect(us.router).toMatchObject({ type: 'nginx', listen: '127.0.0.1:8090' });
    expect(us.versions.v2).toEqual({ endpoints: ['127.0.0.1:9012'] });
    expect(us.prometheus).toMatchObject({ url: 'http://127.0.0.1:9190', labels: { job: 'api', region: 'us' } });
    expect(targetConfig(config, 'eu').prometheus).toMatchObject({ url: 'http://127.0.0.1:9090', labels: { job: 'api', region: 'eu' } });
    expect('targets' in us).toBe(false);
  });

  it("names a target's problems at the target, and refuses what would split an org across regions", () => {
    const bad = yaml.replace('v2: { endpoints: ["127.0.0.1:9012"] }', 'v3: { endpoints: ["127.0.0.1:9012"] }').replace('order: [us, eu]', 'order: [us, ap]').concat('orgs: { list: [a], unpinned: weighted }\n');
    expect(() => parseConfig(bad, 'deploy.yaml')).toThrow(/router\.strategy: waves put targets on different weights, and orgs\.unpinned: weighted routes orgs by weight[\s\S]*router\.order\[1\]: no target "ap"[\s\S]*targets\.us\.versions\.v3: not a version listed/);
    expect(() => parseConfig(yaml.replace('type: fleet, strategy: waves, order: [us, eu]', 'type: nginx, listen: 127.0.0.1:1, admin: 127.0.0.1:2'), 'deploy.yaml')).toThrow(/router\.type: targets: are driven together by router: \{ type: fleet \}/);
    expect(() => parseConfig(yaml.replace(/versions: \{ v1: \{ endpoints: \["127.0.0.1:9011"\] \}, v2: \{ endpoints: \["127.0.0.1:9012"\] \} \}/, ''), 'deploy.yaml')).toThrow(/the nginx router needs the endpoints of every version \(target us\)/);
  });
});

describe('fleet router and engine', () => {
  let clock: ManualClock;
  let eu: FakeRouter;
  let us: FakeRouter;
  let fleet: FleetRouter;
  let deps: EngineDeps;
  let events: { event: string }[];
  let dispose: () => void;
  let store: ReturnType<typeof engineHarness>['store'];

  beforeEach(() => {
    eu = new FakeRouter();
    us = new FakeRouter();
    eu.live = { weights: { v1: 100 }, generation: 1 };
    us.live = { weights: { v1: 100 }, generation: 1 };
    fleet = new FleetRouter([{ name: 'eu', router: eu }, { name: 'us', router: us }]);
    ({ clock, deps, events, dispose, store } = engineHarness(fleet, { actor }));
  });
  afterEach(() => dispose());

  /** Gates are the gates tests' business: here every step only holds. */
  const noGates = (plan: Plan): Plan => ({ ...plan, steps: plan.steps.map((x) => ({ ...x, gates: [] })) });
  const lockstep = () => planFleet(planCanary({ steps: [{ weight: 10, hold: 60_000 }, { weight: 50, hold: 60_000 }, { weight: 100 }] }), { strategy: 'lockstep', order: ['eu', 'us'], bakeMs: 120_000, writeTimeoutMs: 30_000 });
  const start = (plan = lockstep()) => startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v2', plan: noGates(plan) }, deps);
  const driveIt = async (s: RolloutState) => drive(s, { ...deps, lock: await store.acquireLock(actor, 30_000), sleep: clock.sleep, leaseMs: 30_000, checkIntervalMs: 10_000 });

  it('lockstep: every step is live in every target before its hold', async () => {
    const result = await driveIt(await start());
    expect(result.state.phase).toBe('promoted');
    for (const r of [eu, us]) expect(r.writes.map((w) => w.weights.v2)).toEqual([10, 50, 100]);
  });

  it('waves: each target walks its ladder while the others hold their share, and the record keeps every target', async () => {
    const plan = planFleet(planCanary({ steps: [{ weight: 10, hold: 60_000 }, { weight: 100 }] }), { strategy: 'waves', order: ['us', 'eu'], bakeMs: 120_000, writeTimeoutMs: 30_000 });
    let s = await start(plan);
    s = await tick(s, deps);
    // eu already carries 0% (no write needed); the record names its share all the same.
    expect([us.live.weights, eu.live.weights]).toEqual([{ v1: 90, v2: 10 }, { v1: 100 }]);
    expect(s.targets).toEqual({ us: { v1: 90, v2: 10 }, eu: { v1: 100, v2: 0 } });
    expect(s.weights).toEqual({ v1: 100, v2: 0 });
    clock.now += 60_000;
    s = await tick(s, deps);
    expect([us.live.weights, eu.live.weights]).toEqual([{ v1: 0, v2: 100 }, { v1: 100 }]);
    expect(s.holdUntil).toBe(new Date(clock.now + 120_000).toISOString());
    clock.now += 120_000;
    s = await tick(s, deps);
    expect([us.live.weights, eu.live.weights]).toEqual([{ v1: 0, v2: 100 }, { v1: 90, v2: 10 }]);
    const step = events.filter((e) => e.event === 'step').at(-1) as { targets?: Record<string, number> };
    expect(step.targets).toEqual({ us: 100, eu: 10 });
    s = await rollback(s, 'abort', 'drill', deps);
    expect([s.phase, us.live.weights, eu.live.weights, s.targets]).toEqual(['aborted', { v1: 100 }, { v1: 100 }, undefined]);
  });

  it('a forward write one target refuses is undone in the others, retried, and rolled back after the write timeout; the rollback stays owed until the target answers', async () => {
    let s = await tick(await start(), deps);
    expect(us.live.weights).toEqual({ v1: 90, v2: 10 });
    clock.now += 60_000;
    eu.failNext = 1_000;
    await expect(tick(s, deps)).rejects.toThrow(/^eu failed: router unavailable; us written \(generation 3\); the others were put back$/);
    // us took step 2 and was put back: the fleet never stands partly on the next step.
    expect(us.live.weights).toEqual({ v1: 90, v2: 10 });
    s = (await store.load())!;
    expect(s.intent?.weights).toEqual({ v1: 50, v2: 50 });
    const lock = await store.acquireLock(actor, 30_000);
    const result = await drive(s, { ...deps, lock, sleep: clock.sleep, leaseMs: 30_000, checkIntervalMs: 10_000 });
    // Past the timeout: rolled back where it reaches, the rollback owed by eu, the intent kept.
    expect(result.state.phase).toBe('failed');
    expect(result.state.intent).toMatchObject({ to: 'rolled_back', weights: { v1: 100 } });
    expect(result.state.outcome).toBeUndefined();
    expect(us.live.weights).toEqual({ v1: 100 });
    expect(result.state.lastError?.message).toMatch(/^eu failed: router unavailable; us written \(generation \d+\): eu owes this write$/);
    // eu answers again: the next command carries the rollback out.
    eu.failNext = 0;
    const done = await tick({ ...result.state, phase: 'progressing' }, deps);
    expect([done.phase, eu.live.weights, us.live.weights]).toEqual(['rolled_back', { v1: 100 }, { v1: 100 }]);
    expect(events.some((e) => e.event === 'rollback')).toBe(true);
    await lock.release();
  });

  it('--target writes only the named target and requires the others to carry the write already', async () => {
    const only = new FleetRouter([{ name: 'eu', router: eu }, { name: 'us', router: us }], { only: ['eu'] });
    await expect(only.apply({ weights: { v1: 50, v2: 50 } })).rejects.toThrow(/target us is left out \(--target eu\) and does not carry this routing/);
    expect(eu.writes).toEqual([]);
    us.live = { weights: { v1: 50, v2: 50 }, generation: 2 };
    await only.apply({ weights: { v1: 50, v2: 50 } });
    expect([eu.live.weights, us.writes]).toEqual([{ v1: 50, v2: 50 }, []]);
  });

  it('staged: nothing activates anywhere when one target fails to stage; otherwise all activate at one instant after the last staging', async () => {
    const a = new StagingRouter();
    const b = new StagingRouter();
    a.live = { weights: { v1: 100 }, generation: 4 };
    b.live = { weights: { v1: 100 }, generation: 9 };
    let now = 1_000;
    const staged = new FleetRouter([{ name: 'eu', router: a }, { name: 'us', router: b }], { clock: () => now, minActivationLeadMs: 50 });
    b.failStage = true;
    const error = await staged.apply({ weights: { v1: 100 }, orgs: { 'st-marys': 'v2' } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FleetWriteError);
    expect((error as FleetWriteError).failed).toEqual(['us']);
    expect([a.activatedAt, b.activatedAt, a.live.orgs]).toEqual([[], [], undefined]);
    b.failStage = false;
    now = 2_000;
    const result = await staged.apply({ weights: { v1: 100 }, orgs: { 'st-marys': 'v2' } });
    expect(result).toEqual({ changed: true, generation: 10, activatedAt: 2_050 });
    expect([a.live.generation, b.live.generation]).toEqual([10, 10]);
    expect(a.activatedAt).toEqual([2_050]);
    expect(b.activatedAt).toEqual([2_050]);
    // A rollback never waits for staging: written wherever it reaches.
    b.failNext = 1;
    await expect(staged.apply({ weights: { v1: 100 }, orgs: {}, rollback: true })).rejects.toThrow(/us owes this write/);
    expect(a.live.orgs).toEqual({});
  });
});

describe('fleet gates', () => {
  const result = (gate: string, verdict: GateResult['verdict']): GateResult => ({ gate, type: 'errorRate', verdict, reason: `${verdict} here`, queries: [], at: '' });

  it('judges each target on its own, names the target, and holds while a router does not answer, failing past the timeout', async () => {
    let down = false;
    const router = {
      readTargets: async () => [
        { target: 'eu', live: { weights: { v1: 100 }, generation: 3 } },
        down ? { target: 'us', error: new Error('connect ECONNREFUSED') } : { target: 'us', live: { weights: { v1: 100 }, generation: 3 } },
      ],
    };
    const seen: string[] = [];
    const runner = (name: string, verdict: GateResult['verdict']) => ({
      evaluate: async (s: RolloutState, names: string[]) => {
        seen.push(`${name}:${names.join(',')}:${JSON.stringify(s.gateMemory ?? {})}`);
        return [result('errors', verdict)];
      },
    });
    const gates = new FleetGates([{ name: 'eu', runner: runner('eu', 'passed') }, { name: 'us', runner: runner('us', 'failed') }], router, 10_000);
    const plan = planFleet(ladder(), { strategy: 'lockstep', order: ['eu', 'us'], bakeMs: 0, writeTimeoutMs: 10_000 });
    const state = { plan, step: 0, gateMemory: { 'errors@us': 'm-us' } } as unknown as RolloutState;
    const results = await gates.evaluate(state, plan.steps[0]!.gates, 0);
    expect(results.map((r) => [r.gate, r.verdict, (r as { target?: string }).target])).toEqual([
      ['errors@eu', 'passed', 'eu'],
      ['errors@us', 'failed', 'us'],
      ['reachable@eu', 'passed', 'eu'],
      ['reachable@us', 'passed', 'us'],
    ]);
    expect(seen).toEqual(['eu:errors:{}', 'us:errors:{"errors":"m-us"}']);
    down = true;
    const first = await gates.evaluate(state, [REACHABLE_GATE], 5_000);
    expect(first.find((r) => r.gate === 'reachable@us')).toMatchObject({ verdict: 'inconclusive', memory: { since: 5_000 } });
    const later = await gates.evaluate({ ...state, gateMemory: { 'reachable@us': { since: 5_000 } } }, [REACHABLE_GATE], 15_000);
    expect(later.find((r) => r.gate === 'reachable@us')).toMatchObject({ verdict: 'failed', reason: expect.stringMatching(/^us's router has not answered for 10s: connect ECONNREFUSED/) });
  });
});
