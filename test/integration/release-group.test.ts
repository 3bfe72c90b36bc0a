/**
 * Release groups through the CLI on the real control plane: the seed's namespace (an API of 4
 * replicas, three consumers of 2, 1 and 1, a worker and a per-minute CronJob) released as one
 * rollout. What the tests read back — replicas per version, templates, the order of writes — comes
 * from the API server with admin calls and a watch, never through the product's client.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { startPrometheus, type PrometheusProcess } from '../../src/sandbox/prometheus-process.js';
import { startSampleConsumer, type SampleConsumer } from '../../src/sandbox/sample-consumer.js';
import { testCluster, type TestCluster } from '../helpers/cluster.js';
import { DEPLOY, followEvents, jsonLines, waitFor } from '../helpers/sandbox.js';
import { mulberry32 } from '../helpers/crash.js';

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await testCluster();
}, 240_000);

const IMAGES: Record<string, string> = { v1: 'registry.example/pat-dtc-be:1.0', v2: 'registry.example/pat-dtc-be:2.0' };
const versionOfImage = (image: string | undefined) => Object.entries(IMAGES).find(([, i]) => i === image)?.[0] ?? `? ${image}`;
const API = 'pat--dtc--be--app--prod';
const CRON = 'pat--dtc--be--cron--prod';

/** The seed's Deployments: member name, role, Deployment, replicas. */
const DEPLOYMENTS = [
  { name: 'api', role: 'traffic', deployment: API, replicas: 4 },
  { name: 'lis-testresult', role: 'consumer', deployment: 'pat--dtc--be--consumer-lis-testresult--prod', replicas: 2 },
  { name: 'customer', role: 'consumer', deployment: 'pat--dtc--be--consumer-customer--prod', replicas: 1 },
  { name: 'homekit-register', role: 'consumer', deployment: 'pat--dtc--be--consumer-homekit-register--prod', replicas: 1 },
  { name: 'worker', role: 'worker', deployment: 'pat--dtc--be--wrk--default--prod', replicas: 1 },
] as const;
/** Promotion order: the CronJob, the worker, the consumers, then the API; a rollback goes the other way. */
const ORDER = ['cron', 'worker', 'lis-testresult', 'customer', 'homekit-register', 'api'];
const WEIGHTS = [1, 5, 25, 50, 100];
/** Desired replicas per member at each step of the default ladder, from the first: [candidate, stable]. */
const AT_STEP: Record<string, [number, number][]> = {
  api: [[1, 4], [1, 4], [1, 4], [2, 4], [4, 4]],
  'lis-testresult': [[0, 2], [0, 2], [1, 1], [1, 1], [2, 0]],
  customer: [[0, 1], [0, 1], [1, 1], [1, 1], [1, 0]],
  'homekit-register': [[0, 1], [0, 1], [1, 1], [1, 1], [1, 0]],
  worker: [[0, 1], [0, 1], [1, 1], [1, 1], [1, 0]],
};
const sizeOf = (member: string) => DEPLOYMENTS.find((d) => d.name === member)!.replicas;
const toleration = [{ key: 'kwok.x-k8s.io/node', operator: 'Exists', effect: 'NoSchedule' }];

interface Dep {
  metadata: { resourceVersion: string; annotations?: Record<string, string> };
  spec: { replicas?: number; template: { spec: { containers: { image: string }[] } } };
  status?: { readyReplicas?: number };
}
interface Cron {
  metadata: { resourceVersion: string; uid: string };
  spec: { jobTemplate: { spec: { template: { spec: { containers: { image: string }[] } } } } };
}
interface Route {
  spec: { rules: { backendRefs?: { name: string; weight?: number }[] }[] };
}
interface Job {
  metadata: { name: string; ownerReferences?: { uid: string }[] };
  spec: { template: { spec: { containers: { image: string }[] } } };
}

/** What one side of a member runs: its version and replicas. */
interface Side {
  version: string;
  desired: number;
  ready: number;
}

