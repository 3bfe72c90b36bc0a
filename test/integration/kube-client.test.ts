/**
 * The Kubernetes client against the real control plane: kubeconfig and context handling,
 * compare-and-swap on resourceVersion, and errors that name what is missing.
 */
import { describe, expect, it, beforeAll } from 'vitest';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeApiError, explainKubeError, type KubeObject } from '../../src/kube/client.js';
import { checkNamespace, connectKube } from '../../src/kube/connect.js';
import { UsageError } from '../../src/errors.js';
import { testCluster, type TestCluster } from '../helpers/cluster.js';

let cluster: TestCluster;
let ns: string;

beforeAll(async () => {
  cluster = await testCluster();
  ns = await cluster.namespace('client');
}, 240_000);

describe('connecting', () => {
  it('names the contexts there are when --context names none of them', async () => {
    const error = await connectKube({ kubeconfig: cluster.kubeconfig, context: 'prod-eu' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toBe('kubeconfig context prod-eu not found (contexts: cutover-test)');
  });

  it('refuses a kubeconfig path that does not exist', async () => {
    const error = await connectKube({ kubeconfig: '/nonexistent/kubeconfig' }).catch((e: unknown) => e);
    expect((error as Error).message).toBe('kubeconfig /nonexistent/kubeconfig: no such file');
  });

  it('says a namespace is missing, and passes one that exists', async () => {
    const missing = await connectKube({ kubeconfig: cluster.kubeconfig, namespace: 'no-such-ns' });
    await expect(checkNamespace(missing)).rejects.toThrow('namespace no-such-ns not found in context cutover-test');
    await checkNamespace(await connectKube({ kubeconfig: cluster.kubeconfig, namespace: ns }));
  });

  it('a refused token is a usage error, not a crash', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cutover-kc-'));
    const file = join(dir, 'kubeconfig');
    const text = (await import('node:fs')).readFileSync(cluster.kubeconfig, 'utf8').replace(/token: .*/, 'token: not-a-real-token');
    writeFileSync(file, text);
    const kube = await connectKube({ kubeconfig: file, namespace: ns });
    await expect(checkNamespace(kube)).rejects.toThrow('context cutover-test: the credentials were refused (401)');
  });
});

describe('compare-and-swap', () => {
  it('a replace with a stale resourceVersion is a 409 conflict and changes nothing', async () => {
    const kube = await connectKube({ kubeconfig: cluster.kubeconfig, namespace: ns });
    const path = `/api/v1/namespaces/${ns}/configmaps`;
    const created = await kube.create<KubeObject>(path, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cas' }, data: { n: '1' } });
    const second = await kube.replace<KubeObject>(`${path}/cas`, { ...created, data: { n: '2' } });
    expect(Number(second.metadata.resourceVersion)).toBeGreaterThan(Number(created.metadata.resourceVersion));
    const stale = await kube.replace(`${path}/cas`, { ...created, data: { n: '3' } }).catch((e: unknown) => e);
    expect(stale).toBeInstanceOf(KubeApiError);
    expect((stale as KubeApiError).conflict).toBe(true);
    expect((await kube.get<KubeObject & { data: Record<string, string> }>(`${path}/cas`))?.data).toEqual({ n: '2' });
    expect(await kube.get(`${path}/absent`)).toBeUndefined();
  });

  it('a forbidden call names the verb, the resource and the namespace', async () => {
    const file = await cluster.restrictedKubeconfig(ns, 'reader', [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }]);
    const kube = await connectKube({ kubeconfig: file, namespace: ns });
    expect(await kube.get(`/api/v1/namespaces/${ns}/configmaps/cas`)).toBeDefined();
    const error = await kube.create(`/api/v1/namespaces/${ns}/configmaps`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } }).catch((e: unknown) => e);
    const explained = explainKubeError(error, 'creating ConfigMap x');
    expect(explained).toBeInstanceOf(UsageError);
    expect(explained.message).toContain('cannot create resource "configmaps" in API group "" in the namespace');
    expect(await kube.can('create', { group: '', resource: 'configmaps' })).toBe(false);
    expect(await kube.can('get', { group: '', resource: 'configmaps' })).toBe(true);
  });
});
