/**
 * Whole rollouts through the CLI on the real control plane: the kubernetes workload (Deployments
 * made Ready by kwok), the gateway-api router (an HTTPRoute), state and lock in the cluster (a
 * ConfigMap and a Lease). The rollout with a gate failure runs with real traffic: Traefik serves
 * the HTTPRoute (test/helpers/traefik.ts), the Services' endpoints are sample services in a
 * network namespace standing in for the kwok pods (test/helpers/backend-netns.ts), and the gate
 * reads a real Prometheus scraping those services, so it judges the requests the route sent them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { startPrometheus, type PrometheusProcess } from '../../src/sandbox/prometheus-process.js';
import type { DeploymentObject } from '../../src/workloads/kubernetes/deployment-spec.js';
import { startBackendNetwork, type Backend, type BackendNetwork } from '../helpers/backend-netns.js';
import { testCluster, type TestCluster } from '../helpers/cluster.js';
import { serviceFor } from '../helpers/kube-backends.js';
import { DEPLOY, followEvents, jsonLines, waitFor } from '../helpers/sandbox.js';
import { startTraefik, type Traefik } from '../helpers/traefik.js';
import { expectShare, load, send } from '../helpers/traffic.js';

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await testCluster();
}, 240_000);

interface HttpRoute {
  metadata: { resourceVersion: string; annotations?: Record<string, string> };
  spec: { hostnames?: string[]; rules: { matches?: unknown[]; backendRefs?: { name: string; weight?: number }[] }[] };
}

/**
 * A namespace with Deployment api (4 replicas of v1) and Service api, and a deploy.yaml for it.
 * With `backends`, Services api and api-canary have no selector and their endpoints are those
 * backends (the kwok pods serve nothing); `router` replaces the router section, given the namespace.
 */
async function project(opts: { steps?: string; gates?: string; kubeconfig?: string; lease?: string; namespace?: string; deployment?: string; backends?: { stable: Backend; canary: Backend }; router?: (ns: string) => string } = {}) {
  const ns = await cluster.namespace('canary');
  await cluster.apiDeployment(ns, 4);
  if (opts.backends) {
    await serviceFor(cluster, ns, 'api-canary', opts.backends.canary);
    await serviceFor(cluster, ns, 'api', opts.backends.stable);
  } else {
    await cluster.api('POST', `/api/v1/namespaces/${ns}/services`, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'api' },
      spec: { selector: { app: 'api' }, ports: [{ port: 80, targetPort: 8080 }] },
    });
  }
  const dir = mkdtempSync(join(tmpdir(), 'cutover-kube-'));
  const file = join(dir, 'deploy.yaml');
  writeFileSync(
    file,
    `service: api
stable: v1
versions:
  v1: { image: "example.test/api:1.0" }
  v2: { image: "example.test/api:2.0" }
kubernetes:
  kubeconfig: ${opts.kubeconfig ?? cluster.kubeconfig}
  namespace: ${opts.namespace ?? ns}
workload:
  type: kubernetes
  deployment: ${opts.deployment ?? 'api'}
  progressDeadline: 180s
${opts.router?.(ns) ?? 'router:\n  type: gateway-api\n  httpRoute: api\n  service: api\n  parentRefs: [{ name: public-gateway }]'}
state:
  type: kubernetes
  lease: ${opts.lease ?? '2s'}
${opts.gates ?? ''}strategy:
  canary:
    checkInterval: 200ms
    steps:
${opts.steps ?? '      - { weight: 1, hold: 1500ms }\n      - { weight: 5, hold: 1500ms }\n      - { weight: 25, hold: 1500ms }\n      - { weight: 50, hold: 1500ms }\n      - { weight: 100, hold: 1500ms }'}
`,
  );
  const deploy = (args: string[], env: Record<string, string> = {}): ResultPromise<{ reject: false }> =>
    execa(DEPLOY, [...args, '-f', file], { reject: false, env: { CI: 'true', ...env }, cwd: dir });
  const route = async () => (await cluster.api<HttpRoute>('GET', `/apis/gateway.networking.k8s.io/v1/namespaces/${ns}/httproutes/api`, undefined, { allow: [404] })).body;
  const weights = async () => {
    const r = await route();
    const rule = r.spec.rules.at(-1)!;
    return Object.fromEntries((rule.backendRefs ?? []).map((b) => [b.name, b.weight ?? 1]));
  };
  const deployment = async (name: string) => (await cluster.api<DeploymentObject>('GET', `/apis/apps/v1/namespaces/${ns}/deployments/${name}`, undefined, { allow: [404] })).body;
  const configMaps = async () =>
    (await cluster.api<{ items: { metadata: { name: string } }[] }>('GET', `/api/v1/namespaces/${ns}/configmaps`)).body.items.map((c) => c.metadata.name).filter((n) => n.startsWith('cutover-'));
  return { ns, dir, file, deploy, route, weights, deployment, configMaps };
}