/** The seed's namespace with its objects, and a deploy.yaml for it. */
async function seedNamespace(opts: { gates?: string; steps?: string; cron?: string; members?: string; versions?: string; order?: string; checkInterval?: string } = {}) {
  const ns = await cluster.namespace('group');
  for (const d of DEPLOYMENTS) {
    const app = d.deployment.replace('pat--dtc--be--', '').replace('--prod', '');
    await cluster.api('POST', `/apis/apps/v1/namespaces/${ns}/deployments`, {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: d.deployment, labels: { app } },
      spec: {
        replicas: d.replicas,
        selector: { matchLabels: { app } },
        template: { metadata: { labels: { app } }, spec: { containers: [{ name: 'app', image: IMAGES.v1 }], tolerations: toleration } },
      },
    });
  }
  await cluster.api('POST', `/api/v1/namespaces/${ns}/services`, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: API },
    spec: { selector: { app: 'app' }, ports: [{ port: 80, targetPort: 8080 }] },
  });
  await cluster.api('POST', `/apis/batch/v1/namespaces/${ns}/cronjobs`, {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name: CRON },
    spec: {
      schedule: '* * * * *',
      concurrencyPolicy: 'Forbid',
      successfulJobsHistoryLimit: 3,
      jobTemplate: { spec: { backoffLimit: 0, template: { spec: { restartPolicy: 'Never', containers: [{ name: 'cron', image: IMAGES.v1 }], tolerations: toleration } } } },
    },
  });
  // As in production: every Deployment rolled out before a release begins.
  await waitFor('the seed’s Deployments to be ready', async () => {
    const { body } = await cluster.api<{ items: (Dep & { metadata: { annotations?: Record<string, string> } })[] }>('GET', `/apis/apps/v1/namespaces/${ns}/deployments`);
    return body.items.length === DEPLOYMENTS.length && body.items.every((d) => d.status?.readyReplicas === d.spec.replicas && d.metadata.annotations?.['deployment.kubernetes.io/revision']);
  }, 60_000);
  const dir = mkdtempSync(join(tmpdir(), 'cutover-group-'));
  const file = join(dir, 'deploy.yaml');
  const memberYaml =
    opts.members ??
    `${DEPLOYMENTS.map((d) => `    - { name: ${d.name}, role: ${d.role}, deployment: ${d.deployment} }`).join('\n')}\n    - { name: cron, role: cron, cronJob: ${CRON}${opts.cron ?? ''} }\n`;
  writeFileSync(
    file,
    `service: pat-dtc-be
stable: v1
versions:
${opts.versions ?? `  v1: { image: "${IMAGES.v1}" }\n  v2: { image: "${IMAGES.v2}" }\n`}kubernetes:
  kubeconfig: ${cluster.kubeconfig}
  namespace: ${ns}
workload:
  type: group
  progressDeadline: 60s
  order: ${opts.order ?? `[${ORDER.join(', ')}]`}
  members:
${memberYaml}router:
  type: gateway-api
  httpRoute: ${API}
  service: ${API}
  parentRefs: [{ name: public-gateway }]
state:
  type: kubernetes
  lease: 2s
${opts.gates ?? ''}strategy:
  canary:
    checkInterval: ${opts.checkInterval ?? '200ms'}
    steps:
${opts.steps ?? WEIGHTS.map((w) => `      - { weight: ${w}, hold: 1500ms }`).join('\n')}
`,
  );
  const deploy = (args: string[], env: Record<string, string> = {}): ResultPromise<{ reject: false }> =>
    execa(DEPLOY, [...args, '-f', file], { reject: false, env: { CI: 'true', ...env }, cwd: dir });
  const get = async <T>(path: string) => (await cluster.api<T>('GET', path, undefined, { allow: [404] })).body;
  const deployment = (name: string) => get<Dep & { kind?: string; code?: number }>(`/apis/apps/v1/namespaces/${ns}/deployments/${name}`);
  const cronJob = () => get<Cron>(`/apis/batch/v1/namespaces/${ns}/cronjobs/${CRON}`);
  const side = (d: (Dep & { code?: number }) | undefined): Side | undefined =>
    d && d.code !== 404 ? { version: versionOfImage(d.spec.template.spec.containers[0]!.image), desired: d.spec.replicas ?? 0, ready: d.status?.readyReplicas ?? 0 } : undefined;
  /** Every member as the API server has it: each Deployment member's stable and canary side, and the CronJob's version. */
  const members = async () => {
    const read = await Promise.all(DEPLOYMENTS.map(async (d) => [d.name, { stable: side(await deployment(d.deployment))!, canary: side(await deployment(`${d.deployment}-canary`)) }] as const));
    const cron = await cronJob();
    return { ...Object.fromEntries(read), cron: versionOfImage(cron.spec.jobTemplate.spec.template.spec.containers[0]!.image) } as Record<string, { stable: Side; canary: Side | undefined }> & { cron: string };
  };
  /**
   * Every object of the namespace with what a writer would change: its spec's generation, labels
   * and annotations (controllers keep updating status, so resourceVersions move on their own).
   */
  const snapshot = async () => {
    const kinds = ['/apis/apps/v1/namespaces/NS/deployments', '/apis/batch/v1/namespaces/NS/cronjobs', '/api/v1/namespaces/NS/services', '/api/v1/namespaces/NS/configmaps', '/apis/coordination.k8s.io/v1/namespaces/NS/leases', '/apis/gateway.networking.k8s.io/v1/namespaces/NS/httproutes'];
    type Meta = { metadata: { name: string; generation?: number; labels?: unknown; annotations?: unknown } };
    const lists = await Promise.all(kinds.map((k) => get<{ items: Meta[] }>(k.replace('NS', ns))));
    return lists.flatMap((l, i) => l.items.map((o) => `${kinds[i]!.split('/').at(-1)}/${o.metadata.name}@${o.metadata.generation ?? ''} ${JSON.stringify([o.metadata.labels, o.metadata.annotations])}`)).sort();
  };
  const history = async () => jsonLines((await deploy(['history', '-o', 'json'])).stdout);
  return { ns, dir, file, deploy, deployment, cronJob, members, snapshot, history };
}

