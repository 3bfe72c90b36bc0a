/**
 * The kubernetes workload against the real control plane: kube-controller-manager creates the
 * ReplicaSets, kube-scheduler places the pods on a kwok node, kwok makes them Ready. Nothing
 * here is simulated: readiness is what the Deployment controller reports.
 */
import { beforeAll, describe, expect, it, vi } from 'vitest';

// Pods are made Ready by the cluster's controllers and kwok, which a busy machine (another control
// plane starting beside this one) can slow to minutes: the tests wait for them, bounded.
vi.setConfig({ testTimeout: 300_000 });
import { setTimeout as delay } from 'node:timers/promises';
import { connectKube } from '../../src/kube/connect.js';
import { UsageError } from '../../src/errors.js';
import type { TargetReadiness } from '../../src/routers/router.js';
import type { DeploymentObject } from '../../src/workloads/kubernetes/deployment-spec.js';
import { KubernetesWorkload, type KubeWorkloadOptions } from '../../src/workloads/kubernetes/workload.js';
import { testCluster, type TestCluster } from '../helpers/cluster.js';

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await testCluster();
}, 240_000);

/** A namespace with Deployment `api` (replicas, app=api, image api:1.0) and Service `api`. */
async function fixture(replicas: number, extra: { cpu?: string; progressDeadlineSeconds?: number } = {}) {
  const ns = await cluster.namespace('workload');
  await cluster.api('POST', `/apis/apps/v1/namespaces/${ns}/deployments`, {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'api', labels: { app: 'api' } },
    spec: {
      replicas,
      ...(extra.progressDeadlineSeconds ? { progressDeadlineSeconds: extra.progressDeadlineSeconds } : {}),
      selector: { matchLabels: { app: 'api' } },
      template: {
        metadata: { labels: { app: 'api', tier: 'web' } },
        spec: {
          containers: [{ name: 'api', image: 'example.test/api:1.0', ...(extra.cpu ? { resources: { requests: { cpu: extra.cpu } } } : {}) }],
          tolerations: [{ key: 'kwok.x-k8s.io/node', operator: 'Exists', effect: 'NoSchedule' }],
        },
      },
    },
  });
  await cluster.api('POST', `/api/v1/namespaces/${ns}/services`, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'api' },
    spec: { selector: { app: 'api' }, ports: [{ port: 80, targetPort: 8080 }] },
  });
  const opts: KubeWorkloadOptions = {
    kube: () => connectKube({ kubeconfig: cluster.kubeconfig, namespace: ns }),
    deployment: 'api',
    canaryDeployment: 'api-canary',
    images: { v1: 'example.test/api:1.0', v2: 'example.test/api:2.0' },
    service: 'api',
    canaryService: 'api-canary',
  };
  const deployment = async (name: string) => (await cluster.api<DeploymentObject>('GET', `/apis/apps/v1/namespaces/${ns}/deployments/${name}`)).body;
  const readyPods = async (selector: string) => {
    const { body } = await cluster.api<{ items: { status: { conditions?: { type: string; status: string }[] }; spec: { containers: { image: string }[] } }[] }>('GET', `/api/v1/namespaces/${ns}/pods?labelSelector=${encodeURIComponent(selector)}`);
    return body.items.filter((p) => p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).map((p) => p.spec.containers[0]!.image);
  };
  return { ns, opts, workload: new KubernetesWorkload(opts), deployment, readyPods };
}

/** Ask until ready (the engine asks at its check interval; here every 250 ms). */
async function untilReady(ask: () => Promise<TargetReadiness>, limitMs = 150_000): Promise<{ answer: TargetReadiness; waitedMs: number }> {
  const start = Date.now();
  for (;;) {
    const answer = await ask();
    if (answer.ready || answer.stuck || Date.now() - start > limitMs) return { answer, waitedMs: Date.now() - start };
    await delay(250);
  }
}

