/**
 * The real Kubernetes control plane for tests (etcd, kube-apiserver, kube-controller-manager,
 * kube-scheduler and kwok, built by scripts/test-cluster). One cluster serves the whole run: the
 * first test file that asks starts it (the others wait for it), each test works in a namespace of
 * its own, and the global setup stops it. A cluster that cannot start fails the test loudly.
 * Its admin calls use plain HTTPS, not src/kube's client: what a test reads back to check the
 * product must not pass through the code under test.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { execa } from 'execa';
import { inject } from 'vitest';

const SCRIPT = resolve(import.meta.dirname, '../../scripts/test-cluster');

/** A running test cluster, with admin access for setting up fixtures. */
export interface TestCluster {
  /** The admin kubeconfig. */
  kubeconfig: string;
  server: string;
  /** A call with admin rights; throws on a non-2xx answer unless `allow` lists its status. */
  api<T = unknown>(method: string, path: string, body?: unknown, opts?: { contentType?: string; allow?: number[] }): Promise<{ status: number; body: T }>;
  /** A fresh namespace for one test. */
  namespace(prefix: string): Promise<string>;
  /**
   * A kubeconfig for a service account of `namespace` bound to a Role with exactly `rules`
   * (a token from the TokenRequest API), to test what a restricted user sees.
   */
  restrictedKubeconfig(namespace: string, name: string, rules: unknown[]): Promise<string>;
  /** Deployment api (label app: api) of `replicas` running `image`, its pods placed on the kwok node. */
  apiDeployment(namespace: string, replicas: number, image?: string): Promise<void>;
}

let cluster: Promise<TestCluster> | undefined;

/** The run's cluster, started on first use. */
export function testCluster(): Promise<TestCluster> {
  cluster ??= start();
  return cluster;
}

async function start(): Promise<TestCluster> {
  const runDir = inject('clusterRunDir');
  const dir = join(runDir, 'cluster');
  const ready = join(runDir, 'ready');
  const failed = join(runDir, 'failed');
  let starter = false;
  try {
    mkdirSync(join(runDir, 'starting'));
    starter = true;
  } catch {
    // another test file is starting it
  }
  if (starter) {
    const result = await execa('bash', [SCRIPT, 'up', dir], { reject: false, all: true });
    if (result.exitCode !== 0) {
      writeFileSync(failed, result.all ?? '');
      throw new Error(`the test cluster did not start (scripts/test-cluster up):\n${result.all}`);
    }
    writeFileSync(ready, '');
  } else {
    const until = Date.now() + 180_000;
    while (!existsSync(ready)) {
      if (existsSync(failed)) throw new Error(`the test cluster did not start:\n${readFileSync(failed, 'utf8')}`);
      if (Date.now() > until) throw new Error('the test cluster did not become ready within 180 s');
      await delay(200);
    }
  }
  return connectCluster(dir);
}

/** Admin access to the cluster `scripts/test-cluster up DIR` started in `dir`. */
export function connectCluster(dir: string): TestCluster {
  const server = readFileSync(join(dir, 'server'), 'utf8').trim();
  const token = readFileSync(join(dir, 'admin.token'), 'utf8').trim();
  const ca = join(dir, 'pki', 'apiserver.crt');
  const caPem = readFileSync(ca);
  const api: TestCluster['api'] = async (method, path, body, opts = {}) => {
    const { request } = await import('node:https');
    const payload = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    return new Promise((resolveP, reject) => {
      const req = request(server + path, {
        method,
        ca: caPem,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(payload ? { 'content-type': opts.contentType ?? 'application/json', 'content-length': String(payload.length) } : {}),
        },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          const parsed = text ? JSON.parse(text) : undefined;
          if ((status < 200 || status >= 300) && !opts.allow?.includes(status)) {
            reject(new Error(`${method} ${path} → ${status}: ${text.slice(0, 400)}`));
          } else resolveP({ status, body: parsed });
        });
      });
      req.on('error', reject);
      if (payload) req.write(payload);
      req.end();
    });
  };
  let made = 0;
  const kubeconfigFor = (user: string, userToken: string, file: string) => {
    writeFileSync(file, [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: cutover-test',
      '  cluster:',
      `    server: ${server}`,
      `    certificate-authority: ${ca}`,
      'users:',
      `- name: ${user}`,
      '  user:',
      `    token: ${userToken}`,
      'contexts:',
      '- name: cutover-test',
      '  context:',
      '    cluster: cutover-test',
      `    user: ${user}`,
      'current-context: cutover-test',
      '',
    ].join('\n'), { mode: 0o600 });
    return file;
  };
  return {
    kubeconfig: join(dir, 'kubeconfig'),
    server,
    api,
    async apiDeployment(namespace, replicas, image = 'example.test/api:1.0') {
      await api('POST', `/apis/apps/v1/namespaces/${namespace}/deployments`, {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'api', labels: { app: 'api' } },
        spec: {
          replicas,
          selector: { matchLabels: { app: 'api' } },
          template: {
            metadata: { labels: { app: 'api' } },
            spec: { containers: [{ name: 'api', image }], tolerations: [{ key: 'kwok.x-k8s.io/node', operator: 'Exists', effect: 'NoSchedule' }] },
          },
        },
      });
    },
    async namespace(prefix) {
      made += 1;
      const name = `${prefix}-${process.pid}-${made}-${Math.random().toString(36).slice(2, 6)}`.slice(0, 63);
      await api('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
      return name;
    },
    async restrictedKubeconfig(namespace, name, rules) {
      await api('POST', `/api/v1/namespaces/${namespace}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name } });
      await api('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/roles`, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name }, rules });
      await api('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/rolebindings`, {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
        subjects: [{ kind: 'ServiceAccount', name, namespace }],
      });
      const { body } = await api<{ status: { token: string } }>('POST', `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`, {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: { expirationSeconds: 3600 },
      });
      return kubeconfigFor(`${namespace}-${name}`, body.status.token, join(dir, `kubeconfig-${namespace}-${name}`));
    },
  };
}