/** Admin credentials from the admin kubeconfig, for a watch (a stream the helper's `api` does not read). */
function adminCredentials(): { token: string; ca: Buffer } {
  const text = readFileSync(cluster.kubeconfig, 'utf8');
  return { token: /token: (\S+)/.exec(text)![1]!, ca: readFileSync(/certificate-authority: (\S+)/.exec(text)![1]!) };
}

/** One change of a watched object, in the API server's order (resourceVersion). */
interface Change {
  rv: number;
  at: number;
  kind: 'deployment' | 'cronjob' | 'httproute';
  name: string;
  version?: string;
  replicas?: number;
  /** The HTTPRoute's weight on the canary Service. */
  canaryWeight?: number;
}

/** Watch the namespace's Deployments and CronJobs from now on; `changes` lists every write as it arrives. */
async function watchWrites(ns: string): Promise<{ changes: Change[]; stop: () => void }> {
  const { request } = await import('node:https');
  const { token, ca } = adminCredentials();
  const changes: Change[] = [];
  const requests: { destroy(): void }[] = [];
  const paths = [
    ['deployment', `/apis/apps/v1/namespaces/${ns}/deployments`],
    ['cronjob', `/apis/batch/v1/namespaces/${ns}/cronjobs`],
    ['httproute', `/apis/gateway.networking.k8s.io/v1/namespaces/${ns}/httproutes`],
  ] as const;
  for (const [kind, path] of paths) {
    const list = (await cluster.api<{ metadata: { resourceVersion: string } }>('GET', path)).body;
    await new Promise<void>((ready, fail) => {
      const req = request(`${cluster.server}${path}?watch=1&resourceVersion=${list.metadata.resourceVersion}`, { ca, headers: { authorization: `Bearer ${token}` } }, (res) => {
        let buffer = '';
        res.on('data', (chunk: Buffer) => {
          buffer += chunk.toString();
          let nl;
          while ((nl = buffer.indexOf('\n')) >= 0) {
            const line = buffer.slice(0, nl);
            buffer = buffer.slice(nl + 1);
            if (!line.trim()) continue;
            const { type, object } = JSON.parse(line) as { type: string; object: Dep & Cron & Route & { metadata: { name: string } } };
            if (type !== 'ADDED' && type !== 'MODIFIED') continue;
            if (kind === 'httproute') {
              const refs = object.spec.rules.at(-1)?.backendRefs ?? [];
              changes.push({ rv: Number(object.metadata.resourceVersion), at: Date.now(), kind, name: object.metadata.name, canaryWeight: refs.find((b) => b.name === `${API}-canary`)?.weight ?? 0 });
              continue;
            }
            const template = kind === 'deployment' ? object.spec.template : object.spec.jobTemplate.spec.template;
            changes.push({
              rv: Number(object.metadata.resourceVersion),
              at: Date.now(),
              kind,
              name: object.metadata.name,
              version: versionOfImage(template.spec.containers[0]!.image),
              ...(kind === 'deployment' ? { replicas: (object as Dep).spec.replicas ?? 0 } : {}),
            });
          }
        });
        ready();
      });
      req.on('error', fail);
      req.end();
      requests.push(req);
    });
  }
  return { changes, stop: () => requests.forEach((r) => r.destroy()) };
}

/** Each member's object: its stable Deployment, or the CronJob. */
const objectOf = (member: string) => (member === 'cron' ? CRON : DEPLOYMENTS.find((d) => d.name === member)!.deployment);

/** The order in which members first got `version` into their (stable) template, by resourceVersion. */
function switchOrder(changes: Change[], version: string, afterRv = 0): string[] {
  const first = ORDER.map((m) => [m, changes.find((c) => c.rv > afterRv && c.name === objectOf(m) && c.version === version)?.rv] as const);
  return first.filter(([, rv]) => rv !== undefined).sort((a, b) => a[1]! - b[1]!).map(([m]) => m);
}

