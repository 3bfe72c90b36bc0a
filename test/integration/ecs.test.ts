/**
 * The `ecs` workload with the `alb` router on moto's server, driven through the real AWS SDK:
 * per test a load balancer with a target group per version (createAlb) and an ECS cluster with a
 * service per target group (createEcs), then rollouts through the CLI and the engine, with the
 * listener, the services and their task definitions read back through the SDK.
 *
 * What moto does not do, and how these tests stand with it (nothing is injected here; the unit
 * tests in test/unit/ecs-workload.test.ts answer at the client boundary for these cases):
 * - UpdateService starts no deployment: the PRIMARY deployment keeps the rolloutState,
 *   taskDefinition and counts it had at CreateService, and the service's runningCount becomes
 *   its desiredCount at once. A candidate is therefore ready on the first look — no waiting,
 *   no IN_PROGRESS, no FAILED rollout, no stopped tasks — and the ALB's target health (moto
 *   reports every registered target healthy) gates the shift as on AWS.
 * - No tasks run and none is registered in a target group: the ALB fixture registers one target
 *   per group itself.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { ECSClient } from '@aws-sdk/client-ecs';
import { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startRollout, tick, type EngineDeps, type GateRunner } from '../../src/engine/machine.js';
import { validateState, type RolloutState } from '../../src/engine/state.js';
import type { GateResult } from '../../src/gates/types.js';
import { SdkAlbClient, type SendFn } from '../../src/routers/alb/client.js';
import { AlbRouter } from '../../src/routers/alb/router.js';
import { startMoto, type MotoProcess } from '../../src/sandbox/moto-process.js';
import { LocalStateStore } from '../../src/state/local/store.js';
import { SdkEcsClient } from '../../src/workloads/ecs/client.js';
import { EcsWorkload, STABLE_TAG } from '../../src/workloads/ecs/workload.js';
import { planCanary } from '../../strategies/canary.js';
import { createAlb, REGION, useEmulatorCredentials, type AlbFixture } from '../helpers/alb.js';
import { runCli, type CliRun } from '../helpers/cli.js';
import { createEcs, STABLE_IMAGE, type EcsFixture } from '../helpers/ecs.js';
import { ManualClock } from '../helpers/fakes.js';

const V2_IMAGE = 'registry.example/patient-api:1.5.0';

let moto: MotoProcess;
let alb: AlbFixture;
let ecs: EcsFixture;
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
  ecs = await createEcs(moto.url, alb.targetGroups);
  dir = mkdtempSync(path.join(tmpdir(), 'cutover-ecs-'));
  return () => rmSync(dir, { recursive: true, force: true });
});

/** deploy.yaml for the pair on the emulator; `workload` replaces the ecs section's cluster, container or v1 service. */
function writeConfig(strategy: string, workload: { cluster?: string; container?: string; blue?: string } = {}): string {
  const file = path.join(dir, 'deploy.yaml');
  writeFileSync(
    file,
    `service: patient-api
stable: v1
versions:
  v1: { image: ${STABLE_IMAGE} }
  v2: { image: ${V2_IMAGE} }
aws:
  region: ${REGION}
  endpointUrl: ${moto.url}
router:
  type: alb
  listenerArn: ${alb.listenerArn}
  targetGroups:
    v1: ${alb.targetGroups.v1}
    v2: ${alb.targetGroups.v2}
workload:
  type: ecs
  cluster: ${workload.cluster ?? ecs.cluster}
  container: ${workload.container ?? 'web'}
  services:
    v1: ${workload.blue ?? ecs.services.v1}
    v2: ${ecs.services.v2}
state:
  type: local
  dir: ${path.join(dir, 'state')}
strategy:
${strategy}`,
  );
  return file;
}

/** What the listener and both services look like at one moment. */
interface Observation {
  weights: Record<string, number>;
  blue: number;
  green: number;
  /** The image green's web container runs. */
  greenImage: string;
}

async function observe(): Promise<Observation> {
  const [weights, blue, green, greenTd] = await Promise.all([alb.listenerWeights(), ecs.service(ecs.services.v1!), ecs.service(ecs.services.v2!), ecs.taskDefinitionOf(ecs.services.v2!)]);
  return { weights, blue: blue.desiredCount!, green: green.desiredCount!, greenImage: greenTd.containerDefinitions!.find((c) => c.name === 'web')!.image! };
}

