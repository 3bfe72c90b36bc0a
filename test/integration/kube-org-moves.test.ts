/**
 * Org moves through the Kubernetes routers, measured with real traffic through Traefik: 120 orgs
 * pinned by header, moved between versions in batches by the CLI (`deploy orgs pin|move`, each
 * batch one router write) while 16 keep-alive clients send requests for every org in turn. For
 * every org, once one of its requests was answered by the version it moved to, no request of
 * that org sent after that answer may be answered by another version (the nginx proof's property,
 * test/integration/org-atomicity.test.ts); and no request may fail.
 *
 * The rollout is real and paused: `deploy promote --to v2` with one step at weight 0 that pauses,
 * so v2 has the canary role and orgs can be pinned to either version — within ingress-nginx's
 * limit too, which keeps orgs on stable only while the canary weight is 0. The Deployments are
 * kwok's and serve nothing; the Services have no selector and their EndpointSlices name the sample
 * services in the backends' network namespace (test/helpers/backend-netns.ts), standing in for
 * the pods. Traefik serves a move at its own pace after the router's write returns, so answers
 * by the old version to requests sent after the CLI returned are counted and reported, not
 * judged: the property holds from the first answer by the new version.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { startBackendNetwork, type Backend, type BackendNetwork } from '../helpers/backend-netns.js';
import { testCluster, type TestCluster } from '../helpers/cluster.js';
import { serviceFor } from '../helpers/kube-backends.js';
import { checkMove, movesOf, orgLoad, type PinWrite } from '../helpers/org-moves.js';
import { DEPLOY, jsonLines, waitFor } from '../helpers/sandbox.js';
import { startTraefik, type Traefik } from '../helpers/traefik.js';
import { send } from '../helpers/traffic.js';

let cluster: TestCluster;
let network: BackendNetwork | undefined;
let traefik: Traefik;
const backends: Record<string, Backend> = {};

beforeAll(async () => {
  cluster = await testCluster();
  network = await startBackendNetwork();
  for (const b of await Promise.all(['v1', 'v2'].map((v) => network!.start(v)))) backends[b.version] = b;
  traefik = await startTraefik(cluster);
}, 240_000);

afterAll(async () => {
  await traefik?.stop();
  await network?.stop();
});

const used: string[] = [];

// Routes left behind would slow every later rebuild of Traefik's configuration.
afterEach(async () => {
  for (const ns of used.splice(0)) {
    await cluster.api('DELETE', `/apis/gateway.networking.k8s.io/v1/namespaces/${ns}/httproutes`);
    await cluster.api('DELETE', `/apis/networking.k8s.io/v1/namespaces/${ns}/ingresses`);
    await waitFor(`Traefik to drop the routes of ${ns}`, async () => (await traefik.routing(ns)) === '');
  }
});

const ORGS = Array.from({ length: 120 }, (_, i) => `org-${String(i).padStart(3, '0')}`);
const range = (from: number, to: number) => ORGS.slice(from, to);

/** The batches, after every org was pinned to v1: [label, orgs, version]. */
const BATCHES: Array<[string, string[], string]> = [
  ['0-29 to v2', range(0, 30), 'v2'],
  ['30-59 to v2', range(30, 60), 'v2'],
  ['60-89 to v2', range(60, 90), 'v2'],
  ['30-59 back to v1', range(30, 60), 'v1'],
  ['90-119 to v2', range(90, 120), 'v2'],
  ['0-14 and 60-74 back to v1', [...range(0, 15), ...range(60, 75)], 'v1'],
  ['0-29 to v2 (15-29 already there)', range(0, 30), 'v2'],
];

/**
 * A namespace with Deployment api (kwok), Services api and api-canary whose endpoints are the v1
 * and v2 backends, the router's own objects (`router` writes deploy.yaml's router section and
 * makes what it needs), and a deploy.yaml whose rollout pauses at weight 0.
 */
async function project(prefix: string, router: (ns: string, host: string) => Promise<string>) {
  const ns = await cluster.namespace(prefix);
  used.push(ns);
  const host = `${ns}.test`;
  await cluster.apiDeployment(ns, 2);
  // The canary's objects first: once the stable Service answers through Traefik, both are known to it.
  await serviceFor(cluster, ns, 'api-canary', backends.v2!);
  await serviceFor(cluster, ns, 'api', backends.v1!);
  const dir = mkdtempSync(join(tmpdir(), 'cutover-kube-orgs-'));
  const file = join(dir, 'deploy.yaml');
  writeFileSync(
    file,
    `service: api
stable: v1
versions:
  v1: { image: "example.test/api:1.0" }
  v2: { image: "example.test/api:2.0" }
kubernetes:
  kubeconfig: ${cluster.kubeconfig}
  namespace: ${ns}
workload:
  type: kubernetes
  deployment: api
  progressDeadline: 60s
${await router(ns, host)}
orgs:
  list: [${ORGS.join(', ')}]
state:
  type: local
strategy:
  canary:
    steps:
      - { weight: 0, hold: 100ms, pause: true }
`,
  );
  const deploy = (args: string[]) => execa(DEPLOY, [...args, '-f', file, '-o', 'json'], { reject: false, env: { CI: 'true' }, cwd: dir, timeout: 120_000 });
  return { ns, host, deploy };
}

