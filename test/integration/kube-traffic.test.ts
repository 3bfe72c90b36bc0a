/**
 * The `gateway-api` and `ingress-nginx` routers proven with real traffic: what they write to the
 * test cluster is read by a real data plane — Traefik's Gateway API and ingress-nginx providers
 * (test/helpers/traefik.ts) — and every claim is judged by requests through it to sample services
 * of each version (test/helpers/backend-netns.ts). Held to the nginx router's standard: 2,000
 * requests per step, each share within 4.5 binomial standard deviations, no request failed.
 * After each write the test waits for Traefik to serve the new routes (an event, with a
 * deadline), never for a fixed time. Every test's routes carry a host name of their own, since
 * all of them share Traefik's one entry point.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectKube } from '../../src/kube/connect.js';
import { GatewayApiRouter } from '../../src/routers/gateway-api/router.js';
import { IngressNginxRouter } from '../../src/routers/ingress-nginx/router.js';
import type { RouteSpec } from '../../src/routers/router.js';
import { startBackendNetwork, type Backend, type BackendNetwork } from '../helpers/backend-netns.js';
import { testCluster, type TestCluster } from '../helpers/cluster.js';
import { endpointsFor, serviceFor, serviceOnly } from '../helpers/kube-backends.js';
import { waitFor } from '../helpers/sandbox.js';
import { startTraefik, type Traefik } from '../helpers/traefik.js';
import { expectShare, load, send } from '../helpers/traffic.js';

let cluster: TestCluster;
let network: BackendNetwork | undefined;
let traefik: Traefik;
const backends: Record<string, Backend> = {};

beforeAll(async () => {
  cluster = await testCluster();
  network = await startBackendNetwork();
  for (const b of await Promise.all(['v1', 'v2', 'admin'].map((v) => network!.start(v)))) backends[b.version] = b;
  traefik = await startTraefik(cluster);
}, 240_000);

afterAll(async () => {
  await traefik?.stop();
  await network?.stop();
});

/** Namespaces of the running test, whose routes are deleted after it. */
const used: string[] = [];

// Traefik rebuilds its whole configuration on every change, so routes left behind (7,000 pinned
// orgs among them) would slow every later test; and a default backend would catch their requests.
afterEach(async () => {
  for (const ns of used.splice(0)) {
    await cluster.api('DELETE', httpRoutes(ns));
    await cluster.api('DELETE', ingresses(ns));
    await waitFor(`Traefik to drop the routes of ${ns}`, async () => (await traefik.routing(ns)) === '');
  }
});

const roles = { v1: 'stable', v2: 'canary' } as const;
const step = (canary: number, extra: Partial<RouteSpec> = {}): RouteSpec => ({ weights: { v1: 100 - canary, v2: canary }, roles, ...extra });
type Headers = Record<string, string>;
const httpRoutes = (ns: string) => `/apis/gateway.networking.k8s.io/v1/namespaces/${ns}/httproutes`;
const ingresses = (ns: string) => `/apis/networking.k8s.io/v1/namespaces/${ns}/ingresses`;

/** `n` requests (2,000 by default) all answered, the candidate's share p. */
async function expectSplit(p: number, headers: Headers, n = 2_000): Promise<void> {
  const tally = await send(`${traefik.url}/`, n, headers);
  expect(tally.failures).toEqual([]);
  expect((tally.byVersion.v1 ?? 0) + (tally.byVersion.v2 ?? 0), JSON.stringify(tally.byVersion)).toBe(n);
  expectShare(tally.byVersion.v2 ?? 0, n, p);
  const { host, ...rest } = headers;
  console.log(`${host}${Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : ''}: ${tally.byVersion.v2 ?? 0} of ${n} on v2 (${(((tally.byVersion.v2 ?? 0) / n) * 100).toFixed(2)}%, expected ${+(p * 100).toFixed(4)}%), none failed`);
}

/** 400 requests (8 clients), every one answered by `version`. */
async function expectPinned(version: string, headers: Headers): Promise<void> {
  const tally = await send(`${traefik.url}/`, 400, headers, 8);
  expect(tally.failures).toEqual([]);
  expect(tally.byVersion, `versions that answered ${JSON.stringify(headers)}`).toEqual({ [version]: 400 });
}

/**
 * A namespace with Services patient-api (v1) and patient-api-canary (v2). The canary's are
 * written first: Traefik's caches receive each kind of object in write order, so once the stable
 * Service answers through Traefik, the canary's objects are known to it too.
 */