/** Every distinct state seen while `run` goes on, in order. */
async function watch(run: Promise<CliRun>): Promise<{ run: CliRun; seen: Observation[] }> {
  let done = false;
  const finished = run.finally(() => {
    done = true;
  });
  const seen: Observation[] = [];
  const note = (o: Observation) => {
    if (JSON.stringify(seen.at(-1)) !== JSON.stringify(o)) seen.push(o);
  };
  while (!done) {
    note(await observe());
    await delay(5);
  }
  note(await observe());
  return { run: await finished, seen };
}

const events = (run: CliRun) => run.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

async function audit(file: string): Promise<string[]> {
  const history = await runCli(['history', '-f', file, '-o', 'json']);
  return events(history).filter((e) => e.event === 'audit').map((e) => e.action as string);
}

describe('ecs workload with the alb router on moto', () => {
  it('a canary through the CLI: green gets the candidate task definition before any weight, the listener follows each step, blue is scaled down after the last', async () => {
    const file = writeConfig('  canary:\n    checkInterval: 50ms\n    steps:\n      - { weight: 10, hold: 300ms }\n      - { weight: 50, hold: 300ms }\n      - { weight: 100, hold: 300ms }\n');
    const started = Date.now();
    const { run, seen } = await watch(runCli(['promote', '--to', 'v2', '-f', file, '-o', 'json']));
    expect(run.code, run.stderr).toBe(0);
    const steps = events(run).filter((e) => e.event === 'step');
    expect(steps.map((e) => e.weights)).toEqual([{ v1: 90, v2: 10 }, { v1: 50, v2: 50 }, { v1: 0, v2: 100 }]);

    // Weight reached green only once it ran the candidate's image at blue's count.
    expect(seen[0]).toEqual({ weights: { v1: 1 }, blue: 2, green: 0, greenImage: STABLE_IMAGE });
    for (const o of seen.filter((o) => (o.weights.v2 ?? 0) > 0)) expect([o.green, o.greenImage]).toEqual([2, V2_IMAGE]);
    const shares = [...new Set(seen.map((o) => JSON.stringify(o.weights)))].map((w) => JSON.parse(w));
    expect(shares).toEqual([{ v1: 1 }, { v1: 90, v2: 10 }, { v1: 50, v2: 50 }, { v1: 0, v2: 100 }]);
    // Blue kept its tasks while it had traffic, and until the last step's hold was over.
    for (const o of seen.filter((o) => (o.weights.v1 ?? 0) > 0)) expect(o.blue).toBe(2);
    expect(seen.some((o) => o.weights.v2 === 100 && o.blue === 2)).toBe(true);
    expect(seen.at(-1)).toEqual({ weights: { v1: 0, v2: 100 }, blue: 0, green: 2, greenImage: V2_IMAGE });

    // The candidate's revision: the stable one with only web's image changed.
    const td = await ecs.taskDefinitionOf(ecs.services.v2!);
    const stableTd = (await ecs.taskDefinitionOf(ecs.services.v1!));
    expect(td.taskDefinitionArn).toMatch(/task-definition\/patient-api:2$/);
    expect(td.containerDefinitions!.map((c) => [c.name, c.image])).toEqual([['web', V2_IMAGE], ['log-router', 'registry.example/fluent-bit:3.1']]);
    expect({ ...td.containerDefinitions![0], image: STABLE_IMAGE }).toEqual(stableTd.containerDefinitions![0]);
    expect([td.executionRoleArn, td.cpu, td.memory, td.networkMode]).toEqual([stableTd.executionRoleArn, '512', '1024', 'awsvpc']);
    expect(await ecs.revisions()).toHaveLength(2);
    const tags = async (name: string) => Object.fromEntries(((await ecs.service(name)).tags ?? []).map((t) => [t.key, t.value]));
    expect([(await tags(ecs.services.v1!))[STABLE_TAG], (await tags(ecs.services.v2!))[STABLE_TAG]]).toEqual(['false', 'true']);
    expect((await audit(file)).slice(-2)).toEqual(['rollout.promoted', 'workload.retired']);
    // Time each move took beyond the hold before it: the first scale-up and shift, each later
    // step, and the promotion with blue's scale-down.
    const at = (e: Record<string, unknown>) => Date.parse(e.at as string);
    const [begin, done] = [events(run).find((e) => e.event === 'started')!, events(run).find((e) => e.event === 'done')!];
    const moves = [at(steps[0]!) - at(begin), ...steps.slice(1).map((e, i) => at(e) - at(steps[i]!) - 300), at(done) - at(steps.at(-1)!) - 300];
    console.info(`ecs canary through the CLI on moto: ${Date.now() - started} ms in all; beyond the holds (50 ms check interval): first step ${moves[0]} ms, next steps ${moves.slice(1, -1).join(' and ')} ms, promotion and blue's scale-down ${moves.at(-1)} ms`);
  });

  it('a blue/green with a bake through the CLI: all at once to green, blue kept during the bake, scaled down after it', async () => {
    const file = writeConfig('  blueGreen:\n    bake: 600ms\n    healthTimeout: 1m\n    checkInterval: 50ms\n');
    const { run, seen } = await watch(runCli(['promote', '--to', 'v2', '-f', file, '-o', 'json']));
    expect(run.code, run.stderr).toBe(0);
    expect(events(run).filter((e) => e.event === 'step').map((e) => e.weights)).toEqual([{ v1: 0, v2: 100 }]);
    const baking = seen.filter((o) => o.weights.v2 === 100 && o.blue === 2);
    expect(baking.length).toBeGreaterThan(0);
    expect(baking.every((o) => o.green === 2 && o.greenImage === V2_IMAGE)).toBe(true);
    expect(seen.map((o) => JSON.stringify(o.weights)).filter((w, i, all) => w !== all[i - 1])).toEqual([JSON.stringify({ v1: 1 }), JSON.stringify({ v1: 0, v2: 100 })]);
    expect(seen.at(-1)).toEqual({ weights: { v1: 0, v2: 100 }, blue: 0, green: 2, greenImage: V2_IMAGE });
    // The next release goes the other way: blue becomes the candidate's side.
    expect((await ecs.service(ecs.services.v1!)).tags).toContainEqual({ key: STABLE_TAG, value: 'false' });
  });

  it('`deploy abort` during the hold: traffic back to blue first, then green scaled down; blue untouched', async () => {
    const file = writeConfig('  canary:\n    checkInterval: 50ms\n    steps:\n      - { weight: 25, hold: 60s }\n      - { weight: 100 }\n');
    const driver = watch(runCli(['promote', '--to', 'v2', '-f', file, '-o', 'json']));
    const deadline = Date.now() + 20_000;
    while ((await alb.listenerWeights()).v2 !== 25) {
      if (Date.now() > deadline) throw new Error('the canary never reached 25%');
      await delay(20);
    }
    const abort = await runCli(['abort', '-f', file, '--reason', 'medication lists wrong on green']);
    expect(abort.code, abort.stderr).toBe(0);
    const { run, seen } = await driver;
    expect(run.code).toBe(3);
    // Green was never at zero while it had weight, and blue never lost a task.
    for (const o of seen) {
      if (o.green === 0) expect(o.weights.v2 ?? 0).toBe(0);
      expect(o.blue).toBe(2);
    }
    expect(seen.at(-1)).toEqual({ weights: { v1: 100 }, blue: 2, green: 0, greenImage: V2_IMAGE });
    expect((await audit(file)).slice(-2)).toEqual(['rollout.aborted', 'workload.retired']);
  });

  it('a failed gate rolls back in one listener write, then scales green down: the calls in order', async () => {
    const log: string[] = [];
    const { deps, clock } = engineOnMoto(log, {
      async evaluate(state): Promise<GateResult[]> {
        const verdict = state.step === 1 ? 'failed' : 'passed';
        return [{ gate: 'errors', type: 'errorRate', verdict, reason: verdict === 'failed' ? 'lab-result errors 3% over 0.5%' : 'within', queries: [], at: new Date().toISOString() }];
      },
    });
    const plan = planCanary({ steps: [{ weight: 5, hold: 60_000 }, { weight: 50, hold: 60_000 }] }, ['errors']);
    let s = await startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v2', plan }, deps);
    const perStep: string[] = [];
    let failedAt = 0;
    while (s.phase === 'pending' || s.phase === 'holding') {
      const before = log.length;
      const t0 = performance.now();
      const calls = log.length;
      s = await tick(s, deps);
      if (s.phase === 'holding' && s.holdStartedAt === new Date(clock.now).toISOString()) perStep.push(`${(performance.now() - t0).toFixed(0)} ms, ${log.length - calls} calls`);
      if (s.phase === 'rolled_back') failedAt = before;
      clock.now += 60_000;
    }
    expect([s.phase, s.outcome?.reason]).toEqual(['rolled_back', 'gate errors failed: lab-result errors 3% over 0.5%']);
    const writes = log.slice(failedAt).filter((op) => /^(Modify|Update|Tag|Register)/.test(op));
    expect(writes).toEqual(['ModifyListener', 'UpdateService patient-api-green desiredCount=0']);
    expect(await alb.listenerWeights()).toEqual({ v1: 100 });
    expect((await ecs.service(ecs.services.v2!)).desiredCount).toBe(0);
    expect((await ecs.service(ecs.services.v1!)).desiredCount).toBe(2);
    console.info(`ecs + alb step on moto (one engine tick: the scale-up, target health, listener write and read-back): ${perStep.join('; ')}`);
  });
});

