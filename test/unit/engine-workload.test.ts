/**
 * The engine around a workload: the canary is scaled for each step before weight moves to it,
 * a stuck scale-up rolls back, a promotion hands the template to stable before traffic moves
 * there, and the canary is scaled down only after traffic has left it.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { promoteNow, retireWorkload, rollback, startRollout, tick, unpause, type EngineDeps } from '../../src/engine/machine.js';
import type { RolloutState } from '../../src/engine/state.js';
import type { ApplyResult, RouteSpec, TargetReadiness } from '../../src/routers/router.js';
import type { Workload } from '../../src/workloads/workload.js';
import { planCanary } from '../../strategies/canary.js';
import { engineHarness, FakeRouter, type ManualClock } from '../helpers/fakes.js';

/** Records every call, in order, with the router's writes in the same log. */
class FakeWorkload implements Workload {
  readonly type = 'fake';
  ready = true;
  promoteReady = true;
  stuck?: string;
  failed?: string;
  /** Called as a scale begins, to look at what is recorded then. */
  onScale?: () => Promise<void>;
  constructor(readonly log: string[]) {}
  async preflight(): Promise<void> {}
  async scaleFor(candidate: string, weight: number): Promise<TargetReadiness> {
    await this.onScale?.();
    this.log.push(`scale ${candidate} ${weight}`);
    return { ready: this.ready, detail: this.ready ? 'ready' : `0/1 replicas of api-canary ready on ${candidate}` };
  }
  async promote(candidate: string): Promise<TargetReadiness> {
    this.log.push(`promote ${candidate}`);
    return { ready: this.promoteReady, detail: this.promoteReady ? 'rolled out' : '1/3 replicas of api ready', ...(this.stuck ? { stuck: this.stuck } : {}) };
  }
  async restoreStable(stable: string): Promise<void> {
    this.log.push(`restore ${stable}`);
  }
  async retire(): Promise<void> {
    this.log.push('retire');
  }
  async failure(): Promise<string | undefined> {
    return this.failed;
  }
}

class LoggingRouter extends FakeRouter {
  constructor(readonly log: string[]) {
    super();
  }
  override async apply(spec: RouteSpec): Promise<ApplyResult> {
    this.log.push(`route ${JSON.stringify(spec.weights)} ${JSON.stringify(spec.roles)}`);
    return super.apply(spec);
  }
}