async function namespaceWithBackends(prefix: string, others: Record<string, Backend> = {}): Promise<{ ns: string; at: (headers?: Headers) => Headers }> {
  const ns = await cluster.namespace(prefix);
  used.push(ns);
  for (const [name, backend] of Object.entries(others)) await serviceFor(cluster, ns, name, backend);
  await serviceFor(cluster, ns, 'patient-api-canary', backends.v2!);
  await serviceFor(cluster, ns, 'patient-api', backends.v1!);
  return { ns, at: (headers = {}) => ({ host: `${ns}.test`, ...headers }) };
}

/** A namespace whose Services Traefik's Gateway provider resolves already, and a gateway-api router over it. */
async function gatewayFixture(prefix: string, orgHeader = 'X-Org-Id') {
  const { ns, at } = await namespaceWithBackends(prefix);
  // A throwaway route to the stable Service, answered once Traefik's caches hold both Services:
  // the router's first write creates the route, on which no controller has reported yet, so it
  // does not wait, and requests routed to a Service Traefik has not seen are answered 500.
  const warmUp = { host: `warm-up.${ns}.test` };
  await cluster.api('POST', httpRoutes(ns), {
    apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name: 'warm-up' },
    spec: { parentRefs: [traefik.parentRef], hostnames: [warmUp.host], rules: [{ backendRefs: [{ name: 'patient-api', port: 80 }] }] },
  });
  await waitFor('Traefik to route to the stable Service', async () => (await send(`${traefik.url}/`, 1, warmUp, 1)).byVersion.v1 === 1);
  await cluster.api('DELETE', `${httpRoutes(ns)}/warm-up`);
  await waitFor('Traefik to drop the warm-up route', async () => (await traefik.routing(ns)) === '');
  const kube = await connectKube({ kubeconfig: cluster.kubeconfig, namespace: ns });
  const router = new GatewayApiRouter({ service: 'patient-api', canaryService: 'patient-api-canary', port: 80, orgHeader, httpRoute: 'patient-api', parentRefs: [traefik.parentRef], hostnames: [at().host!], acceptTimeoutMs: 10_000, acceptPollMs: 50 }, kube);
  type Route = { status?: { parents?: Array<{ controllerName: string; conditions?: Array<{ type: string; status: string; observedGeneration?: number }> }> } };
  /** The generation Traefik last reported Accepted=True for, 0 before it reported. */
  const acceptedGeneration = async () => {
    const { body } = await cluster.api<Route>('GET', `${httpRoutes(ns)}/patient-api`);
    const parent = body.status?.parents?.find((p) => p.controllerName === 'traefik.io/gateway-controller');
    return parent?.conditions?.find((c) => c.type === 'Accepted' && c.status === 'True')?.observedGeneration ?? 0;
  };
  /** Write `spec` and wait until Traefik serves it. */
  const apply = (spec: RouteSpec) => traefik.settled(ns, () => router.apply(spec));
  return { ns, at, router, apply, acceptedGeneration };
}

type Condition = { type: string; status: string; reason?: string; message?: string; observedGeneration?: number };

/**
 * A namespace whose stable Service has its endpoint and whose canary Service has no EndpointSlice
 * yet, with the route already written (100% on stable, the canary's ref at weight 0) and served.
 * `routerFor(ms)` is a gateway-api router over it that waits `ms` for acceptance; `conditions(g)`
 * what Traefik reports about generation `g` (or a later one), by condition type.
 */