describe('ecs workload: bad input changes nothing', () => {
  /** Run `deploy promote` and check it exited 2 naming `what`, with the listener and both services as they were. */
  async function refused(file: string, what: RegExp): Promise<void> {
    const before = await observe();
    const revisions = await ecs.revisions();
    const run = await runCli(['promote', '--to', 'v2', '-f', file]);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(what);
    expect(await observe()).toEqual(before);
    expect(await ecs.revisions()).toEqual(revisions);
    for (const name of Object.values(ecs.services)) expect((await ecs.service(name)).tags ?? []).toEqual([]);
    const status = await runCli(['status', '-f', file, '-o', 'json']);
    expect(status.stdout + status.stderr).not.toMatch(/"phase":"(holding|pending|progressing)"/);
  }

  it('exits 2 naming a cluster that does not exist', async () => {
    await refused(writeConfig('  canary:\n    steps: [{ weight: 10, hold: 1s }]\n', { cluster: 'patient-records' }), /ECS cluster patient-records not found/);
  });

  it('exits 2 naming a service that does not exist', async () => {
    await refused(writeConfig('  canary:\n    steps: [{ weight: 10, hold: 1s }]\n', { blue: 'patient-api-bleu' }), /ECS service patient-api-bleu \(version v1\) not found in cluster patient/);
  });

  it('exits 2 naming a container the task definition does not have', async () => {
    await refused(writeConfig('  canary:\n    steps: [{ weight: 10, hold: 1s }]\n', { container: 'api' }), /task definition patient-api:1 of ECS service patient-api-blue has no container named api \(it has web, log-router\)/);
  });
});

