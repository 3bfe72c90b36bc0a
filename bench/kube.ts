/**
 * `npm run bench`, Kubernetes: on the real test control plane (scripts/test-cluster), a whole
 * canary of a 4-replica Deployment through the gateway-api router with state in the cluster —
 * its wall time and how long each step waited for the canary's pods — then `deploy abort` of a
 * second rollout (time until traffic is back on stable and the canary scaled down), and the cold
 * start of `deploy status` reading state from the cluster. Prints figures, asserts nothing.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connectKube } from '../src/kube/connect.js';

const root = resolve(import.meta.dirname, '../..');
const deploy = join(root, 'bin', 'deploy');
const script = join(root, 'scripts', 'test-cluster');
const RUNS = Number(process.env.BENCH_RUNS ?? 15);

const clusterDir = mkdtempSync(join(tmpdir(), 'cutover-bench-kube-'));
const t0 = performance.now();
execFileSync('bash', [script, 'up', clusterDir], { stdio: ['ignore', 'ignore', 'inherit'] });
const startMs = performance.now() - t0;
const kube = await connectKube({ kubeconfig: join(clusterDir, 'kubeconfig') });
const api = (method: string, path: string, body?: unknown) => kube.request(method, path, body === undefined ? {} : { body });

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

try {
  const ns = 'bench';
  await api('POST', '/api/v1/namespaces', { metadata: { name: ns } });
  await api('POST', `/apis/apps/v1/namespaces/${ns}/deployments`, {
    metadata: { name: 'api' },
    spec: {
      replicas: 4,
      selector: { matchLabels: { app: 'api' } },
      template: { metadata: { labels: { app: 'api' } }, spec: { containers: [{ name: 'api', image: 'example.test/api:1.0' }], tolerations: [{ key: 'kwok.x-k8s.io/node', operator: 'Exists' }] } },
    },
  });
  await api('POST', `/api/v1/namespaces/${ns}/services`, { metadata: { name: 'api' }, spec: { selector: { app: 'api' }, ports: [{ port: 80 }] } });
  const dir = mkdtempSync(join(tmpdir(), 'cutover-bench-kube-project-'));
  const file = join(dir, 'deploy.yaml');
  writeFileSync(
    file,
    `service: api\nstable: v1\nversions:\n  v1: { image: "example.test/api:1.0" }\n  v2: { image: "example.test/api:2.0" }\n  v3: { image: "example.test/api:3.0" }\n` +
      `kubernetes: { kubeconfig: ${join(clusterDir, 'kubeconfig')}, namespace: ${ns} }\nworkload: { type: kubernetes, deployment: api }\n` +
      `router: { type: gateway-api, httpRoute: api, service: api, parentRefs: [{ name: gw }] }\nstate: { type: kubernetes }\n` +
      `strategy:\n  canary:\n    checkInterval: 100ms\n    steps: [{ weight: 1, hold: 0s }, { weight: 5, hold: 0s }, { weight: 25, hold: 0s }, { weight: 50, hold: 0s }, { weight: 100, hold: 0s }]\n`,
  );
  const run = (args: string[]) => spawnSync(deploy, [...args, '-f', file, '-o', 'json'], { encoding: 'utf8', env: { ...process.env, CI: 'true' } });

  const c0 = performance.now();
  const canary = run(['promote', '--to', 'v2']);
  const canaryMs = performance.now() - c0;
  if (canary.status !== 0) throw new Error(`canary exited ${canary.status}: ${canary.stderr}`);
  const events = canary.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  const waits = events.filter((e) => e.event === 'error' && String(e.message).includes('not ready')).length;

  // A second rollout, aborted at its first step: time until the abort command returns.
  writeFileSync(file, readFileSync(file, 'utf8').replace('{ weight: 1, hold: 0s }', '{ weight: 1, hold: 1h }'));
  const driver = spawnSync('sh', ['-c', `"${deploy}" promote --to v3 -f "${file}" >/dev/null 2>&1 & sleep 0.1; until "${deploy}" status -f "${file}" -o json | grep -q '"phase":"holding"'; do sleep 0.2; done`], { env: { ...process.env, CI: 'true' } });
  if (driver.status !== 0) throw new Error('the second rollout did not reach its first step');
  const a0 = performance.now();
  const abort = run(['abort', '--reason', 'bench']);
  const abortMs = performance.now() - a0;
  if (abort.status !== 0 && abort.status !== 3) throw new Error(`abort exited ${abort.status}: ${abort.stderr}`);
  const canaryDeployment = (await api('GET', `/apis/apps/v1/namespaces/${ns}/deployments/api-canary`)) as { spec: { replicas: number } };

  const statusMs = Array.from({ length: RUNS }, () => {
    const s0 = performance.now();
    const r = spawnSync(deploy, ['status', '-f', file], { stdio: 'ignore', env: { ...process.env, CI: 'true' } });
    if (r.status !== 0) throw new Error(`status exited ${r.status}`);
    return performance.now() - s0;
  });

  console.log(`\nKubernetes (kube-apiserver v1.36.3 + kwok on loopback; cluster up in ${(startMs / 1000).toFixed(1)} s)\n`);
  console.log(`full canary 1→5→25→50→100%, holds 0, 4 replicas     ${(canaryMs / 1000).toFixed(2)} s  (${waits} waits for canary pods; promotion included)`);
  console.log(`deploy abort of a running rollout                    ${(abortMs / 1000).toFixed(2)} s  (traffic on stable, canary scaled to ${canaryDeployment.spec.replicas})`);
  console.log(`deploy status, state in the cluster (median of ${RUNS})   ${median(statusMs).toFixed(0)} ms (min ${Math.min(...statusMs).toFixed(0)}, max ${Math.max(...statusMs).toFixed(0)})`);
} finally {
  execFileSync('bash', [script, 'down', clusterDir], { stdio: 'ignore' });
}
