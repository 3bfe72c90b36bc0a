/**
 * A fleet across two real Kubernetes control planes (the run's cluster, home of the state and
 * lock, and a second one on ports of its own): per cluster the kubernetes workload (a Deployment
 * pair made Ready by kwok) and the gateway-api router (an HTTPRoute). A lockstep rollout has each
 * step's weights in both HTTPRoutes and the canary scaled in both before its hold, and promotes
 * into both stable Deployments; an abort sends both back to stable. The rollout's ConfigMap and
 * Lease live in the home cluster only.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeploymentObject } from '../../src/workloads/kubernetes/deployment-spec.js';
import { testCluster, type TestCluster } from '../helpers/cluster.js';
import { DEPLOY, followEvents, jsonLines, waitFor } from '../helpers/sandbox.js';
import { startOwnCluster, type OwnCluster } from '../helpers/second-cluster.js';

let home: TestCluster;
let other: OwnCluster | undefined;

beforeAll(async () => {
  [home, other] = await Promise.all([testCluster(), startOwnCluster()]);
}, 300_000);
afterAll(async () => {
  await other?.stop();
}, 60_000);

interface HttpRoute {
  spec: { rules: { backendRefs?: { name: string; weight?: number }[] }[] };
}

/** Deployment api (4 replicas of v1) and Service api in a fresh namespace of `cluster`. */
async function app(cluster: TestCluster): Promise<string> {
  const ns = await cluster.namespace('fleet');
  await cluster.apiDeployment(ns, 4);
  await cluster.api('POST', `/api/v1/namespaces/${ns}/services`, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'api' }, spec: { selector: { app: 'api' }, ports: [{ port: 80, targetPort: 8080 }] } });
  return ns;
}

/** Two clusters' namespaces and a deploy.yaml driving them as one fleet. */
async function fleetProject(steps: string) {
  const clusters = [{ name: 'east', cluster: home }, { name: 'west', cluster: other! }];
  const spaces = await Promise.all(clusters.map((c) => app(c.cluster)));
  const dir = mkdtempSync(join(tmpdir(), 'cutover-fleet-kube-'));
  const file = join(dir, 'deploy.yaml');
  const targets = clusters
    .map(
      (c, i) => `  ${c.name}:
    kubernetes: { kubeconfig: ${c.cluster.kubeconfig}, namespace: ${spaces[i]} }
    workload: { type: kubernetes, deployment: api, progressDeadline: 240s }
    router: { type: gateway-api, httpRoute: api, service: api, parentRefs: [{ name: public-gateway }] }`,
    )
    .join('\n');
  writeFileSync(
    file,
    `service: api
stable: v1
versions:
  v1: { image: "example.test/api:1.0" }
  v2: { image: "example.test/api:2.0" }
kubernetes: { kubeconfig: ${home.kubeconfig}, namespace: ${spaces[0]} }
router: { type: fleet, strategy: lockstep, unreachableTimeout: 30s }
workload: { type: fleet }
targets:
${targets}
state: { type: kubernetes, lease: 2s }
strategy:
  canary:
    checkInterval: 200ms
    steps:
${steps}`,
  );
  const deploy = (args: string[]): ResultPromise<{ reject: false }> => execa(DEPLOY, [...args, '-f', file], { reject: false, env: { CI: 'true' }, cwd: dir });
  const at = (i: number) => ({
    shares: async () => {
      const route = (await clusters[i]!.cluster.api<HttpRoute>('GET', `/apis/gateway.networking.k8s.io/v1/namespaces/${spaces[i]}/httproutes/api`)).body;
      const refs = route.spec.rules.at(-1)!.backendRefs ?? [];
      const total = refs.reduce((n, b) => n + (b.weight ?? 1), 0);
      return Object.fromEntries(refs.map((b) => [b.name, +((100 * (b.weight ?? 1)) / total).toFixed(3)]));
    },
    deployment: async (name: string) => (await clusters[i]!.cluster.api<DeploymentObject>('GET', `/apis/apps/v1/namespaces/${spaces[i]}/deployments/${name}`, undefined, { allow: [404] })).body,
    cutoverObjects: async () => {
      const maps = (await clusters[i]!.cluster.api<{ items: { metadata: { name: string } }[] }>('GET', `/api/v1/namespaces/${spaces[i]}/configmaps`)).body.items;
      const leases = (await clusters[i]!.cluster.api<{ items: { metadata: { name: string } }[] }>('GET', `/apis/coordination.k8s.io/v1/namespaces/${spaces[i]}/leases`)).body.items;
      return [...maps, ...leases].map((o) => o.metadata.name).filter((n) => n.startsWith('cutover-'));
    },
  });
  return { deploy, east: at(0), west: at(1) };
}