/**
 * Pause a rollout of v2 at weight 0, pin every org to v1, then move the batches by the CLI under
 * load; judge every move and report the figures. `generations` says whether the router's object
 * counts each write as a generation (an HTTPRoute does; an Ingress's annotations do not).
 */
async function movesUnderLoad(label: string, p: Awaited<ReturnType<typeof project>>, generations: boolean) {
  const started = await p.deploy(['promote', '--to', 'v2']);
  expect(started.exitCode, `${started.stdout.slice(-1_000)}\n${started.stderr}`).toBe(4);
  await waitFor('Traefik to serve the host', async () => (await send(`${traefik.url}/`, 1, { host: p.host }, 1)).byVersion.v1 === 1);

  const load = orgLoad(`${traefik.url}/`, ORGS, { header: 'X-Org-Id', headers: { host: p.host } });
  const writes: PinWrite[] = [];
  const written: number[] = [];
  let pins: Record<string, string> = {};
  const write = async (what: string, args: string[], orgs: string[], version: string) => {
    const start = performance.now();
    const run = await p.deploy(args);
    const end = performance.now();
    expect(run.exitCode, `${what}: ${run.stderr}`).toBe(0);
    const event = jsonLines(run.stdout).find((e) => e.event === 'orgs')!;
    if (event.generation !== null) written.push(event.generation as number);
    const moved = Object.fromEntries(orgs.map((o) => [o, version]));
    pins = { ...pins, ...moved };
    writes.push({ label: what, pins, start, end });
    // Each org moved is seen on its new version a few times before the next batch moves.
    await load.seen(moved, end);
  };
  let answers: Awaited<ReturnType<typeof load.stop>>;
  try {
    await write('all 120 pinned to v1', ['orgs', 'pin', ...ORGS, '--to', 'v1'], ORGS, 'v1');
    for (const [what, orgs, version] of BATCHES) await write(what, ['orgs', 'move', ...orgs, '--to', version], orgs, version);
  } finally {
    answers = await load.stop();
  }

  const all = [...answers.values()].flat();
  expect(all.filter((a) => a.failure).map((a) => `${a.org}: ${a.failure}`)).toEqual([]);
  // One write per batch: the HTTPRoute's generation moves by one each time.
  if (generations) expect(written.slice(1).map((g, i) => g - written[i]!)).toEqual(BATCHES.map(() => 1));

  const moves = movesOf(ORGS, writes);
  expect(moves).toHaveLength(30 * 6 + 15);
  let checked = 0;
  const late: number[] = [];
  for (const move of moves) {
    const result = checkMove(move, answers.get(move.org)!);
    // Every org was answered by its new version, so the check is never vacuous.
    expect(result.firstNew, `${move.org} never answered by ${move.to} after "${move.at.label}"`).toBeDefined();
    const detail = result.violations.map((a) => `${a.version} for a request sent ${(a.sent - result.firstNew!).toFixed(1)} ms after the first ${move.to} answer`);
    expect(detail, `${move.org} moved ${move.from} → ${move.to} by "${move.at.label}"`).toEqual([]);
    checked += result.checked;
    late.push(...result.lateOld.map((a) => a.sent - move.at.end));
  }
  expect(checked).toBeGreaterThan(all.length / 3);
  const cli = writes.map((w) => w.end - w.start);
  console.log(
    `${label}: ${all.length} requests for ${ORGS.length} orgs, none failed; ${writes.length} writes by the CLI (${Math.min(...cli).toFixed(0)}–${Math.max(...cli).toFixed(0)} ms each), ${moves.length} org moves; ` +
      `${checked} requests checked after each org's first answer by its new version, 0 violations; ` +
      `${late.length} answers by the old version to requests sent after the CLI returned (up to ${late.length ? Math.max(...late).toFixed(1) : 0} ms after)`,
  );
}

describe('org moves through the Kubernetes routers and Traefik, by the CLI, under keep-alive load', () => {
  it('gateway-api: 120 orgs in batches, never served by the version they left once served by the new one', async () => {
    const p = await project('km-gw', async (_ns, host) =>
      `router:\n  type: gateway-api\n  httpRoute: api\n  service: api\n  parentRefs: [{ name: ${traefik.parentRef.name}, namespace: ${traefik.parentRef.namespace} }]\n  hostnames: ["${host}"]`);
    await movesUnderLoad('gateway-api', p, true);
  }, 240_000);

  it('ingress-nginx: 120 orgs in batches at canary weight 0, never served by the version they left once served by the new one', async () => {
    const p = await project('km-in', async (ns, host) => {
      await cluster.api('POST', `/apis/networking.k8s.io/v1/namespaces/${ns}/ingresses`, {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'Ingress',
        metadata: { name: 'api' },
        spec: { ingressClassName: traefik.ingressClass, rules: [{ host, http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'api', port: { number: 80 } } } }] } }] },
      });
      return 'router:\n  type: ingress-nginx\n  ingress: api\n  service: api';
    });
    await movesUnderLoad('ingress-nginx', p, false);
  }, 240_000);
});