async function unresolvedFixture(prefix: string) {
  const ns = await cluster.namespace(prefix);
  used.push(ns);
  await serviceOnly(cluster, ns, 'patient-api-canary', backends.v2!);
  await serviceFor(cluster, ns, 'patient-api', backends.v1!);
  const host = `${ns}.test`;
  const kube = await connectKube({ kubeconfig: cluster.kubeconfig, namespace: ns });
  const routerFor = (acceptTimeoutMs: number) =>
    new GatewayApiRouter({ service: 'patient-api', canaryService: 'patient-api-canary', port: 80, orgHeader: 'X-Org-Id', httpRoute: 'patient-api', parentRefs: [traefik.parentRef], hostnames: [host], acceptTimeoutMs, acceptPollMs: 50 }, kube);
  type Route = { status?: { parents?: Array<{ controllerName: string; conditions?: Condition[] }> } };
  const conditions = async (generation: number): Promise<Record<string, Condition>> => {
    const { body } = await cluster.api<Route>('GET', `${httpRoutes(ns)}/patient-api`);
    const parent = body.status?.parents?.find((p) => p.controllerName === 'traefik.io/gateway-controller');
    return Object.fromEntries((parent?.conditions ?? []).filter((c) => (c.observedGeneration ?? 0) >= generation).map((c) => [c.type, c]));
  };
  await routerFor(10_000).apply(step(0));
  await waitFor('Traefik to route the host to the stable Service', async () => (await send(`${traefik.url}/`, 1, { host }, 1)).byVersion.v1 === 1);
  await waitFor('Traefik to report the canary Service unresolved', async () => (await conditions(1)).ResolvedRefs?.status === 'False');
  return { ns, at: (headers: Headers = {}) => ({ host, ...headers }), routerFor, conditions };
}