describe('a fleet across two Kubernetes clusters', () => {
  it('lockstep: each step is in both HTTPRoutes with both canaries scaled, then both stable Deployments run the candidate; state lives in the home cluster', async () => {
    const p = await fleetProject('      - { weight: 25, hold: 1500ms }\n      - { weight: 50, hold: 1500ms }\n      - { weight: 100, hold: 1500ms }\n');
    const run = p.deploy(['promote', '--to', 'v2', '-o', 'json']);
    const events = followEvents(run);
    const seen: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      await waitFor(`step ${i + 1}`, () => events().filter((e) => e.event === 'step').length > i, 300_000);
      seen.push(await Promise.all([p.east, p.west].map(async (t) => ({ shares: await t.shares(), canaryReady: (await t.deployment('api-canary')).status?.readyReplicas ?? 0 }))));
    }
    const result = await run;
    expect(result.exitCode, result.stderr).toBe(0);
    const both = (shares: Record<string, number>, canaryReady: number) => [{ shares, canaryReady }, { shares, canaryReady }];
    expect(seen).toEqual([both({ api: 75, 'api-canary': 25 }, 1), both({ api: 50, 'api-canary': 50 }, 2), both({ api: 0, 'api-canary': 100 }, 4)]);
    for (const t of [p.east, p.west]) {
      const stable = await t.deployment('api');
      expect([stable.spec.template.spec.containers[0]!.image, stable.status?.readyReplicas]).toEqual(['example.test/api:2.0', 4]);
      expect((await t.shares()).api).toBe(100);
      expect((await t.deployment('api-canary')).spec.replicas).toBe(0);
    }
    expect((await p.east.cutoverObjects()).length).toBeGreaterThan(0);
    expect(await p.west.cutoverObjects()).toEqual([]);
    const status = jsonLines((await p.deploy(['status', '-o', 'json'])).stdout)[0] as { phase: string; fleet: { target: string; weights: Record<string, number> }[] };
    expect(status.phase).toBe('promoted');
    expect(status.fleet.map((t) => t.target)).toEqual(['east', 'west']);
  }, 900_000);

  it('an abort mid-rollout sends both clusters back to stable and scales both canaries down', async () => {
    const p = await fleetProject('      - { weight: 50, hold: 10m }\n      - { weight: 100 }\n');
    const run = p.deploy(['promote', '--to', 'v2', '-o', 'json']);
    const events = followEvents(run);
    await waitFor('step 1', () => events().some((e) => e.event === 'step'), 300_000);
    for (const t of [p.east, p.west]) expect(await t.shares()).toEqual({ api: 50, 'api-canary': 50 });
    const abort = await p.deploy(['abort', '--reason', 'drill']);
    expect(abort.exitCode, abort.stderr).toBe(0);
    const result = await run;
    expect(result.exitCode).toBe(3);
    for (const t of [p.east, p.west]) {
      expect((await t.shares()).api).toBe(100);
      await waitFor('canary scaled down', async () => (await t.deployment('api-canary')).spec.replicas === 0, 180_000);
      expect((await t.deployment('api')).spec.template.spec.containers[0]!.image).toBe('example.test/api:1.0');
    }
  }, 900_000);
});
