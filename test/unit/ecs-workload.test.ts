/**
 * The `ecs` workload against ECS in memory (test/helpers/fake-ecs.ts), where deployments take
 * time and fail as on AWS — what moto does not do: the candidate's task definition derived and
 * reused, readiness from the PRIMARY deployment, FAILED and overdue rollouts stuck with the
 * reason, the `cutover:stable` mark that tells a later process which side to scale down, and the
 * engine's rollback and promotion around it.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { commitIntent, rollback, startRollout, tick, type EngineDeps } from '../../src/engine/machine.js';
import type { RolloutState } from '../../src/engine/state.js';
import { UsageError } from '../../src/errors.js';
import type { EcsDeployment, EcsService } from '../../src/workloads/ecs/client.js';
import { EcsApiError } from '../../src/workloads/ecs/errors.js';
import { serviceReadiness } from '../../src/workloads/ecs/readiness.js';
import { EcsWorkload, STABLE_TAG, type EcsWorkloadOptions } from '../../src/workloads/ecs/workload.js';
import { planBlueGreen } from '../../strategies/blue-green.js';
import { planCanary } from '../../strategies/canary.js';
import { FakeEcs, stableDefinition } from '../helpers/fake-ecs.js';
import { engineHarness, FakeRouter, type ManualClock } from '../helpers/fakes.js';

const BLUE = 'patient-api-blue';
const GREEN = 'patient-api-green';
const V2 = 'registry.example/patient-api:1.5.0';

describe('ecs service readiness', () => {
  const service = (deployments: EcsDeployment[], counts = { desiredCount: 3, runningCount: 3 }): EcsService => ({
    name: GREEN, arn: 'arn', status: 'ACTIVE', taskDefinition: 'arn:td/patient-api:2', pendingCount: 0, deploymentController: 'ECS', targetGroups: ['tg'], tags: {}, ...counts, deployments,
  });
  const wanted = { taskDefinition: 'arn:td/patient-api:2', count: 3, deadlineMs: 300_000, now: Date.parse('2026-11-22T10:01:00Z') };
  const at = new Date('2026-11-22T10:00:00Z');
  const d = (status: string, taskDefinition: string, runningCount: number, rolloutState?: string): EcsDeployment => ({ id: status, status, taskDefinition, desiredCount: 3, runningCount, failedTasks: 0, createdAt: at, ...(rolloutState ? { rolloutState } : {}) });

  it('counts the PRIMARY deployment\'s tasks, and waits while an older deployment still runs some', () => {
    const rolling = service([d('PRIMARY', 'arn:td/patient-api:2', 1, 'IN_PROGRESS'), d('ACTIVE', 'arn:td/patient-api:1', 3)], { desiredCount: 3, runningCount: 4 });
    expect(serviceReadiness(rolling, wanted)).toEqual({ ready: false, detail: '1/3 tasks of patient-api-green running on patient-api:2, 1 older deployment still running (deployment in progress)' });
    const draining = service([d('PRIMARY', 'arn:td/patient-api:2', 3, 'COMPLETED'), d('ACTIVE', 'arn:td/patient-api:1', 1)]);
    expect(serviceReadiness(draining, wanted).ready).toBe(false);
    expect(serviceReadiness(service([d('PRIMARY', 'arn:td/patient-api:2', 3, 'COMPLETED')]), wanted)).toEqual({ ready: true, detail: '3/3 tasks of patient-api-green running on patient-api:2' });
  });

  it('with a PRIMARY deployment that names another task definition (moto keeps CreateService\'s), counts the service\'s tasks', () => {
    const moto = service([d('PRIMARY', 'arn:td/patient-api:1', 0, 'COMPLETED')]);
    expect(serviceReadiness(moto, wanted).ready).toBe(true);
    expect(serviceReadiness({ ...moto, runningCount: 2 }, wanted).ready).toBe(false);
    expect(serviceReadiness({ ...moto, taskDefinition: 'arn:td/patient-api:1' }, wanted)).toEqual({ ready: false, detail: 'patient-api-green runs patient-api:1, not patient-api:2' });
  });
});

describe('ecs workload', () => {
  let ecs: FakeEcs;
  let clock: ManualClock;
  let deps: EngineDeps;
  let store: ReturnType<typeof engineHarness>['store'];
  let router: FakeRouter;
  let dispose: () => void;
  /** A workload as a fresh process builds it (nothing remembered but what ECS holds). */
  let workload: (extra?: Partial<EcsWorkloadOptions>) => EcsWorkload;

  beforeEach(() => {
    router = new FakeRouter();
    ({ deps, clock, store, dispose } = engineHarness(router));
    ecs = FakeEcs.pair(clock.clock);
    workload = (extra = {}) =>
      new EcsWorkload({ cluster: 'patient', services: { v1: BLUE, v2: GREEN }, images: { v1: 'registry.example/patient-api:1.4.0', v2: V2 }, container: 'web', deadlineMs: 300_000, stable: 'v1', clock: clock.clock, ...extra }, ecs);
    deps.workload = workload();
    router.live = { weights: { v1: 100 }, generation: 0 };
  });
  afterEach(() => dispose());

  it('puts green on a copy of blue\'s task definition with web\'s image replaced, at blue\'s count, and waits for its deployment', async () => {
    const w = workload();
    const first = await w.scaleFor('v2', 5);
    expect(first).toEqual({ ready: false, detail: '0/3 tasks of patient-api-green running on patient-api:2 (deployment in progress)' });
    const td = ecs.definitions.get(ecs.services.get(GREEN)!.taskDefinition)!;
    expect(td.containerDefinitions!.map((c) => [c.name, c.image])).toEqual([['web', V2], ['log-router', 'registry.example/fluent-bit:3.1']]);
    expect([td.executionRoleArn, td.cpu, td.memory]).toEqual(['arn:aws:iam::123456789012:role/patient-api-execution', '512', '1024']);
    // The mark (the way back) before the service is touched; the serving side last.
    expect(ecs.log.filter((l) => !l.startsWith('Describe'))).toEqual([
      'RegisterTaskDefinition patient-api',
      `TagResource ${GREEN} ${STABLE_TAG}=false`,
      `TagResource ${BLUE} ${STABLE_TAG}=true`,
      `UpdateService ${GREEN} patient-api:2 ×3`,
    ]);

    ecs.log.length = 0;
    ecs.settle(GREEN);
    expect(await w.scaleFor('v2', 25)).toEqual({ ready: true, detail: '3/3 tasks of patient-api-green running on patient-api:2' });
    expect(ecs.log).toEqual(['DescribeServices patient']);
  });

  it('reuses the revision an interrupted attempt registered, and registers anew when blue\'s definition changed', async () => {
    // A driver registered the copy and died before UpdateService.
    await ecs.registerTaskDefinition(stableDefinition(V2));
    ecs.log.length = 0;
    await workload().scaleFor('v2', 5);
    expect(ecs.log.filter((l) => l.startsWith('Register'))).toEqual([]);
    expect(ecs.services.get(GREEN)!.taskDefinition).toMatch(/patient-api:2$/);

    const bigger = await ecs.registerTaskDefinition({ ...stableDefinition(), memory: '2048' });
    ecs.services.get(BLUE)!.taskDefinition = bigger.taskDefinitionArn!;
    await workload().scaleFor('v2', 5);
    expect(ecs.services.get(GREEN)!.taskDefinition).toMatch(/patient-api:4$/);
    expect(ecs.definitions.get(ecs.services.get(GREEN)!.taskDefinition)!.memory).toBe('2048');
  });

  it('answers stuck for a FAILED deployment and for one in progress past the deadline, with why its tasks stopped', async () => {
    const w = workload();
    await w.scaleFor('v2', 5);
    ecs.fail(GREEN, 'ECS deployment circuit breaker: tasks failed to start.');
    expect((await w.scaleFor('v2', 5)).stuck).toBe('the deployment of patient-api:2 to patient-api-green failed: ECS deployment circuit breaker: tasks failed to start.');

    ecs = FakeEcs.pair(clock.clock);
    const slow = workload();
    await slow.scaleFor('v2', 5);
    ecs.services.get(GREEN)!.deployments[0]!.failedTasks = 4;
    ecs.stopped.set(GREEN, ['CannotPullContainerError: registry.example/patient-api:1.5.0: not found']);
    const waiting = await slow.scaleFor('v2', 5);
    expect([waiting.ready, waiting.stuck]).toEqual([false, undefined]);
    expect(waiting.detail).toContain('4 failed: last stopped task: CannotPullContainerError');
    clock.now += 300_001;
    expect((await slow.scaleFor('v2', 5)).stuck).toBe('the deployment of patient-api:2 to patient-api-green has not completed in 5m: last stopped task: CannotPullContainerError: registry.example/patient-api:1.5.0: not found');
  });

  it('a canary through the engine: no weight before green is ready, blue scaled down only after the promotion', async () => {
    let s = await startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v2', plan: planCanary({ steps: [{ weight: 10, hold: 60_000 }, { weight: 100, hold: 60_000 }] }) }, deps);
    s = await tick(s, deps);
    expect([s.phase, s.waitingForTargets?.detail, router.writes]).toEqual(['pending', expect.stringContaining('deployment in progress'), []]);
    ecs.settle(GREEN);
    s = await tick(s, deps);
    expect(router.live.weights).toEqual({ v1: 90, v2: 10 });
    for (let i = 0; i < 3 && s.phase !== 'promoted'; i++) {
      clock.now += 60_000;
      s = await tick(s, deps);
    }
    expect(s.phase).toBe('promoted');
    expect([ecs.services.get(BLUE)!.desiredCount, ecs.services.get(GREEN)!.desiredCount]).toEqual([0, 3]);
    expect([ecs.tagsOf(BLUE), ecs.tagsOf(GREEN)]).toEqual(['false', 'true']);
  });

  it('`deploy abort` from another process scales green down and leaves blue; a FAILED deployment rolls back with no weight moved', async () => {
    let s = await startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v2', plan: planBlueGreen({ bake: 60_000 }) }, deps);
    s = await tick(s, deps);
    ecs.settle(GREEN);
    s = await tick(s, deps);
    expect(router.live.weights).toEqual({ v1: 0, v2: 100 });
    // A second process: a fresh workload, which knows only what the services' tags say.
    const abortDeps = { ...deps, workload: workload() };
    s = await rollback(s, 'abort', 'medication lists wrong', abortDeps);
    expect([s.phase, router.live.weights]).toEqual(['aborted', { v1: 100 }]);
    expect([ecs.services.get(BLUE)!.desiredCount, ecs.services.get(GREEN)!.desiredCount]).toEqual([3, 0]);

    ecs = FakeEcs.pair(clock.clock);
    deps.workload = workload();
    router.writes = [];
    s = await startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v2', plan: planBlueGreen() }, deps);
    s = await tick(s, deps);
    ecs.fail(GREEN, 'tasks failed to start');
    s = await tick(s, deps);
    expect([s.phase, s.outcome?.reason]).toEqual(['rolled_back', 'v2 cannot become ready: the deployment of patient-api:2 to patient-api-green failed: tasks failed to start']);
    expect(router.writes).toEqual([]);
    expect([ecs.services.get(BLUE)!.desiredCount, ecs.services.get(GREEN)!.desiredCount]).toEqual([3, 0]);
  });

  it('a promotion recorded by a driver that died is finished by another process: blue goes, green stays', async () => {
    let s = await startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v2', plan: planBlueGreen({ bake: 60_000 }) }, deps);
    s = await tick(s, deps);
    ecs.settle(GREEN);
    s = await tick(s, deps);
    clock.now += 60_000;
    // The driver marks green as serving, records the promotion's write, and dies before it.
    await deps.workload!.promote('v2');
    const recorded: RolloutState = { ...s, phase: 'progressing', intent: { to: 'promoted', step: s.step, weights: { v2: 100 }, at: new Date(clock.now).toISOString() } };
    await store.save(recorded);
    s = await commitIntent(recorded, { ...deps, workload: workload({ stable: 'v1' }) });
    expect(s.phase).toBe('promoted');
    expect([ecs.services.get(BLUE)!.desiredCount, ecs.services.get(GREEN)!.desiredCount]).toEqual([0, 3]);
  });

  it('never scales down a side it has not marked, nor the serving one; refuses a candidate on the serving side', async () => {
    await workload().retire();
    expect(ecs.log.filter((l) => l.startsWith('UpdateService'))).toEqual([]);
    ecs.services.get(BLUE)!.tags[STABLE_TAG] = 'false';
    await workload().retire();
    expect(ecs.services.get(BLUE)!.desiredCount).toBe(3);
    ecs.services.get(GREEN)!.tags[STABLE_TAG] = 'true';
    await expect(workload().scaleFor('v2', 5)).rejects.toThrow(`ECS service ${GREEN} of v2 is the serving side (tagged ${STABLE_TAG}=true)`);
  });

  it('restoreStable marks blue serving again and puts it back at the pair\'s count if it was scaled down', async () => {
    const w = workload();
    await w.scaleFor('v2', 100);
    ecs.settle(GREEN);
    await w.promote('v2');
    ecs.services.get(BLUE)!.desiredCount = 0;
    await workload().restoreStable('v1');
    expect([ecs.tagsOf(BLUE), ecs.tagsOf(GREEN), ecs.services.get(BLUE)!.desiredCount]).toEqual(['true', 'false', 3]);
  });

  it('preflight: exit 2 naming a missing cluster, a missing service, a container that is not there, an untaggable service, one behind no target group', async () => {
    await expect(workload({ cluster: 'records' }).preflight()).rejects.toThrow('ECS cluster records not found');
    await expect(workload({ services: { v1: BLUE, v2: 'patient-api-gren' } }).preflight()).rejects.toThrow('ECS service patient-api-gren (version v2) not found in cluster patient');
    await expect(workload({ container: 'api' }).preflight()).rejects.toThrow('task definition patient-api:1 of ECS service patient-api-blue has no container named api (it has web, log-router)');
    ecs.services.get(BLUE)!.arn = 'arn:aws:ecs:eu-west-1:123456789012:service/patient-api-blue';
    await expect(workload().preflight()).rejects.toThrow('ECS service patient-api-blue (version v1) has an ARN of the old format (arn:aws:ecs:eu-west-1:123456789012:service/patient-api-blue), which ECS cannot tag');
    ecs.services.get(BLUE)!.arn = 'arn:aws:ecs:eu-west-1:123456789012:service/patient/patient-api-blue';
    ecs.services.get(GREEN)!.targetGroups = [];
    const error = await workload().preflight().catch((e: unknown) => e);
    expect([error instanceof UsageError, (error as Error).message]).toEqual([true, 'ECS service patient-api-green (version v2) is behind no load balancer target group']);
    expect(ecs.log.filter((l) => !l.startsWith('Describe'))).toEqual([]);
  });

  it('a registration refused for want of iam:PassRole names the roles to list under passRoles', async () => {
    ecs.failNext = { operation: 'RegisterTaskDefinition', error: new EcsApiError('AccessDeniedException', 'patient-api', 'RegisterTaskDefinition', 'not authorized to perform: iam:PassRole') };
    const error = (await workload().scaleFor('v2', 5).catch((e: unknown) => e)) as UsageError;
    expect(error).toBeInstanceOf(UsageError);
    expect(error.hint).toBe("registering patient-api:1's copy passes arn:aws:iam::123456789012:role/patient-api-execution to ECS: list it under workload.passRoles and apply `deploy iam-policy` again");
    expect(ecs.log.filter((l) => /^(Tag|Update)/.test(l))).toEqual([]);
  });
});
