/**
 * No secret anywhere it should not be. Rollouts run with AWS credentials, the nginx admin secret,
 * an audit signing key and a Kubernetes bearer token in the environment and in files; then the
 * state (a folder, or the cluster's objects), the audit log and everything printed (text and
 * JSON, stdout and stderr) are searched for each of them.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/parse.js';
import { rbacRules } from '../../src/kube/rbac.js';
import { adminSecret } from '../../src/routers/nginx/secrets.js';
import { startMoto, type MotoProcess } from '../../src/sandbox/moto-process.js';
import { createAlb, REGION } from '../helpers/alb.js';
import { runCli } from '../helpers/cli.js';
import { testCluster } from '../helpers/cluster.js';
import { startSandbox, type Sandbox } from '../helpers/sandbox.js';

/** Every file under `dir`, as text (the nginx prefix's own secret files excepted: they are where it belongs). */
function filesUnder(dir: string, skip: (path: string) => boolean): { path: string; text: string }[] {
  const out: { path: string; text: string }[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (skip(path)) continue;
    if (statSync(path).isDirectory()) out.push(...filesUnder(path, skip));
    else out.push({ path, text: readFileSync(path, 'latin1') });
  }
  return out;
}

/** The places a secret was found in, by the secret's name. */
function leaks(secrets: Record<string, string>, places: { path: string; text: string }[]): string[] {
  const found: string[] = [];
  for (const [what, secret] of Object.entries(secrets)) {
    for (const p of places) if (p.text.includes(secret)) found.push(`${what} in ${p.path}`);
  }
  return found;
}

/** A webhook receiver on loopback keeping every request it got. */
interface Receiver {
  url: string;
  received: { path: string; body: string; headers: Record<string, unknown> }[];
  stop(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const received: Receiver['received'] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push({ path: req.url ?? '', body, headers: req.headers });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, received, stop: () => new Promise((done) => server.close(() => done())) };
}

const signing = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
// The base64 body of the key, the part that is the secret (the PEM armour lines are not).
const signingBody = signing.split('\n').slice(1, -2).join('');