describe('a release group on Kubernetes', () => {
  it('releases the seed’s namespace as one group with the Role deploy rbac prints: every member at its share per step, promoted in order, the CronJob on the candidate', async () => {
    const p = await seedNamespace();
    const printed = await p.deploy(['rbac', '-o', 'json']);
    expect(printed.exitCode, printed.stderr).toBe(0);
    const [role] = jsonLines(printed.stdout) as [{ rules: { resources: string[]; verbs: string[]; resourceNames?: string[] }[] }];
    expect(role.rules).toEqual(
      expect.arrayContaining([
        { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'update'], resourceNames: DEPLOYMENTS.flatMap((d) => [d.deployment, `${d.deployment}-canary`]) },
        { apiGroups: ['batch'], resources: ['cronjobs'], verbs: ['get', 'update'], resourceNames: [CRON] },
        { apiGroups: ['batch'], resources: ['jobs'], verbs: ['get', 'list'] },
      ]),
    );
    const restricted = await cluster.restrictedKubeconfig(p.ns, 'cutover', role.rules);
    const watch = await watchWrites(p.ns);
    const started = Date.now();
    const run = p.deploy(['promote', '--to', 'v2', '-o', 'json', '--kubeconfig', restricted]);
    const events = followEvents(run);
    const seen: { step: number; members: Awaited<ReturnType<typeof p.members>> }[] = [];
    let finished = false;
    void run.then(() => (finished = true));
    const watcher = (async () => {
      while (!finished) {
        const steps = events().filter((e) => e.event === 'step');
        if (steps.length > seen.length) seen.push({ step: steps.at(-1)!.step as number, members: await p.members() });
        else await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const result = await run;
    await watcher;
    watch.stop();
    expect(result.exitCode, result.stderr).toBe(0);

    // At each step, every member's replicas per version as the API server has them.
    expect(seen.map((s) => s.step)).toEqual([1, 2, 3, 4, 5]);
    for (const { step, members } of seen) {
      for (const d of DEPLOYMENTS) {
        const [candidate, stable] = AT_STEP[d.name]![step - 1]!;
        const m = members[d.name]!;
        expect({ step, member: d.name, stable: m.stable, canary: m.canary }).toEqual({
          step,
          member: d.name,
          stable: { version: 'v1', desired: stable, ready: stable },
          canary: { version: 'v2', desired: candidate, ready: candidate },
        });
      }
      expect([step, members.cron]).toEqual([step, 'v1']);
    }

    // Promotion: member by member in the group's order, each on the candidate before the next moved.
    const promotionStart = watch.changes.find((c) => c.name === `${API}-canary` && c.replicas === 4)!.rv;
    expect(switchOrder(watch.changes, 'v2', promotionStart)).toEqual(ORDER);
    const after = await p.members();
    for (const d of DEPLOYMENTS) {
      expect([d.name, after[d.name]!.stable, after[d.name]!.canary?.desired]).toEqual([d.name, { version: 'v2', desired: d.replicas, ready: d.replicas }, 0]);
    }
    expect(after.cron).toBe('v2');

    // deploy status shows every member (once the canaries' last pods are gone).
    let status: { phase: string; members: { name: string; role: string; versions: unknown[]; detail?: string }[] } | undefined;
    const wanted = [...DEPLOYMENTS.map((d) => [d.name, d.role, [{ version: 'v2', ready: d.replicas, desired: d.replicas }]]), ['cron', 'cron', []]];
    await waitFor('deploy status to show every member on v2', async () => {
      status = jsonLines((await p.deploy(['status', '-o', 'json'])).stdout)[0] as typeof status;
      return JSON.stringify(status!.members.map((m) => [m.name, m.role, m.versions])) === JSON.stringify(wanted);
    }, 60_000);
    expect(status!.phase).toBe('promoted');
    expect(status!.members.at(-1)!.detail).toMatch(new RegExp(`^CronJob ${CRON} starts v2 \\(since \\d\\d:\\d\\d:\\d\\d\\); Jobs: `));
    const actions = (await p.history()).filter((e) => e.event === 'audit').map((e) => e.action);
    expect(actions.filter((a) => a === 'step.entered')).toHaveLength(5);
    expect(actions.slice(-3)).toEqual(['promotion.started', 'rollout.promoted', 'workload.retired']);

    // Figures: how long each step took to ready every member, and the promotion.
    const stepAt = events().filter((e) => e.event === 'step').map((e) => Date.parse(e.at as string));
    const done = Date.parse(events().find((e) => e.event === 'done')!.at as string);
    const holds = [1500, 1500, 1500, 1500, 1500];
    const readying = stepAt.slice(1).map((t, i) => t - stepAt[i]! - holds[i]!);
    console.log(`release group figures: first step live ${stepAt[0]! - started} ms after start; readying steps 2-5 took ${readying.join(', ')} ms beyond their holds; promotion of ${ORDER.length} members ${done - stepAt[4]!} ms; whole rollout ${done - started} ms`);

    // The CronJob's next Job runs the candidate's image.
    const cron = await p.cronJob();
    await waitFor('a Job of the CronJob on v2', async () => {
      const jobs = (await cluster.api<{ items: Job[] }>('GET', `/apis/batch/v1/namespaces/${p.ns}/jobs`)).body.items;
      return jobs.some((j) => j.metadata.ownerReferences?.some((o) => o.uid === cron.metadata.uid) && j.spec.template.spec.containers[0]!.image === IMAGES.v2);
    }, 120_000);
  }, 240_000);
});

describe('a consumer gate failing at 25%', () => {
  let prometheus: PrometheusProcess;
  let lis: SampleConsumer;

  beforeAll(async () => {
    lis = await startSampleConsumer({ consumer: 'lis-testresult', ratePerSecond: 200 });
    lis.setReplicas({ v1: 2 });
    lis.setFailure('v1', 0.005);
    lis.setFailure('v2', 0.3);
    prometheus = await startPrometheus({
      dataDir: mkdtempSync(join(tmpdir(), 'cutover-group-prom-')),
      scrapeIntervalMs: 1000,
      scrapeTargets: [{ job: 'lis-testresult', targets: [`127.0.0.1:${lis.port}`] }],
    });
  }, 60_000);

  afterAll(async () => {
    await prometheus?.stop();
    await lis?.stop();
  });

  it('rolls the whole group back in reverse order, with one rollback in the audit log', async () => {
    const counters = (what: string) => `'sum(increase(messages_${what}_total{consumer="lis-testresult",version="{{version}}"}[{{window}}]))${what === 'failed' ? ' or vector(0)' : ''}'`;
    const p = await seedNamespace({
      cron: ', switchAt: 25%',
      gates: `prometheus: { url: "${prometheus.url}" }
gates:
  - name: lis-failures
    type: errorRate
    member: lis-testresult
    maxIncrease: 5%
    requests: ${counters('processed')}
    errors: ${counters('failed')}
`,
      steps: '      - { weight: 1, hold: 1s }\n      - { weight: 5, hold: 1s }\n      - { weight: 25, hold: 120s }\n      - { weight: 50, hold: 1s }\n      - { weight: 100, hold: 0s }',
    });
    const watch = await watchWrites(p.ns);
    const run = p.deploy(['promote', '--to', 'v2', '-o', 'json']);
    const events = followEvents(run);
    let finished = false;
    void run.then(() => (finished = true));
    // Competing consumers: each version of lis-testresult takes messages as its ready replicas do.
    const consumers = (async () => {
      while (!finished) {
        const m = (await p.members())['lis-testresult']!;
        lis.setReplicas({ v1: m.stable.ready, v2: m.canary?.ready ?? 0 });
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    const result = await run;
    await consumers;
    watch.stop();
    expect(result.exitCode, result.stderr).toBe(3);
    const gates = events().filter((e) => e.event === 'gate');
    expect(gates.every((g) => g.step === 3), JSON.stringify(gates.map((g) => g.step))).toBe(true);
    const rollback = events().find((e) => e.event === 'rollback')!;
    expect(rollback.reason).toMatch(/^gate lis-failures failed: /);
    expect(events().filter((e) => e.event === 'step').map((e) => e.step)).toEqual([1, 2, 3]);

    // Every member back on v1 at its size, no candidate running, the CronJob on v1 again.
    const after = await p.members();
    for (const d of DEPLOYMENTS) {
      expect([d.name, after[d.name]!.stable.version, after[d.name]!.stable.desired, after[d.name]!.canary?.desired]).toEqual([d.name, 'v1', d.replicas, 0]);
      expect((await p.deployment(d.deployment)).metadata.annotations?.['cutover.dev/replicas']).toBeUndefined();
    }
    expect(after.cron).toBe('v1');

    // In reverse order: the API first, the consumers and the worker, the CronJob last. A member is
    // back when its canary is scaled to 0 after having run (the CronJob: its template on v1 after v2).
    const backAt = (member: string) => {
      const name = member === 'cron' ? CRON : `${objectOf(member)}-canary`;
      const mine = watch.changes.filter((c) => c.name === name);
      const ran = mine.findIndex((c) => (member === 'cron' ? c.version === 'v2' : (c.replicas ?? 0) > 0));
      return mine.slice(ran + 1).find((c) => (member === 'cron' ? c.version === 'v1' : c.replicas === 0));
    };
    const backOrder = ORDER.map((m) => [m, backAt(m)] as const);
    expect(backOrder.filter(([, c]) => !c).map(([m]) => m)).toEqual([]);
    expect([...backOrder].sort((a, b) => a[1]!.rv - b[1]!.rv).map(([m]) => m)).toEqual([...ORDER].reverse());

    const history = await p.history();
    const audit = history.filter((e) => e.event === 'audit');
    expect(audit.filter((e) => e.action === 'rollout.rolled_back')).toHaveLength(1);
    expect(audit.slice(-2).map((e) => [e.action, (e.detail as Record<string, unknown>).stableRestoredTo])).toEqual([['rollout.rolled_back', undefined], ['workload.retired', 'v1']]);
    expect(history.at(-1)).toMatchObject({ event: 'verify', ok: true });

    // Traffic left the candidate before any member was touched.
    const routes = watch.changes.filter((c) => c.kind === 'httproute');
    const routeBack = routes.slice(routes.findIndex((c) => (c.canaryWeight ?? 0) > 0)).find((c) => c.canaryWeight === 0)!;
    expect(routeBack.rv).toBeLessThan(Math.min(...backOrder.map(([, c]) => c!.rv)));
    const failedAt = Date.parse(gates.find((g) => g.verdict === 'failed')!.at as string);
    const lastWrite = Math.max(...backOrder.map(([, c]) => c!.at));
    console.log(`release group rollback: gate failed → traffic on v1 in ${routeBack.at - failedAt} ms; → all ${ORDER.length} members back on v1 in ${lastWrite - failedAt} ms (${lastWrite - routeBack.at} ms after the traffic)`);
  }, 240_000);
});

describe('a failed Job of the candidate', () => {
  it('is a failed gate: the group rolls back, and the candidate’s Job still running is stopped', async () => {
    const p = await seedNamespace({ cron: ', switchAt: 5%, runningJobs: stop', steps: '      - { weight: 1, hold: 1s }\n      - { weight: 5, hold: 120s }\n      - { weight: 100, hold: 1s }' });
    const run = p.deploy(['promote', '--to', 'v2', '-o', 'json']);
    const events = followEvents(run);
    await waitFor('step 2 (5%), where the CronJob runs v2', () => events().some((e) => e.event === 'step' && e.step === 2), 90_000);
    // Two Jobs of the candidate as the CronJob starts them (its jobTemplate, owned by it): one that
    // cannot be scheduled and runs on, one that cannot be scheduled and fails at its deadline.
    type CronFull = Cron & { metadata: { name: string }; spec: { jobTemplate: { metadata?: { labels?: Record<string, string> }; spec: { template: { spec: Record<string, unknown> } } } } };
    const cron = (await cluster.api<CronFull>('GET', `/apis/batch/v1/namespaces/${p.ns}/cronjobs/${CRON}`)).body;
    expect(versionOfImage(cron.spec.jobTemplate.spec.template.spec.containers[0]!.image)).toBe('v2');
    const job = (name: string, deadline?: number) => ({
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name, labels: cron.spec.jobTemplate.metadata?.labels, ownerReferences: [{ apiVersion: 'batch/v1', kind: 'CronJob', name: CRON, uid: cron.metadata.uid, controller: true }] },
      spec: {
        ...cron.spec.jobTemplate.spec,
        ...(deadline ? { activeDeadlineSeconds: deadline } : {}),
        template: { ...cron.spec.jobTemplate.spec.template, spec: { ...cron.spec.jobTemplate.spec.template.spec, nodeSelector: { 'cutover.test/no-such-node': 'true' } } },
      },
    });
    await cluster.api('POST', `/apis/batch/v1/namespaces/${p.ns}/jobs`, job('cron-candidate-running'));
    const createdAt = Date.now();
    await cluster.api('POST', `/apis/batch/v1/namespaces/${p.ns}/jobs`, job('cron-candidate-failing', 1));
    const result = await run;
    expect(result.exitCode, result.stderr).toBe(3);
    const rollback = events().find((e) => e.event === 'rollback')!;
    expect(rollback.reason).toMatch(new RegExp(`^cron: Job cron-candidate-failing of v2 \\(CronJob ${CRON}\\) failed: DeadlineExceeded`));
    const after = await p.members();
    expect(after.cron).toBe('v1');
    for (const d of DEPLOYMENTS) expect([d.name, after[d.name]!.stable.desired, after[d.name]!.canary?.desired ?? 0]).toEqual([d.name, d.replicas, 0]);
    const running = await cluster.api<{ metadata?: { deletionTimestamp?: string } }>('GET', `/apis/batch/v1/namespaces/${p.ns}/jobs/cron-candidate-running`, undefined, { allow: [404] });
    expect(running.status === 404 || running.body.metadata?.deletionTimestamp !== undefined).toBe(true);
    const failed = await cluster.api('GET', `/apis/batch/v1/namespaces/${p.ns}/jobs/cron-candidate-failing`, undefined, { allow: [404] });
    expect(failed.status).toBe(200);
    console.log(`release group: a failed candidate Job rolled the group back ${Date.parse(rollback.at as string) - createdAt} ms after it was created with a 1 s deadline`);
  }, 240_000);
});

describe('bad input changes nothing and exits 2', () => {
  it('names a member whose Deployment does not exist', async () => {
    const p = await seedNamespace({
      members: `    - { name: api, role: traffic, deployment: ${API} }\n    - { name: billing, role: consumer, deployment: pat--dtc--be--consumer-billing--prod }\n`,
      order: '[billing, api]',
    });
    const before = await p.snapshot();
    const r = await p.deploy(['promote', '--to', 'v2']);
    expect([r.exitCode, r.stderr]).toEqual([2, expect.stringContaining(`Deployment pat--dtc--be--consumer-billing--prod not found in namespace ${p.ns}`)]);
    expect(await p.snapshot()).toEqual(before);
  });

  it('refuses two traffic members behind one router', async () => {
    const p = await seedNamespace({
      members: `    - { name: api, role: traffic, deployment: ${API} }\n    - { name: worker, role: traffic, deployment: ${DEPLOYMENTS[4].deployment} }\n`,
      order: '[worker, api]',
    });
    const before = await p.snapshot();
    const r = await p.deploy(['promote', '--to', 'v2']);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/workload\.members\[1\]\.role: members api and worker both have role traffic, and router gateway-api routes one service/);
    expect(await p.snapshot()).toEqual(before);
  });

  it('refuses a CronJob member with no image of the candidate', async () => {
    const p = await seedNamespace({
      versions: `  v1: { image: "${IMAGES.v1}" }\n  v2: {}\n`,
      members: `    - { name: api, role: traffic, deployment: ${API}, image: "registry.example/pat-dtc-be:{{version}}" }\n    - { name: cron, role: cron, cronJob: ${CRON} }\n`,
      order: '[cron, api]',
    });
    const before = await p.snapshot();
    const r = await p.deploy(['promote', '--to', 'v2']);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/workload\.members\[1\]: member cron has no image of v2: set versions\.v2\.image, or the member's image: with \{\{version\}\}/);
    expect(await p.snapshot()).toEqual(before);
  });
});

describe('SIGKILL during a group’s steps and its promotion', () => {
  const KILLS = 21;

  it(`leaves every member on the recorded step or the one being readied across ${KILLS} kills, and deploy resume finishes`, async () => {
    const p = await seedNamespace({ steps: WEIGHTS.map((w) => `      - { weight: ${w}, hold: 300ms }`).join('\n'), checkInterval: '100ms' });
    type Status = {
      phase: string;
      step: number;
      stable: string;
      candidate: string;
      intent?: { to: string; step: number };
      readying?: { step: number };
      waitingForTargets?: { step?: number };
      promotion?: unknown;
      retiring?: unknown;
    };
    const status = async (): Promise<Status> => {
      const r = await p.deploy(['status', '-o', 'json']);
      expect(r.exitCode, r.stderr).toBe(0);
      return jsonLines(r.stdout)[0] as Status;
    };
    const seen: string[] = [];

    const expectConsistent = async (context: string) => {
      const s = await status();
      if (s.phase === 'none') return;
      const m = await p.members();
      const where = `${context}: ${JSON.stringify({ phase: s.phase, step: s.step, intent: s.intent, readying: s.readying, waiting: s.waitingForTargets, promotion: s.promotion, retiring: s.retiring })}\n${JSON.stringify(m)}`;
      const over = ['promoted', 'rolled_back', 'aborted'].includes(s.phase);
      seen.push(s.promotion ? 'promotion' : s.readying || s.intent || s.waitingForTargets ? 'readying' : over ? (s.retiring ? 'retiring' : 'over') : s.phase);
      const last = WEIGHTS.length - 1;
      // Steps a Deployment may be on: the recorded one, or the one being readied or written —
      // as rows of AT_STEP (status counts steps from 1, 0 before the first; the rows from 0).
      const allowed = [...new Set([s.step, s.readying?.step, s.intent?.step, s.waitingForTargets?.step].filter((n): n is number => n !== undefined).map((n) => n - 1))];
      const promoting = s.promotion !== undefined || s.phase === 'promoted';
      const promoted = ORDER.map((name) => (name === 'cron' ? m.cron : m[name]!.stable.version) === s.candidate);
      if (s.phase === 'rolled_back' || s.phase === 'aborted') throw new Error(`no rollback was asked for: ${where}`);
      // Promoted members are the first ones of the order: each was done before the next began.
      expect(promoted.indexOf(false) === -1 || promoted.slice(promoted.indexOf(false)).every((f) => !f), where).toBe(true);
      if (!promoting) expect(promoted.some(Boolean), where).toBe(false);
      for (const d of DEPLOYMENTS) {
        const { stable, canary } = m[d.name]!;
        const table = AT_STEP[d.name]!;
        if (stable.version === s.candidate) {
          // Promoted: the stable Deployment runs the candidate at its size (or is being scaled back to it).
          expect([d.name, canary?.desired ?? 0], where).toEqual([d.name, expect.toBeOneOf(s.retiring || s.phase !== 'promoted' ? [table[last]![0], 0] : [0])]);
          expect([d.name, stable.desired], where).toEqual([d.name, expect.toBeOneOf([d.replicas, table[last]![1]])]);
          if (s.phase === 'promoted' && !s.retiring) expect([d.name, stable.desired, canary?.desired ?? 0], where).toEqual([d.name, d.replicas, 0]);
          continue;
        }
        const steps = promoting ? [last] : allowed;
        expect([d.name, stable.version], where).toEqual([d.name, s.stable]);
        expect([d.name, canary?.desired ?? 0], where).toEqual([d.name, expect.toBeOneOf(steps.map((i) => (i < 0 ? 0 : table[i]![0])))]);
        expect([d.name, stable.desired], where).toEqual([d.name, expect.toBeOneOf(steps.map((i) => (i < 0 ? sizeOf(d.name) : table[i]![1])))]);
        if ((canary?.desired ?? 0) > 0) expect([d.name, canary!.version], where).toEqual([d.name, s.candidate]);
      }
      const history = await p.deploy(['history', '-o', 'json']);
      expect(history.exitCode, `${where}\n${history.stderr}`).toBe(0);
      expect(jsonLines(history.stdout).at(-1), where).toMatchObject({ event: 'verify', ok: true });
    };

    const random = mulberry32(Number(process.env.CRASH_SEED ?? 20261129));
    let candidate = 'v2';
    for (let kill = 1; kill <= KILLS; kill++) {
      const s = await status();
      // A rollout over with its workload not yet tidied is finished by resume, or by the next promote.
      const over = ['promoted', 'rolled_back', 'aborted', 'none'].includes(s.phase) && !(s.retiring && kill % 2 === 1);
      if (over && s.phase === 'promoted') candidate = candidate === 'v2' ? 'v1' : 'v2';
      const args = over ? ['promote', '--to', candidate, '-o', 'json'] : ['resume', '-o', 'json'];
      const child = p.deploy(args);
      const events = followEvents(child);
      let exited = false;
      void child.then(() => (exited = true));
      // A third of the kills aim at the promotion (after its first look, members moving one by one), a
      // third at the readying of a step (its hold is 300 ms), a third at any moment.
      const aim = (['promotion', 'step', 'start'] as const)[kill % 3]!;
      const aimed = (e: Record<string, unknown>) => (aim === 'start' ? true : aim === 'step' ? e.event === 'step' : e.event === 'error' && String(e.message).startsWith('promoting'));
      await waitFor(`${aim} in \`deploy ${args.join(' ')}\``, () => exited || events().some(aimed), 90_000);
      const delayMs = Math.floor(aim === 'step' ? 200 + random() * 600 : random() * (aim === 'start' ? 1500 : 1000));
      await new Promise((r) => setTimeout(r, delayMs));
      child.kill('SIGKILL');
      const result = await child;
      await expectConsistent(`kill ${kill}: \`deploy ${args.join(' ')}\` ${delayMs} ms after ${aim === 'start' ? 'its first event' : aim === 'step' ? 'a step began' : 'the promotion began'} (exit ${result.exitCode ?? result.signal})`);
    }
    const midRollout = seen.filter((k) => k !== 'over');
    expect(midRollout.length, seen.join(', ')).toBeGreaterThanOrEqual(10);
    expect(seen, seen.join(', ')).toEqual(expect.arrayContaining(['promotion', 'readying']));

    let end = await status();
    for (let i = 0; i < 3 && (!['promoted'].includes(end.phase) || end.retiring); i++) {
      const resumed = await p.deploy(['resume']);
      expect(resumed.exitCode, resumed.stderr).toBe(0);
      end = await status();
    }
    expect([end.phase, end.retiring]).toEqual(['promoted', undefined]);
    await expectConsistent('after the last resume');
    const m = await p.members();
    for (const d of DEPLOYMENTS) expect([d.name, m[d.name]!.stable.version, m[d.name]!.stable.desired, m[d.name]!.canary?.desired ?? 0]).toEqual([d.name, end.candidate, d.replicas, 0]);
    expect(m.cron).toBe(end.candidate);
    console.log(`release group kills: ${seen.join(', ')}`);
  }, 600_000);
});
