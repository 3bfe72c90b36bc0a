/**
 * The group workload over fake members: a step is ready when every member is, a promotion goes
 * member by member in order and carries on where it was, a rollback goes in reverse and leaves
 * no member behind when another fails.
 */
import { Chalk } from 'chalk';
import { describe, expect, it } from 'vitest';
import type { RolloutState } from '../../src/engine/state.js';
import { renderStatus } from '../../src/ui/plain.js';
import { planCanary } from '../../strategies/canary.js';
import type { TargetReadiness } from '../../src/routers/router.js';
import type { Member, MemberRole } from '../../src/workloads/group/member.js';
import { GroupWorkload } from '../../src/workloads/group/workload.js';
import type { MemberStatus } from '../../src/workloads/workload.js';

class FakeMember implements Member {
  ready = true;
  promoted = false;
  /** Looks at a promotion before it is done. */
  promoteLooks = 0;
  stuck?: string;
  fails?: string;
  failed?: string;
  constructor(
    readonly name: string,
    readonly role: MemberRole,
    private readonly log: string[],
  ) {}
  async preflight(): Promise<void> {
    if (this.fails) throw new Error(this.fails);
  }
  async scaleFor(candidate: string, weight: number): Promise<TargetReadiness> {
    this.log.push(`${this.name} scale ${candidate} ${weight}`);
    return { ready: this.ready, detail: `${this.name} ${this.ready ? 'ready' : 'starting'}`, ...(this.stuck ? { stuck: this.stuck } : {}) };
  }
  async promote(candidate: string): Promise<TargetReadiness> {
    this.log.push(`${this.name} promote ${candidate}`);
    if (!this.promoted && this.promoteLooks > 0) {
      this.promoteLooks -= 1;
      return { ready: false, detail: `${this.name} rolling out` };
    }
    this.promoted = true;
    return { ready: true, detail: `${this.name} done` };
  }
  async restoreStable(stable: string): Promise<void> {
    this.log.push(`${this.name} restore ${stable}`);
    if (this.fails) throw new Error(this.fails);
  }
  async retire(): Promise<void> {
    this.log.push(`${this.name} retire`);
  }
  async describe(): Promise<MemberStatus> {
    if (this.fails) throw new Error(this.fails);
    return { name: this.name, role: this.role, versions: [{ version: 'v1', ready: 1, desired: 1 }] };
  }
  async failure(): Promise<string | undefined> {
    return this.failed;
  }
}

function group(order?: string[]) {
  const log: string[] = [];
  const m = {
    api: new FakeMember('api', 'traffic', log),
    lis: new FakeMember('lis', 'consumer', log),
    worker: new FakeMember('worker', 'worker', log),
    cron: new FakeMember('cron', 'cron', log),
  };
  return { log, m, workload: new GroupWorkload({ members: Object.values(m), ...(order ? { order } : {}) }) };
}