describe('secrets stay where they belong', () => {
  let sb: Sandbox;
  let moto: MotoProcess;
  let receiver: Receiver;
  beforeAll(async () => {
    receiver = await startReceiver();
    sb = await startSandbox('    steps:\n      - { weight: 50, hold: 200ms }\n      - { weight: 100 }\n', `audit:\n  signingKey: { env: CUTOVER_AUDIT_KEY }\nnotify:\n  - { type: webhook, url: "${receiver.url}", secretEnv: CUTOVER_WEBHOOK_SECRET }\n  - { type: slack, urlEnv: CUTOVER_SLACK_URL }\n`);
    moto = await startMoto();
  }, 60_000);
  afterAll(async () => {
    await sb?.stop();
    await moto?.stop();
    await receiver?.stop();
  });

  it('nginx rollout with the admin secret, a signing key and notifier secrets: none in the state, the audit log, the reports, any output or any notification', async () => {
    const slackPath = '/services/T000LEAK/B000LEAK/leak-canary-slack-token-42';
    const env = {
      CUTOVER_AUDIT_KEY: signing,
      AWS_SECRET_ACCESS_KEY: 'leak-canary-aws-secret-0123456789abcdef',
      CUTOVER_WEBHOOK_SECRET: 'leak-canary-webhook-secret-5150',
      CUTOVER_SLACK_URL: `${receiver.url}${slackPath}`,
    };
    const outputs: { path: string; text: string }[] = [];
    const report = join(sb.dir, 'report');
    for (const [i, args] of [['promote', '--to', 'v2', '-y'], ['status'], ['history', '--verify'], ['router', 'rotate-secret'], ['promote', '--to', 'v1', '-y', '-o', 'json'], ['abort', '--reason', 'drill', '-o', 'json'], ['status', '-o', 'json'], ['history', '-o', 'json'], ['report', '--out', `${report}.html`], ['report', '--format', 'markdown', '--out', `${report}.md`]].entries()) {
      const run = await sb.deploy(args, { env });
      outputs.push({ path: `stdout of deploy ${args.join(' ')} (${i})`, text: run.stdout }, { path: `stderr of deploy ${args.join(' ')} (${i})`, text: run.stderr });
    }
    expect(outputs.find((o) => o.path.startsWith('stdout of deploy promote --to v2'))!.text).toMatch(/promoted/);
    const admin = adminSecret(join(sb.dir, 'nginx'));
    const secrets = {
      'the nginx admin secret': admin,
      'the audit signing key': signingBody,
      'the AWS secret key': env.AWS_SECRET_ACCESS_KEY,
      'the webhook secret': env.CUTOVER_WEBHOOK_SECRET,
      "the Slack URL's token": 'leak-canary-slack-token-42',
    };
    // The nginx prefix keeps its own secret (0600); everything else in the sandbox is searched.
    const files = filesUnder(sb.dir, (p) => p.endsWith('admin.secret') || p.endsWith('org-cookie.key'));
    for (const kept of ['audit.jsonl', 'state.json', 'report.html', 'report.md']) expect(files.some((f) => f.path.endsWith(kept)), kept).toBe(true);
    // Every notification as the receivers got it: bodies and headers (the signature is the
    // secret's HMAC of the body, never the secret).
    expect(receiver.received.some((r) => r.path === slackPath)).toBe(true);
    expect(receiver.received.filter((r) => r.path !== slackPath).length).toBeGreaterThan(3);
    const payloads = receiver.received.map((r, i) => ({ path: `notification ${i} to ${r.path === slackPath ? 'slack' : 'the webhook'}`, text: `${r.body}\n${JSON.stringify(r.headers)}` }));
    expect(leaks(secrets, [...files, ...outputs, ...payloads])).toEqual([]);
  });

  it('ALB rollout with AWS credentials in the environment: none in the state, the audit log or any output', async () => {
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    const secret = 'leak-canary-aws-secret-fedcba9876543210';
    process.env.AWS_ACCESS_KEY_ID = 'AKIALEAKCANARY000001';
    process.env.AWS_SECRET_ACCESS_KEY = secret;
    process.env.AWS_EC2_METADATA_DISABLED = 'true';
    delete process.env.AWS_PROFILE;
    try {
      const alb = await createAlb(moto.url);
      const dir = join(sb.dir, 'alb');
      const file = join(sb.dir, 'alb.yaml');
      writeFileSync(file, `service: patient-api\nstable: v1\nversions:\n  v1: {}\n  v2: {}\nrouter:\n  type: alb\n  listenerArn: ${alb.listenerArn}\n  targetGroups:\n    v1: ${alb.targetGroups.v1}\n    v2: ${alb.targetGroups.v2}\naws:\n  region: ${REGION}\n  endpointUrl: ${moto.url}\nstate:\n  type: local\n  dir: ${dir}\nstrategy:\n  canary:\n    checkInterval: 50ms\n    steps:\n      - { weight: 50, hold: 100ms }\n`);
      const outputs: { path: string; text: string }[] = [];
      for (const args of [['promote', '--to', 'v2', '-y'], ['promote', '--to', 'v1', '-y', '-o', 'json'], ['abort', '-o', 'json'], ['status'], ['history'], ['iam-policy']]) {
        const run = await runCli([...args, '-f', file]);
        outputs.push({ path: `stdout of deploy ${args.join(' ')}`, text: run.stdout }, { path: `stderr of deploy ${args.join(' ')}`, text: run.stderr });
      }
      expect(outputs[0]!.text).toMatch(/promoted/);
      expect(leaks({ 'the AWS secret key': secret, 'the AWS access key id': 'AKIALEAKCANARY000001' }, [...filesUnder(dir, () => false), ...outputs])).toEqual([]);
    } finally {
      process.env.AWS_ACCESS_KEY_ID = saved.id ?? 'testing';
      process.env.AWS_SECRET_ACCESS_KEY = saved.secret ?? 'testing';
    }
  });
});