describe('gateway-api router through Traefik', () => {
  it('walks 1, 5, 25, 50, 100, then 0.5 and 0: each share measured in 2,000 requests, none failed', async () => {
    const { at, router, apply, acceptedGeneration } = await gatewayFixture('kt-gw-walk');
    let first = true;
    for (const canary of [1, 5, 25, 50, 100, 0.5, 0]) {
      const result = await apply(step(canary));
      expect(result.changed).toBe(true);
      // Once Traefik reports on the route, apply returns only after it accepted the new generation.
      if (!first) expect(await acceptedGeneration()).toBeGreaterThanOrEqual(result.generation!);
      first = false;
      await expectSplit(canary / 100, at());
      await waitFor('Traefik to accept the generation', async () => (await acceptedGeneration()) >= result.generation!);
      await expect(router.verify(step(canary))).resolves.toMatchObject({ status: 'verified' });
    }
  });

  it('lands pinned orgs on their version whatever the weights and the case of the header name; unpinned orgs follow the weights', async () => {
    const { ns, at, apply } = await gatewayFixture('kt-gw-orgs');
    const orgs = { acme: 'v2', riverside: 'v1' };
    for (const canary of [25, 100, 0]) {
      await apply(step(canary, { orgs }));
      // Traefik ranks the org rules above the weighted rule: it does not shadow them.
      const routing = await traefik.routing(ns);
      expect(routing.split('\n').map((l) => /Header\("X-Org-Id","(\w+)"\)/.exec(l)?.[1] ?? 'weighted'), routing).toEqual(['riverside', 'acme', 'weighted']);
      await expectPinned('v2', at({ 'X-Org-Id': 'acme' }));
      await expectPinned('v2', at({ 'x-org-id': 'acme' }));
      await expectPinned('v1', at({ 'X-ORG-ID': 'riverside' }));
      await expectPinned('v1', at({ 'x-Org-id': 'riverside' }));
      await expectSplit(canary / 100, at({ 'X-Org-Id': 'initech' }));
    }
    // Both pins move in one write, and land together.
    await apply(step(25, { orgs: { acme: 'v1', riverside: 'v2' } }));
    await expectPinned('v1', at({ 'x-org-id': 'acme' }));
    await expectPinned('v2', at({ 'x-org-id': 'riverside' }));
    await expectSplit(0.25, at());
  });

  it('matches an org header configured in lower case against requests in any case', async () => {
    const { at, apply } = await gatewayFixture('kt-gw-lower', 'x-org-id');
    await apply(step(50, { orgs: { acme: 'v2', riverside: 'v1' } }));
    await expectPinned('v2', at({ 'X-Org-Id': 'acme' }));
    await expectPinned('v1', at({ 'X-ORG-ID': 'riverside' }));
  });

  it('sends unpinned orgs to one version under "unpinned version", while requests without an org split by weight', async () => {
    const { at, apply } = await gatewayFixture('kt-gw-unpinned');
    await apply(step(50, { orgs: { acme: 'v2' }, unpinned: { mode: 'version', version: 'v1' } }));
    await expectPinned('v2', at({ 'X-Org-Id': 'acme' }));
    for (const org of ['initech', 'st-marys', 'clinic.42']) await expectPinned('v1', at({ 'x-org-id': org }));
    await expectSplit(0.5, at());
  });

  it('serves the most pins an HTTPRoute holds (126, in two org rules)', async () => {
    const { at, apply } = await gatewayFixture('kt-gw-many');
    const orgs = Object.fromEntries(Array.from({ length: 126 }, (_, i) => [`clinic-${String(i).padStart(3, '0')}`, i % 2 ? 'v2' : 'v1']));
    await apply(step(50, { orgs, unpinned: { mode: 'version', version: 'v1' } }));
    for (const org of ['clinic-000', 'clinic-063', 'clinic-064', 'clinic-125']) await expectPinned(orgs[org]!, at({ 'X-Org-Id': org }));
    await expectPinned('v1', at({ 'X-Org-Id': 'clinic-126' }));
  });

  it('fails no request under 32 keep-alive clients while weights step and orgs move', async () => {
    const { at, apply } = await gatewayFixture('kt-gw-load');
    await apply(step(0));
    const running = load(`${traefik.url}/`, { headers: at({ 'X-Org-Id': 'acme' }) });
    const unpinned = load(`${traefik.url}/`, { headers: at(), clients: 8 });
    for (const [i, canary] of [1, 5, 25, 50, 100, 0].entries()) await apply(step(canary, { orgs: { acme: i % 2 ? 'v1' : 'v2' } }));
    const [pinned, rest] = await Promise.all([running.stop(), unpinned.stop()]);
    expect(pinned.failures).toEqual([]);
    expect(rest.failures).toEqual([]);
    expect(pinned.sent + rest.sent).toBeGreaterThan(1_000);
  });

  it('waits out a backendRef Traefik cannot resolve yet (a Service without EndpointSlices): the apply succeeds once the endpoints exist', async () => {
    const { ns, at, routerFor, conditions } = await unresolvedFixture('kt-gw-race');
    const router = routerFor(30_000);
    const started = Date.now();
    let outcome: { result?: unknown; error?: unknown } | undefined;
    const applying = router.apply(step(25)).then((result) => (outcome = { result }), (error: unknown) => (outcome = { error }));
    // Generation 2 accepted, its canary ref unresolved: what the router used to take for a refusal.
    await waitFor('Traefik to accept generation 2', async () => (await conditions(2)).Accepted?.status === 'True');
    expect(await conditions(2)).toMatchObject({
      ResolvedRefs: { status: 'False', reason: 'BackendNotFound', message: `Cannot load HTTPBackendRef ${ns}/patient-api-canary: endpointslices not found` },
    });
    expect(outcome, 'the apply still waits').toBeUndefined();
    await endpointsFor(cluster, ns, 'patient-api-canary', backends.v2!);
    await applying;
    expect(outcome).toEqual({ result: { changed: true, generation: 2 } });
    // It returned because Traefik resolved the ref, well before the timeout.
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(await conditions(2)).toMatchObject({ Accepted: { status: 'True' }, ResolvedRefs: { status: 'True' } });
    await expect(router.verify(step(25))).resolves.toMatchObject({ status: 'verified' });
    await waitFor("Traefik to route to the canary's endpoint", async () => (await traefik.routing(ns)).includes(`${backends.v2!.address}:${backends.v2!.port}`));
    await expectSplit(0.25, at());
  });

  it('lets the apply succeed when a backendRef stays unresolved past the accept timeout; verify names it, and Traefik answers its share 500', async () => {
    const { ns, at, routerFor } = await unresolvedFixture('kt-gw-unresolved');
    const router = routerFor(1_000);
    const started = Date.now();
    await expect(router.apply(step(25))).resolves.toEqual({ changed: true, generation: 2 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
    await expect(router.verify(step(25))).resolves.toEqual({
      status: 'unverifiable',
      detail: expect.stringContaining(`reports ResolvedRefs=False, reason BackendNotFound: Cannot load HTTPBackendRef ${ns}/patient-api-canary: endpointslices not found`),
    });
    await waitFor('Traefik to serve the 75/25 split', async () => (await traefik.routing(ns)).includes('×25'));
    const tally = await send(`${traefik.url}/`, 2_000, at());
    expect(new Set(tally.failures.map((f) => f.slice(0, 3)))).toEqual(new Set(['500']));
    expect(tally.byVersion).toEqual({ v1: 2_000 - tally.failures.length });
    expectShare(tally.failures.length, 2_000, 0.25);
  });
});

const toService = (name: string) => ({ service: { name, port: { number: 80 } } });

/** The stable Ingress of the tests: `/` of the namespace's host to patient-api. */
const plainStable = (host: string) => ({ spec: { ingressClassName: traefik.ingressClass, rules: [{ host, http: { paths: [{ path: '/', pathType: 'Prefix', backend: toService('patient-api') }] } }] } });

/** A namespace with the stable Ingress served by Traefik, and an ingress-nginx router over it. */
async function ingressFixture(prefix: string, stable: (host: string) => { spec: unknown; annotations?: Headers } = plainStable, others: Record<string, Backend> = {}) {
  const { ns, at } = await namespaceWithBackends(prefix, others);
  const host = at().host!;
  const { spec, annotations } = stable(host);
  await cluster.api('POST', ingresses(ns), { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'patient-api', ...(annotations ? { annotations } : {}) }, spec });
  await waitFor('Traefik to serve the stable Ingress', async () => (await send(`${traefik.url}/`, 1, { host }, 1)).byVersion.v1 === 1);
  const kube = await connectKube({ kubeconfig: cluster.kubeconfig, namespace: ns });
  const router = new IngressNginxRouter({ ingress: 'patient-api', service: 'patient-api', canaryService: 'patient-api-canary', orgHeader: 'X-Org-Id' }, kube);
  const apply = (s: RouteSpec) => traefik.settled(ns, () => router.apply(s));
  return { ns, at, router, apply };
}

describe('ingress-nginx router through Traefik', () => {
  it('walks canary-weight 1, 5, 25, 50, 100, then 0.5 (canary-weight-total) and 0: each share measured in 2,000 requests', async () => {
    const { at, router, apply } = await ingressFixture('kt-in-walk');
    for (const canary of [1, 5, 25, 50, 100, 0.5, 0]) {
      expect((await apply(step(canary))).changed).toBe(true);
      await expectSplit(canary / 100, at());
      await expect(router.verify(step(canary))).resolves.toMatchObject({ status: 'verified' });
    }
  });

  it('pins orgs to the canary by canary-by-header-pattern at any weight; other orgs follow canary-weight', async () => {
    const { at, apply } = await ingressFixture('kt-in-orgs');
    const orgs = { 'acme.eu': 'v2', 'st-marys': 'v2' };
    for (const canary of [0, 25]) {
      await apply(step(canary, { orgs }));
      await expectPinned('v2', at({ 'X-Org-Id': 'acme.eu' }));
      await expectPinned('v2', at({ 'x-org-id': 'st-marys' }));
      await expectPinned('v2', at({ 'X-ORG-ID': 'acme.eu' }));
      // The dot is escaped in the pattern: an org whose id merely fits `acme.eu` as a regex is not pinned.
      await expectSplit(canary / 100, at({ 'X-Org-Id': 'acmeXeu' }), 400);
      await expectSplit(canary / 100, at({ 'X-Org-Id': 'riverside' }));
      await expectSplit(canary / 100, at());
    }
  });

  it('sends every org to the canary under "unpinned version" on the candidate, requests without an org by weight', async () => {
    const { at, apply } = await ingressFixture('kt-in-unpinned');
    await apply(step(25, { orgs: { 'acme.eu': 'v2' }, unpinned: { mode: 'version', version: 'v2' } }));
    for (const org of ['acme.eu', 'riverside', 'clinic.42']) await expectPinned('v2', at({ 'x-org-id': org }));
    await expectSplit(0.25, at());
    // The pins dropped: every org follows the weight again.
    await apply(step(25));
    await expectSplit(0.25, at({ 'X-Org-Id': 'acme.eu' }));
  });

  it('pins 7,000 orgs in one header pattern', async () => {
    const { at, apply } = await ingressFixture('kt-in-many');
    const orgs = Object.fromEntries(Array.from({ length: 7_000 }, (_, i) => [`clinic-${String(i).padStart(5, '0')}`, 'v2']));
    await apply(step(10, { orgs }));
    for (const org of ['clinic-00000', 'clinic-04321', 'clinic-06999']) await expectPinned('v2', at({ 'X-Org-Id': org }));
    await expectSplit(0.1, at({ 'X-Org-Id': 'clinic-07000' }));
  });

  it('fails no request under 32 keep-alive clients while canary-weight steps and orgs move', async () => {
    const { at, apply } = await ingressFixture('kt-in-load');
    const running = load(`${traefik.url}/`, { headers: at({ 'X-Org-Id': 'acme' }) });
    const unpinned = load(`${traefik.url}/`, { headers: at(), clients: 8 });
    for (const [i, canary] of [1, 5, 25, 50, 100, 0].entries()) await apply(step(canary, { orgs: i % 2 ? {} : { acme: 'v2' } }));
    const [pinned, rest] = await Promise.all([running.stop(), unpinned.stop()]);
    expect(pinned.failures).toEqual([]);
    expect(rest.failures).toEqual([]);
    expect(pinned.sent + rest.sent).toBeGreaterThan(1_000);
  });

  it('splits every host and path of the stable Ingress that goes to the Service, under its legacy class annotation, and leaves other paths alone', async () => {
    const { at, apply } = await ingressFixture('kt-in-mirror', (host) => ({
      annotations: { 'kubernetes.io/ingress.class': traefik.ingressClass },
      spec: {
        rules: [
          { host, http: { paths: [{ path: '/', pathType: 'Prefix', backend: toService('patient-api') }, { path: '/admin', pathType: 'Prefix', backend: toService('admin') }] } },
          { host: `records.${host}`, http: { paths: [{ path: '/records', pathType: 'Prefix', backend: toService('patient-api') }] } },
        ],
      },
    }), { admin: backends.admin! });
    await apply(step(100));
    await expectPinned('v2', at());
    const records = await send(`${traefik.url}/records/42`, 400, { host: `records.${at().host}` }, 8);
    expect([records.failures, records.byVersion]).toEqual([[], { v2: 400 }]);
    const admin = await send(`${traefik.url}/admin/users`, 400, at(), 8);
    expect([admin.failures, admin.byVersion]).toEqual([[], { admin: 400 }]);
  });

  it('removeManaged leaves all traffic on the stable Ingress', async () => {
    const { ns, at, router, apply } = await ingressFixture('kt-in-remove');
    await apply(step(50, { orgs: { acme: 'v2' } }));
    await traefik.settled(ns, () => router.removeManaged('v1'));
    await expectPinned('v1', at({ 'X-Org-Id': 'acme' }));
    await expectSplit(0, at());
  });

  it('a stable Ingress with only a default backend: Traefik ignores the canary twin, so no request reaches the canary', async () => {
    // Traefik 3.7's ingress-nginx provider merges a canary Ingress by its rules' hosts and paths
    // only; ingress-nginx merges a canary's defaultBackend into its default server too. The router
    // writes the twin as ingress-nginx reads it and cannot see that this data plane drops it.
    const { ns, at, router } = await ingressFixture('kt-in-default', () => ({ spec: { ingressClassName: traefik.ingressClass, defaultBackend: toService('patient-api') } }));
    await router.apply(step(50));
    // Traefik receives Ingresses in write order: once an Ingress written after the twin is
    // served, the twin has been read (nothing of it shows in Traefik's routes).
    const barrier = `barrier.${at().host}`;
    await cluster.api('POST', ingresses(ns), { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'barrier' }, spec: plainStable(barrier).spec });
    await waitFor('Traefik to serve an Ingress written after the twin', async () => (await traefik.routing(ns)).includes(barrier));
    const tally = await send(`${traefik.url}/`, 2_000, at());
    expect(tally.failures).toEqual([]);
    expect(tally.byVersion).toEqual({ v1: 2_000 });
  });

  // The API server drops an empty rules list: the twin of an Ingress with only a default backend
  // is written without one, so it reads back as written. No data plane is involved, so the
  // stable Ingress has a class Traefik does not serve.
  it('keeps the canary twin of a stable Ingress that has only a default backend, step after step', async () => {
    const { ns } = await namespaceWithBackends('kt-in-default-twin');
    await cluster.api('POST', ingresses(ns), { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'patient-api' }, spec: { ingressClassName: 'nginx', defaultBackend: toService('patient-api') } });
    const router = new IngressNginxRouter({ ingress: 'patient-api', service: 'patient-api', canaryService: 'patient-api-canary', orgHeader: 'X-Org-Id' }, await connectKube({ kubeconfig: cluster.kubeconfig, namespace: ns }));
    await router.apply(step(5));
    await expect(router.verify(step(5))).resolves.toMatchObject({ status: 'verified' });
    await expect(router.apply(step(25))).resolves.toMatchObject({ changed: true });
    await expect(router.apply(step(25))).resolves.toMatchObject({ changed: false });
  });
});