describe('a release group', () => {
  it('is ready for a step when every member is, and stuck when one is', async () => {
    const { m, workload, log } = group();
    expect(await workload.scaleFor('v2', 25)).toEqual({ ready: true, detail: 'all 4 members ready' });
    expect(log).toEqual(['api scale v2 25', 'lis scale v2 25', 'worker scale v2 25', 'cron scale v2 25']);
    m.lis.ready = false;
    m.worker.ready = false;
    expect(await workload.scaleFor('v2', 50)).toEqual({ ready: false, detail: '2 of 4 members not ready: lis starting; worker starting' });
    m.worker.stuck = 'worker: progress deadline exceeded';
    expect(await workload.scaleFor('v2', 50)).toMatchObject({ ready: false, stuck: 'worker: progress deadline exceeded' });
  });

  it('promotes member by member in its order, each done before the next, and carries on where it was', async () => {
    const { m, workload, log } = group(['lis', 'worker', 'api', 'cron']);
    m.worker.promoteLooks = 2;
    const first = await workload.promote('v2');
    expect(first).toEqual({ ready: false, detail: 'promoting member 2/4 (lis → worker → api → cron): worker rolling out' });
    expect(log).toEqual(['lis promote v2', 'worker promote v2']);
    log.length = 0;
    expect((await workload.promote('v2')).ready).toBe(false);
    // A resumed driver (a new process) asks the same: done members answer at once, in order.
    const again = new GroupWorkload({ members: Object.values(m), order: ['lis', 'worker', 'api', 'cron'] });
    expect(await again.promote('v2')).toEqual({ ready: true, detail: 'all 4 members promoted: lis → worker → api → cron' });
    expect(log).toEqual(['lis promote v2', 'worker promote v2', 'lis promote v2', 'worker promote v2', 'api promote v2', 'cron promote v2']);
  });

  it('rolls back in the reverse order, and a member that fails does not stop the others', async () => {
    const { m, workload, log } = group(['lis', 'worker', 'api', 'cron']);
    m.worker.fails = 'deployments.apps "wrk" is forbidden';
    await expect(workload.restoreStable('v1')).rejects.toThrow('worker: deployments.apps "wrk" is forbidden');
    expect(log).toEqual(['cron restore v1', 'api restore v1', 'worker restore v1', 'lis restore v1']);
    log.length = 0;
    m.worker.fails = undefined;
    await workload.retire();
    expect(log).toEqual(['cron retire', 'api retire', 'worker retire', 'lis retire']);
  });

  it('names a failed run of any member, and describes every member even when one cannot be read', async () => {
    const { m, workload } = group();
    expect(await workload.failure('v2')).toBeUndefined();
    m.cron.failed = 'cron: Job cron-29 of v2 failed: BackoffLimitExceeded';
    expect(await workload.failure('v2')).toBe('cron: Job cron-29 of v2 failed: BackoffLimitExceeded');
    m.lis.fails = 'connection refused';
    expect((await workload.describe()).map((s) => [s.name, s.detail ?? s.versions.length])).toEqual([
      ['api', 1],
      ['lis', 'could not be read: connection refused'],
      ['worker', 1],
      ['cron', 1],
    ]);
    await expect(workload.preflight()).rejects.toThrow('connection refused');
  });
});

describe('deploy status of a release group', () => {
  const state: RolloutState = {
    schema: 1,
    rolloutId: 'r1',
    service: 'pat-dtc-be',
    stable: 'v1',
    candidate: 'v2',
    plan: planCanary({}, []),
    phase: 'holding',
    step: 1,
    weights: { v1: 95, v2: 5 },
    readying: { step: 2, since: '2026-11-29T10:00:05.000Z' },
    startedAt: '2026-11-29T10:00:00.000Z',
    startedBy: 'ana',
    updatedAt: '2026-11-29T10:00:05.000Z',
  };
  const c = new Chalk({ level: 0 });

  it('shows each member’s replicas per version, and the step being readied', () => {
    const text = renderStatus(state, Date.parse('2026-11-29T10:00:06Z'), c, [
      { name: 'api', role: 'traffic', versions: [{ version: 'v1', ready: 4, desired: 4 }, { version: 'v2', ready: 1, desired: 1 }] },
      { name: 'lis-testresult', role: 'consumer', versions: [{ version: 'v1', ready: 1, desired: 1 }, { version: 'v2', ready: 0, desired: 1 }] },
      { name: 'cron', role: 'cron', versions: [], detail: 'CronJob cron--prod starts v1; Jobs: v1 2 succeeded' },
    ]);
    expect(text.split('\n').filter((l) => /^(member|readying)/.test(l))).toEqual([
      "readying  step 3 since 10:00:05: the workload's parts are on step 2 or 3",
      'member    api (traffic)              v1 4/4 · v2 1/1',
      'member    lis-testresult (consumer)  v1 1/1 · v2 0/1',
      'member    cron (cron)                CronJob cron--prod starts v1; Jobs: v1 2 succeeded',
    ]);
  });

  it('says when the members could not be read, and when the workload still needs tidying', () => {
    const text = renderStatus({ ...state, phase: 'rolled_back', readying: undefined, retiring: { restoreStable: true } } as RolloutState, 0, c, new Error('connection refused'));
    expect(text).toContain('member    could not be read: connection refused');
    expect(text).toContain('tidying   the workload was not tidied after the rollout (back on stable, canary down): `deploy resume` finishes it');
  });
});