/** The engine with the alb router and the ecs workload on moto, every write logged in one list. */
function engineOnMoto(log: string[], gates?: GateRunner) {
  const elb = new ElasticLoadBalancingV2Client({ region: REGION, endpoint: moto.url, maxAttempts: 1 });
  const ecsSdk = new ECSClient({ region: REGION, endpoint: moto.url, maxAttempts: 1 });
  const logged = (sdk: { send: (c: never) => Promise<unknown> }): SendFn => async (command) => {
    const operation = command.constructor.name.replace(/Command$/, '');
    const input = command.input as { service?: string; desiredCount?: number };
    log.push(operation === 'UpdateService' ? `UpdateService ${input.service} desiredCount=${input.desiredCount}` : operation);
    return sdk.send(command as never);
  };
  const router = new AlbRouter({ listenerArn: alb.listenerArn, targetGroups: alb.targetGroups, orgHeader: 'X-Org-Id', maxRules: 100 }, new SdkAlbClient({ region: REGION, endpointUrl: moto.url }, logged(elb)));
  const clock = new ManualClock();
  const workload = new EcsWorkload(
    { cluster: ecs.cluster, services: ecs.services, images: { v1: STABLE_IMAGE, v2: V2_IMAGE }, container: 'web', deadlineMs: 300_000, stable: 'v1', clock: clock.clock },
    new SdkEcsClient({ region: REGION, endpointUrl: moto.url }, logged(ecsSdk)),
  );
  const store = new LocalStateStore<RolloutState>(path.join(dir, 'state'), { clock: clock.clock, validate: validateState });
  const deps: EngineDeps = { router, workload, store, clock: clock.clock, emit: () => undefined, actor: { owner: 'ci@ward', pid: 1, host: 'ward' }, ...(gates ? { gates } : {}) };
  return { deps, clock, store };
}