describe('a Kubernetes rollout with a bearer token', () => {
  it('authenticates with the token in its kubeconfig, and the token is in none of the cluster state, the audit log, the report or any output', async () => {
    const cluster = await testCluster();
    const ns = await cluster.namespace('leak');
    await cluster.apiDeployment(ns, 2);
    await cluster.api('POST', `/api/v1/namespaces/${ns}/services`, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'api' }, spec: { selector: { app: 'api' }, ports: [{ port: 80, targetPort: 8080 }] } });
    const dir = mkdtempSync(join(tmpdir(), 'cutover-leak-kube-'));
    const yaml = (kubeconfig: string) => `service: api
stable: v1
versions:
  v1: { image: "example.test/api:1.0" }
  v2: { image: "example.test/api:2.0" }
kubernetes: { kubeconfig: ${kubeconfig}, namespace: ${ns} }
workload: { type: kubernetes, deployment: api, progressDeadline: 180s }
router: { type: gateway-api, httpRoute: api, service: api, parentRefs: [{ name: public-gateway }] }
state: { type: kubernetes, lease: 10s }
strategy:
  canary:
    checkInterval: 100ms
    steps:
      - { weight: 50, hold: 300ms }
      - { weight: 100 }
`;
    // A ServiceAccount bound to exactly the Role `deploy rbac` prints; its token is the only credential.
    const tokenConfig = await cluster.restrictedKubeconfig(ns, 'cutover', rbacRules(parseConfig(yaml('kubeconfig'), 'deploy.yaml')));
    const token = /^\s*token: (\S+)$/m.exec(readFileSync(tokenConfig, 'utf8'))![1]!;
    expect(token.split('.')).toHaveLength(3);
    const file = join(dir, 'deploy.yaml');
    writeFileSync(file, yaml(tokenConfig));

    // The same token with its signature changed is refused: every command below authenticated with the real one.
    const forged = join(dir, 'forged-kubeconfig');
    writeFileSync(forged, readFileSync(tokenConfig, 'utf8').replace(token, `${token.slice(0, -4)}AAAA`), { mode: 0o600 });
    const refused = await runCli(['status', '-f', file, '--kubeconfig', forged]);
    expect([refused.code, refused.stderr]).toEqual([2, expect.stringContaining('the credentials were refused (401)')]);

    const outputs: { path: string; text: string }[] = [];
    const report = join(dir, 'report.html');
    for (const args of [['promote', '--to', 'v2', '-y'], ['status'], ['history', '--verify'], ['promote', '--to', 'v1', '-y', '-o', 'json'], ['status', '-o', 'json'], ['history', '--verify', '-o', 'json'], ['report', '--out', report]]) {
      const run = await runCli([...args, '-f', file]);
      outputs.push({ path: `stdout of deploy ${args.join(' ')}`, text: run.stdout }, { path: `stderr of deploy ${args.join(' ')}`, text: run.stderr });
      expect(run.code, `deploy ${args.join(' ')}: ${run.stderr}`).toBe(0);
    }
    expect(outputs[0]!.text).toMatch(/promoted/);
    expect((await cluster.api<{ spec: { template: { spec: { containers: { image: string }[] } } } }>('GET', `/apis/apps/v1/namespaces/${ns}/deployments/api`)).body.spec.template.spec.containers[0]!.image).toBe('example.test/api:1.0');

    // Everything Cutover keeps in the cluster: state, audit segments, requests, the Lease and its head, the route.
    const objects: { path: string; text: string }[] = [];
    for (const collection of [`/api/v1/namespaces/${ns}/configmaps`, `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases`, `/apis/gateway.networking.k8s.io/v1/namespaces/${ns}/httproutes`, `/apis/apps/v1/namespaces/${ns}/deployments`, `/api/v1/namespaces/${ns}/services`]) {
      const { body } = await cluster.api<{ items: { metadata: { name: string } }[] }>('GET', collection);
      for (const item of body.items) objects.push({ path: `${collection}/${item.metadata.name}`, text: JSON.stringify(item) });
    }
    const names = objects.map((o) => o.path.split('/').at(-1));
    for (const kept of ['cutover-api', 'cutover-api-audit-0001']) expect(names, kept).toContain(kept);
    expect(objects.some((o) => o.text.includes('"cutover.dev/audit-head"'))).toBe(true);
    const files = filesUnder(dir, (p) => p === forged);
    expect(files.some((f) => f.path === report)).toBe(true);
    const secrets = { 'the kube token': token, "the kube token's signature": token.split('.')[2]! };
    expect(leaks(secrets, [...objects, ...files, ...outputs])).toEqual([]);
  }, 300_000);
});