describe('the engine with a workload', () => {
  let log: string[];
  let workload: FakeWorkload;
  let deps: EngineDeps;
  let clock: ManualClock;
  let dispose: () => void;
  let store: ReturnType<typeof engineHarness>['store'];

  beforeEach(() => {
    log = [];
    workload = new FakeWorkload(log);
    ({ deps, clock, dispose, store } = engineHarness(new LoggingRouter(log), { workload }));
  });
  afterEach(() => dispose());

  const plan = () => ({ ...planCanary({ steps: [{ weight: 5, hold: 60_000 }, { weight: 100, hold: 60_000 }] }, []), readinessTimeoutMs: 120_000 });
  const start = () => startRollout({ service: 'api', stable: 'v1', candidate: 'v2', plan: plan() }, deps);
  const run = async (s: RolloutState, ticks: number) => {
    for (let i = 0; i < ticks; i += 1) {
      clock.now += 60_000;
      s = await tick(s, deps);
    }
    return s;
  };

  it('scales before each step, promotes into stable, moves traffic there, then scales the canary down', async () => {
    let s = await start();
    s = await tick(s, deps);
    s = await run(s, 3);
    expect(s.phase).toBe('promoted');
    expect(log).toEqual([
      'scale v2 5',
      'route {"v1":95,"v2":5} {"v1":"stable","v2":"canary"}',
      'scale v2 100',
      'route {"v1":0,"v2":100} {"v1":"stable","v2":"canary"}',
      'promote v2',
      'route {"v2":100} {"v2":"stable"}',
      'retire',
    ]);
    const actions = (await store.audit.read()).map((r) => r.action);
    expect(actions.slice(-4)).toEqual(['step.entered', 'promotion.started', 'rollout.promoted', 'workload.retired']);
  });

  it('moves no weight while the canary is not ready, and rolls back past the deadline, traffic first', async () => {
    workload.ready = false;
    let s = await tick(await start(), deps);
    expect([s.phase, s.waitingForTargets?.detail]).toEqual(['pending', '0/1 replicas of api-canary ready on v2']);
    s = await run(s, 2);
    expect(s.phase).toBe('rolled_back');
    expect(s.outcome?.reason).toMatch(/^v2's targets were not ready within 120s: 0\/1 replicas of api-canary ready on v2$/);
    expect(log.filter((l) => !l.startsWith('scale'))).toEqual(['route {"v1":100} {"v1":"stable","v2":"canary"}', 'restore v1', 'retire']);
  });

  it('waits for a promotion to roll out, and pauses when it is stuck, traffic staying on the canary', async () => {
    let s = await tick(await start(), deps);
    workload.promoteReady = false;
    s = await run(s, 3);
    expect([s.phase, s.weights, s.promotion !== undefined, s.waitingForTargets?.detail]).toEqual(['holding', { v1: 0, v2: 100 }, true, '1/3 replicas of api ready']);
    workload.stuck = 'api: ReplicaSet "api-7f" has timed out progressing.';
    s = await run(s, 1);
    expect([s.phase, s.paused?.reason]).toEqual(['paused', 'stuck']);
    expect(log.at(-1)).toBe('promote v2');
    workload.stuck = undefined;
    workload.promoteReady = true;
    s = await unpause(s, 'resume', deps);
    expect(s.phase).toBe('promoted');
    expect(log.slice(-2)).toEqual(['route {"v2":100} {"v2":"stable"}', 'retire']);
  });

  it('an abort during a promotion sends traffic to stable, then restores stable and scales the canary down', async () => {
    let s = await tick(await start(), deps);
    workload.promoteReady = false;
    s = await run(s, 3);
    expect(s.promotion).toBeDefined();
    s = await rollback(s, 'abort', 'by hand', deps);
    expect(s.phase).toBe('aborted');
    expect(log.slice(-3)).toEqual(['route {"v1":100} {"v1":"stable","v2":"canary"}', 'restore v1', 'retire']);
    expect(s.promotion).toBeUndefined();
  });

  it('a promote that skips a hold is carried out once the canary is ready, without waiting out the hold', async () => {
    let s = await tick(await start(), deps);
    workload.ready = false;
    s = await promoteNow(s, true, deps);
    expect([s.phase, s.step, s.waitingForTargets?.step]).toEqual(['holding', 0, 1]);
    clock.now += 1_000;
    s = await tick(s, deps);
    expect(s.step).toBe(0);
    workload.ready = true;
    clock.now += 1_000;
    s = await tick(s, deps);
    expect([s.phase, s.step, s.weights, s.waitingForTargets]).toEqual(['holding', 1, { v1: 0, v2: 100 }, undefined]);
  });

  it('records the step it readies the workload for before the workload moves, until that step’s intent', async () => {
    const seen: unknown[] = [];
    workload.onScale = async () => {
      const recorded = await store.load();
      seen.push([recorded?.step, recorded?.readying?.step]);
    };
    let s = await tick(await start(), deps);
    expect([s.step, s.readying]).toEqual([0, undefined]);
    s = await run(s, 1);
    expect(seen).toEqual([[-1, 0], [0, 1]]);
    expect([s.step, s.readying]).toEqual([1, undefined]);
  });

  it('rolls back on a failed run of the candidate, during a hold and during a promotion, and puts everything back', async () => {
    let s = await tick(await start(), deps);
    workload.failed = 'cron: Job cron-29 of v2 failed: BackoffLimitExceeded';
    s = await run(s, 1);
    expect([s.phase, s.outcome?.reason]).toEqual(['rolled_back', 'cron: Job cron-29 of v2 failed: BackoffLimitExceeded']);
    expect(log.slice(-3)).toEqual(['route {"v1":100} {"v1":"stable","v2":"canary"}', 'restore v1', 'retire']);

    log.length = 0;
    workload.failed = undefined;
    workload.promoteReady = false;
    s = await tick(await start(), deps);
    s = await run(s, 3);
    expect([s.phase, s.promotion !== undefined]).toEqual(['holding', true]);
    workload.failed = 'cron: Job cron-30 of v2 failed: DeadlineExceeded';
    s = await run(s, 1);
    expect([s.phase, s.outcome?.reason]).toEqual(['rolled_back', 'cron: Job cron-30 of v2 failed: DeadlineExceeded']);
    expect(log.slice(-4)).toEqual(['promote v2', 'route {"v1":100} {"v1":"stable","v2":"canary"}', 'restore v1', 'retire']);
  });

  it('keeps a workload not yet tidied after the rollout recorded, and finishes it later', async () => {
    let fail = true;
    workload.retire = async () => {
      if (fail) throw new Error('the API server went away');
      log.push('retire');
    };
    let s = await tick(await start(), deps);
    s = await rollback(s, 'gate', 'errors failed', deps);
    expect([s.phase, s.retiring]).toEqual(['rolled_back', { restoreStable: true }]);
    expect((await store.load())?.retiring).toEqual({ restoreStable: true });
    fail = false;
    s = await retireWorkload(s, deps);
    expect([s.phase, s.retiring, (await store.load())?.retiring]).toEqual(['rolled_back', undefined, undefined]);
    expect(log.slice(-2)).toEqual(['restore v1', 'retire']);
    expect((await store.audit.read()).at(-1)?.action).toBe('workload.retired');
  });

  it('records a failed scale-down and keeps the rollback', async () => {
    workload.retire = async () => {
      throw new Error('deployments.apps "api-canary" is forbidden');
    };
    let s = await tick(await start(), deps);
    s = await rollback(s, 'gate', 'errors failed', deps);
    expect(s.phase).toBe('rolled_back');
    const last = (await store.audit.read()).at(-1)!;
    expect([last.action, last.detail]).toEqual(['workload.retire_failed', { error: 'deployments.apps "api-canary" is forbidden' }]);
  });
});