/** Percent of the backendRefs' total on each Service. */
const shares = (w: Record<string, number>) => {
  const total = Object.values(w).reduce((a, b) => a + b, 0);
  return Object.fromEntries(Object.entries(w).map(([k, v]) => [k, +((100 * v) / total).toFixed(3)]));
};

describe('a canary on Kubernetes', () => {
  it('scales the canary per step before its weight moves, then promotes into the stable Deployment', async () => {
    const p = await project();
    const run = p.deploy(['promote', '--to', 'v2', '-o', 'json']);
    const events = followEvents(run);
    const seen: { step: number; shares: Record<string, number>; canaryReady: number; canaryReplicas: number }[] = [];
    let checked = 0;
    let finished = false;
    void run.then(() => (finished = true));
    const watcher = (async () => {
      while (!finished) {
        const steps = events().filter((e) => e.event === 'step');
        if (steps.length > checked) {
          checked = steps.length;
          const canary = await p.deployment('api-canary');
          seen.push({ step: steps.at(-1)!.step as number, shares: shares(await p.weights()), canaryReady: canary.status?.readyReplicas ?? 0, canaryReplicas: canary.spec.replicas ?? 0 });
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const result = await run;
    await watcher;
    expect(result.exitCode, result.stderr).toBe(0);
    expect(seen).toEqual([
      { step: 1, shares: { api: 99, 'api-canary': 1 }, canaryReady: 1, canaryReplicas: 1 },
      { step: 2, shares: { api: 95, 'api-canary': 5 }, canaryReady: 1, canaryReplicas: 1 },
      { step: 3, shares: { api: 75, 'api-canary': 25 }, canaryReady: 1, canaryReplicas: 1 },
      { step: 4, shares: { api: 50, 'api-canary': 50 }, canaryReady: 2, canaryReplicas: 2 },
      { step: 5, shares: { api: 0, 'api-canary': 100 }, canaryReady: 4, canaryReplicas: 4 },
    ]);
    // promoted: stable runs v2, takes all traffic, the canary is scaled to zero
    const stable = await p.deployment('api');
    expect([stable.spec.template.spec.containers[0]!.image, stable.status?.readyReplicas]).toEqual(['example.test/api:2.0', 4]);
    expect(shares(await p.weights())).toMatchObject({ api: 100 });
    expect((await p.deployment('api-canary')).spec.replicas).toBe(0);
    const status = jsonLines((await p.deploy(['status', '-o', 'json'])).stdout)[0]!;
    expect([status.phase, status.candidate]).toEqual(['promoted', 'v2']);
    const history = await p.deploy(['history', '-o', 'json']);
    const actions = jsonLines(history.stdout).filter((e) => e.event === 'audit').map((e) => e.action);
    expect(actions.slice(-3)).toEqual(['promotion.started', 'rollout.promoted', 'workload.retired']);
    expect(jsonLines(history.stdout).at(-1)).toMatchObject({ event: 'verify', ok: true });
  }, 300_000);
});

describe('a gate failure on Kubernetes, with real traffic through Traefik', () => {
  let network: BackendNetwork | undefined;
  let traefik: Traefik | undefined;
  let prometheus: PrometheusProcess | undefined;
  const backends: Record<string, Backend> = {};

  beforeAll(async () => {
    network = await startBackendNetwork();
    for (const b of await Promise.all(['v1', 'v2'].map((v) => network!.start(v)))) backends[b.version] = b;
    traefik = await startTraefik(cluster);
    prometheus = await startPrometheus({
      dataDir: mkdtempSync(join(tmpdir(), 'cutover-kube-prom-')),
      scrapeIntervalMs: 1000,
      scrapeTargets: [{ job: 'api', targets: Object.values(backends).map((b) => `${b.address}:${b.port}`) }],
    });
  }, 300_000);

  afterAll(async () => {
    await prometheus?.stop();
    await traefik?.stop();
    await network?.stop();
  });

  it('rolls back by itself: traffic to stable first, then the canary scaled down; no request through Traefik fails, and all land on stable after', async () => {
    const { parentRef } = traefik!;
    const p = await project({
      // A slow canary fails the gate while every request still succeeds, so any failed request is the data plane's.
      gates: `prometheus: { url: "${prometheus!.url}" }\ngates:\n  - { name: latency, type: latencyP99, max: 250ms, minRequests: 50 }\n`,
      steps: '      - { weight: 5, hold: 6s }\n      - { weight: 50, hold: 60s }\n      - { weight: 100, hold: 2s }',
      backends: { stable: backends.v1!, canary: backends.v2! },
      router: (ns) => `router:\n  type: gateway-api\n  httpRoute: api\n  service: api\n  parentRefs: [{ name: ${parentRef.name}, namespace: ${parentRef.namespace} }]\n  hostnames: ["${ns}.test"]`,
    });
    const host = `${p.ns}.test`;
    // The route as the team had it before Cutover: all of the host to Service api. Cutover takes it over.
    await cluster.api('POST', `/apis/gateway.networking.k8s.io/v1/namespaces/${p.ns}/httproutes`, {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: 'api' },
      spec: { parentRefs: [parentRef], hostnames: [host], rules: [{ backendRefs: [{ name: 'api', port: 80 }] }] },
    });
    await waitFor('Traefik to serve the route', async () => (await send(`${traefik!.url}/`, 1, { host }, 1)).byVersion.v1 === 1);

    const traffic = load(`${traefik!.url}/`, { headers: { host }, clients: 8, ratePerSecond: 200 });
    const run = p.deploy(['promote', '--to', 'v2', '-o', 'json']);
    const events = followEvents(run);
    // What the load had seen at each step, at the fault and at the rollback, to tell the windows
    // apart. A step's event comes once its write is live, so the requests just before it were
    // already split the new way: a step's share is judged on its first requests only.
    const marks: { label: string; byVersion: Record<string, number> }[] = [];
    const mark = (label: string) => marks.push({ label, byVersion: { ...traffic.tally.byVersion } });
    let finished = false;
    let marked = 0;
    void run.then(() => (finished = true));
    const markNew = () => {
      const seen = events().filter((e) => e.event === 'step' || e.event === 'rollback');
      for (const e of seen.slice(marked)) mark(e.event === 'step' ? `step ${Number(e.step)} (${e.weight}%)` : 'rollback');
      marked = seen.length;
    };
    const watcher = (async () => {
      while (!finished) {
        markNew();
        await new Promise((r) => setTimeout(r, 50));
      }
      // The last events may come with the end of the run, after the loop's last look.
      markNew();
    })();
    const requestsAfter = async (label: string, n: number) => {
      await waitFor(label, () => marks.some((m) => m.label === label), 90_000);
      const at = traffic.tally.sent;
      await waitFor(`${n} requests at ${label}`, () => traffic.tally.sent >= at + n, 30_000);
    };
    // The 5% step holds 6 s: at most 200 req/s, its first 800 requests are all sent within it.
    await requestsAfter('step 1 (5%)', 800);
    mark('step 1, the rest');
    await requestsAfter('step 2 (50%)', 1_000);
    expect((await p.deployment('api-canary')).status?.readyReplicas).toBe(2);
    // Then v2 turns slow.
    mark('step 2, v2 slow');
    await backends.v2!.setFault({ latencyMs: 400 });
    const result = await run;
    await watcher;
    const during = await traffic.stop();
    await backends.v2!.setFault({ latencyMs: 0 });

    expect(result.exitCode, result.stderr).toBe(3);
    const rollback = events().find((e) => e.event === 'rollback')!;
    // The 400 ms answers put the P99 in the (250 ms, 500 ms] bucket: its bound said, the estimate beside it.
    expect(rollback.reason).toMatch(/^gate latency failed: v2 P99 ≤ 500ms \(estimated [\d.]+ms\) > 250ms/);
    expect(during.failures, 'requests that failed during the steps and the rollback').toEqual([]);
    expect(shares(await p.weights()).api).toBe(100);
    expect((await p.deployment('api-canary')).spec.replicas).toBe(0);
    expect((await p.deployment('api')).spec.template.spec.containers[0]!.image).toBe('example.test/api:1.0');
    const actions = jsonLines((await p.deploy(['history', '-o', 'json'])).stdout).filter((e) => e.event === 'audit').map((e) => e.action);
    expect(actions.slice(-2)).toEqual(['rollout.rolled_back', 'workload.retired']);

    // The load's answers by version between one mark and the next (an answer counts when it arrives).
    marks.push({ label: 'end', byVersion: { ...during.byVersion } });
    const windows = marks.slice(0, -1).map((m, i) => {
      const next = marks[i + 1]!.byVersion;
      const [v1, v2] = ['v1', 'v2'].map((v) => (next[v] ?? 0) - (m.byVersion[v] ?? 0)) as [number, number];
      return { label: m.label, v1, v2 };
    });
    expect(windows.map((w) => w.label)).toEqual(['step 1 (5%)', 'step 1, the rest', 'step 2 (50%)', 'step 2, v2 slow', 'rollback']);
    expectShare(windows[0]!.v2, windows[0]!.v1 + windows[0]!.v2, 0.05);
    expectShare(windows[2]!.v2, windows[2]!.v1 + windows[2]!.v2, 0.5);

    // Once Traefik serves the rollback, every request lands on stable.
    const stableServer = `${backends.v1!.address}:${backends.v1!.port}`;
    const canaryWeighted = new RegExp(`${backends.v2!.address.replaceAll('.', '\\.')}:${backends.v2!.port} ×[1-9]`);
    await waitFor('Traefik to serve the rollback', async () => {
      const routing = await traefik!.routing(p.ns);
      return routing.includes(stableServer) && !canaryWeighted.test(routing);
    });
    const after = await send(`${traefik!.url}/`, 2_000, { host });
    expect(after.failures).toEqual([]);
    expect(after.byVersion).toEqual({ v1: 2_000 });
    console.log(
      `kube canary through Traefik: ${during.sent} requests during the steps and the rollback, ${during.failures.length} failed; ` +
        windows.map((w) => `${w.label}: ${w.v2} of ${w.v1 + w.v2} on v2 (${((100 * w.v2) / Math.max(1, w.v1 + w.v2)).toFixed(2)}%)`).join('; ') +
        `; after the rollback ${after.byVersion.v1 ?? 0} of 2,000 on v1, ${after.failures.length} failed`,
    );
  }, 300_000);
});

describe('drivers sharing the cluster', () => {
  it('two drivers race for the Lease: exactly one drives, the other exits 5', async () => {
    const p = await project();
    const [a, b] = await Promise.all([p.deploy(['promote', '--to', 'v2']), p.deploy(['promote', '--to', 'v2'])]);
    expect([a.exitCode, b.exitCode].sort()).toEqual([0, 5]);
    const loser = a.exitCode === 5 ? a : b;
    expect(loser.stderr).toMatch(/locked by \S+ \(pid \d+ on \S+\) since .*\(Lease canary-[a-z0-9-]+\/cutover-api\)/);
  }, 300_000);

  /** A rollout whose driver is killed with SIGKILL once its second step is live. */
  async function killedAtStep2(lease: string) {
    const p = await project({ lease });
    const run = p.deploy(['promote', '--to', 'v2', '-o', 'json']);
    const events = followEvents(run);
    await waitFor('step 2', () => events().some((e) => e.event === 'step' && e.step === 2), 180_000);
    run.kill('SIGKILL');
    await run;
    return { p, run };
  }

  it('a driver killed with SIGKILL on this host is taken over at once, its Lease not waited out', async () => {
    const { p, run } = await killedAtStep2('30s');
    const status = jsonLines((await p.deploy(['status', '-o', 'json'])).stdout)[0]!;
    expect(status.driverGone).toMatchObject({ pid: run.pid });
    const recorded = status.weights as Record<string, number>;
    expect(shares(await p.weights())).toEqual({ api: recorded.v1, 'api-canary': recorded.v2 });
    // Its process is gone from this host: no need to wait out the 30 s Lease.
    const t0 = Date.now();
    const resumed = await p.deploy(['resume']);
    expect(resumed.exitCode, resumed.stderr).toBe(0);
    expect(Date.now() - t0).toBeLessThan(25_000);
    expect((await p.deployment('api')).spec.template.spec.containers[0]!.image).toBe('example.test/api:2.0');
  }, 300_000);

  it('a holder on another host cannot be proved gone: its Lease is waited out, then another resumes', async () => {
    const { p } = await killedAtStep2('3s');
    // The same holding, as a driver on another machine would have left it.
    type Lease = { metadata: { name: string; annotations: Record<string, string> }; spec: { renewTime: string; leaseDurationSeconds: number } };
    const lease = (await cluster.api<{ items: Lease[] }>('GET', `/apis/coordination.k8s.io/v1/namespaces/${p.ns}/leases`)).body.items[0]!;
    await cluster.api('PUT', `/apis/coordination.k8s.io/v1/namespaces/${p.ns}/leases/${lease.metadata.name}`, { ...lease, metadata: { ...lease.metadata, annotations: { ...lease.metadata.annotations, 'cutover.dev/host': 'ci-runner-elsewhere' } } });
    const early = await p.deploy(['resume']);
    expect(early.exitCode, early.stderr).toBe(5);
    expect(early.stderr).toMatch(/on ci-runner-elsewhere/);
    await waitFor('the Lease to run out', () => Date.now() > Date.parse(lease.spec.renewTime) + lease.spec.leaseDurationSeconds * 1000 + 100, 10_000);
    const resumed = await p.deploy(['resume']);
    expect(resumed.exitCode, resumed.stderr).toBe(0);
    expect((await p.deployment('api')).spec.template.spec.containers[0]!.image).toBe('example.test/api:2.0');
  }, 300_000);

  it('someone editing the HTTPRoute mid-rollout is detected: re-read, reported, their other fields kept', async () => {
    const p = await project({ steps: '      - { weight: 5, hold: 60s }\n      - { weight: 25, hold: 1s }\n      - { weight: 100, hold: 1s }' });
    const run = p.deploy(['promote', '--to', 'v2', '-o', 'json']);
    const events = followEvents(run);
    await waitFor('step 1', () => events().some((e) => e.event === 'step' && e.step === 1), 180_000);
    const live = await p.route();
    const rules = live.spec.rules.map((rule) => ({ ...rule, backendRefs: rule.backendRefs?.map((b) => ({ ...b, weight: 50 })) }));
    await cluster.api('PUT', `/apis/gateway.networking.k8s.io/v1/namespaces/${p.ns}/httproutes/api`, { ...live, spec: { ...live.spec, hostnames: ['patients.example.test'], rules } });
    const skip = await p.deploy(['promote', '--to', 'v2', '--full', '--yes']);
    expect(skip.exitCode, skip.stderr).toBe(0);
    const result = await run;
    expect(result.exitCode, result.stderr).toBe(0);
    const drift = events().find((e) => e.event === 'error' && String(e.message).includes('edited outside'));
    expect(drift, JSON.stringify(events().filter((e) => e.event === 'error'))).toBeDefined();
    expect((await p.route()).spec.hostnames).toEqual(['patients.example.test']);
    const actions = jsonLines((await p.deploy(['history', '-o', 'json'])).stdout).filter((e) => e.event === 'audit').map((e) => e.action);
    expect(actions).toContain('router.drift');
  }, 300_000);
});

describe('bad input changes nothing and exits 2', () => {
  it('names a context that does not exist', async () => {
    const p = await project();
    const r = await p.deploy(['promote', '--to', 'v2', '--context', 'prod-eu']);
    expect([r.exitCode, r.stderr]).toEqual([2, expect.stringContaining('kubeconfig context prod-eu not found (contexts: cutover-test)')]);
    expect(await p.configMaps()).toEqual([]);
  });

  it('names a namespace that does not exist', async () => {
    const p = await project({ namespace: 'no-such-namespace' });
    const r = await p.deploy(['promote', '--to', 'v2']);
    expect([r.exitCode, r.stderr]).toEqual([2, expect.stringContaining('namespace no-such-namespace not found')]);
  });

  it('names a Deployment that does not exist', async () => {
    const p = await project({ deployment: 'patient-api' });
    const r = await p.deploy(['promote', '--to', 'v2']);
    expect([r.exitCode, r.stderr]).toEqual([2, expect.stringContaining(`Deployment patient-api not found in namespace ${p.ns}`)]);
    expect(await p.configMaps()).toEqual([]);
  });

  it('names the missing permission of a restricted context', async () => {
    const p = await project();
    const viewer = await cluster.restrictedKubeconfig(p.ns, 'viewer', [{ apiGroups: ['*'], resources: ['*'], verbs: ['get'] }]);
    const r = await p.deploy(['promote', '--to', 'v2', '--kubeconfig', viewer]);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/may not (update|create) \w+/);
    expect(await p.configMaps()).toEqual([]);
    expect(await p.deployment('api-canary')).toMatchObject({ kind: 'Status', code: 404 });
  });
});

describe('deploy rbac', () => {
  it('prints a Role with which a whole rollout runs, and nothing more is needed', async () => {
    const p0 = await project();
    const printed = await p0.deploy(['rbac', '-o', 'json']);
    expect(printed.exitCode, printed.stderr).toBe(0);
    const [role, binding] = jsonLines(printed.stdout) as [{ kind: string; rules: unknown[] }, { kind: string }];
    expect([role.kind, binding.kind]).toEqual(['Role', 'RoleBinding']);
    const file = await cluster.restrictedKubeconfig(p0.ns, 'cutover', role.rules);
    const r = await p0.deploy(['promote', '--to', 'v2', '--kubeconfig', file]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect((await p0.deployment('api')).spec.template.spec.containers[0]!.image).toBe('example.test/api:2.0');
  }, 300_000);
});