describe('the kubernetes workload', () => {
  it('scales the canary per step, promotes into stable, and scales the canary down', async () => {
    const { ns, workload, deployment, readyPods } = await fixture(4);
    await workload.preflight();
    expect((await untilReady(() => workload.scaleFor('v2', 1))).answer).toEqual({ ready: true, detail: '1/1 replicas of api-canary ready on v2' });
    const canary = await deployment('api-canary');
    expect(canary.spec.selector.matchLabels).toEqual({ app: 'api-canary' });
    expect(canary.spec.template.metadata?.labels).toEqual({ app: 'api-canary', tier: 'web', 'cutover.dev/version': 'v2', 'cutover.dev/role': 'canary' });
    const svc = (await cluster.api<{ spec: { selector: Record<string, string> } }>('GET', `/api/v1/namespaces/${ns}/services/api-canary`)).body;
    expect(svc.spec.selector).toEqual({ app: 'api-canary' });
    expect(await readyPods('app=api-canary')).toEqual(['example.test/api:2.0']);

    expect((await untilReady(() => workload.scaleFor('v2', 25))).answer.ready).toBe(true);
    expect((await untilReady(() => workload.scaleFor('v2', 50))).answer).toEqual({ ready: true, detail: '2/2 replicas of api-canary ready on v2' });
    expect((await untilReady(() => workload.scaleFor('v2', 100))).answer.detail).toBe('4/4 replicas of api-canary ready on v2');
    expect(await readyPods('app=api-canary')).toHaveLength(4);
    expect(await readyPods('app=api')).toEqual(Array(4).fill('example.test/api:1.0'));

    const promoted = await untilReady(() => workload.promote('v2'));
    expect(promoted.answer).toEqual({ ready: true, detail: '4/4 replicas of api ready on v2' });
    const stable = await deployment('api');
    expect(stable.spec.selector.matchLabels).toEqual({ app: 'api' });
    expect(stable.spec.template.metadata?.labels).toEqual({ app: 'api', tier: 'web', 'cutover.dev/version': 'v2' });
    expect(await readyPods('app=api')).toEqual(Array(4).fill('example.test/api:2.0'));

    await workload.retire();
    expect((await deployment('api-canary')).spec.replicas).toBe(0);
    for (let i = 0; i < 100 && (await readyPods('app=api-canary')).length > 0; i += 1) await delay(200);
    expect(await readyPods('app=api-canary')).toEqual([]);
  });

  it('a canary that cannot be scheduled is reported stuck by the Deployment controller', async () => {
    const { workload } = await fixture(2, { cpu: '100', progressDeadlineSeconds: 2 });
    const { answer } = await untilReady(() => workload.scaleFor('v2', 50), 60_000);
    expect(answer.ready).toBe(false);
    expect(answer.stuck).toMatch(/^api-canary: ReplicaSet "api-canary-[a-z0-9]+" has timed out progressing\.$/);
  });

  it('puts a half-promoted stable back on the stable image', async () => {
    const { workload, deployment } = await fixture(2);
    await untilReady(() => workload.scaleFor('v2', 50));
    await workload.promote('v2');
    expect((await deployment('api')).spec.template.spec.containers[0]!.image).toBe('example.test/api:2.0');
    await workload.restoreStable('v1');
    const stable = await deployment('api');
    expect([stable.spec.template.spec.containers[0]!.image, stable.spec.template.metadata?.labels?.['cutover.dev/version']]).toEqual(['example.test/api:1.0', 'v1']);
  });

  it('preflight names a missing Deployment and missing permissions', async () => {
    const { ns, opts } = await fixture(1);
    const missing = new KubernetesWorkload({ ...opts, deployment: 'patient-api' });
    await expect(missing.preflight()).rejects.toThrow(`Deployment patient-api not found in namespace ${ns} (context cutover-test)`);
    const file = await cluster.restrictedKubeconfig(ns, 'viewer', [
      { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get'] },
      { apiGroups: [''], resources: ['services'], verbs: ['get'] },
    ]);
    const restricted = new KubernetesWorkload({ ...opts, kube: () => connectKube({ kubeconfig: file, namespace: ns }) });
    const error = await restricted.preflight().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toBe(`context cutover-test may not update deployments.apps api, create deployments.apps, update deployments.apps api-canary, create services in namespace ${ns}`);
  });
});
