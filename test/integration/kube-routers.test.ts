/**
 * The `gateway-api` and `ingress-nginx` routers against the real kube-apiserver (with the Gateway
 * API CRDs): what they write is read back through the admin API, not only through the router.
 * There is no Gateway controller in the test cluster, so the tests play one by writing the
 * HTTPRoute's status subresource.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { setTimeout as delay } from 'node:timers/promises';
import { LockedError, OperationError, UsageError } from '../../src/errors.js';
import { KubeApiError, type KubeClient, type KubeObject } from '../../src/kube/client.js';
import { connectKube } from '../../src/kube/connect.js';
import { rbacRules } from '../../src/kube/rbac.js';
import type { Config } from '../../src/config/schema.js';
import { GatewayApiRouter, type GatewayApiRouterOptions } from '../../src/routers/gateway-api/router.js';
import type { HTTPRouteRule } from '../../src/routers/gateway-api/routes.js';
import { IngressNginxRouter } from '../../src/routers/ingress-nginx/router.js';
import type { RouteSpec } from '../../src/routers/router.js';
import { testCluster, type TestCluster } from '../helpers/cluster.js';

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await testCluster();
}, 240_000);

const roles = { v1: 'stable', v2: 'canary' } as const;
const step = (canary: number, extra: Partial<RouteSpec> = {}): RouteSpec => ({ weights: { v1: 100 - canary, v2: canary }, roles, ...extra });
const backends = { service: 'patient-api', canaryService: 'patient-api-canary', port: 80, orgHeader: 'X-Org-Id' };
type Route = KubeObject & { spec: { hostnames?: string[]; rules: HTTPRouteRule[] }; status?: unknown };
type Ingress = KubeObject & { spec: { ingressClassName?: string; rules: Array<{ http: { paths: Array<{ backend: { service: { name: string } } }> } }> } };

async function services(ns: string, names = ['patient-api', 'patient-api-canary']): Promise<void> {
  for (const name of names) {
    await cluster.api('POST', `/api/v1/namespaces/${ns}/services`, { apiVersion: 'v1', kind: 'Service', metadata: { name }, spec: { ports: [{ port: 80, targetPort: 8080 }], selector: { app: name } } });
  }
}

/** A namespace with both Services, and a gateway-api router over it. */
async function gateway(prefix: string, extra: Partial<GatewayApiRouterOptions> = {}, wrap: (k: KubeClient) => KubeClient = (k) => k) {
  const ns = await cluster.namespace(prefix);
  await services(ns);
  const kube = await connectKube({ kubeconfig: cluster.kubeconfig, namespace: ns });
  const router = new GatewayApiRouter({ ...backends, httpRoute: 'patient-api', parentRefs: [{ name: 'public', namespace: 'gateways' }], acceptTimeoutMs: 5_000, acceptPollMs: 50, ...extra }, wrap(kube));
  const path = `/apis/gateway.networking.k8s.io/v1/namespaces/${ns}/httproutes/patient-api`;
  const route = async () => (await cluster.api<Route>('GET', path)).body;
  return { ns, kube, router, path, route };
}

/** Percent per Service of the route's weighted rule, as the admin API reads it. */
function weightedShares(route: Route): Record<string, number> {
  const refs = route.spec.rules.at(-1)!.backendRefs!;
  const total = refs.reduce((n, r) => n + (r.weight ?? 1), 0);
  return Object.fromEntries(refs.map((r) => [r.name, ((r.weight ?? 1) / total) * 100]));
}

describe('gateway-api router', () => {
  it('lands every step of a canary walk in the backendRefs, and a repeated apply writes nothing', async () => {
    const { router, route } = await gateway('gw-walk');
    for (const canary of [1, 5, 25, 50, 100]) {
      const result = await router.apply(step(canary));
      expect(result.changed).toBe(true);
      const live = await route();
      expect(weightedShares(live)).toEqual({ 'patient-api': 100 - canary, 'patient-api-canary': canary });
      expect(result.generation).toBe(live.metadata.generation);
      expect((await router.read()).weights).toEqual({ v1: 100 - canary, v2: canary });
    }
    const before = (await route()).metadata.resourceVersion;
    expect(await router.apply(step(100))).toEqual({ changed: false, generation: (await route()).metadata.generation });
    expect((await route()).metadata.resourceVersion).toBe(before);
    // the promotion: v2 now runs in the stable Service
    await router.apply({ weights: { v2: 100 }, roles: { v2: 'stable' } });
    const promoted = await route();
    expect(weightedShares(promoted)).toEqual({ 'patient-api': 100 });
    expect(promoted.metadata.annotations?.['cutover.dev/roles']).toBe('{"stable":"v2"}');
    expect(promoted.spec).toMatchObject({ parentRefs: [{ name: 'public', namespace: 'gateways' }] });
    expect(await router.read()).toMatchObject({ weights: { v2: 100 }, roles: { v2: 'stable' } });
  });

  it('writes org rules before the weighted rule, and the unpinned rule between them', async () => {
    const { router, route } = await gateway('gw-orgs');
    const spec = step(10, { orgs: { 'acme.eu': 'v2', riverside: 'v1' }, unpinned: { mode: 'version', version: 'v1' } });
    await router.apply(spec);
    const rules = (await route()).spec.rules;
    expect(rules.map((r) => [r.matches?.[0]?.headers?.[0]?.type ?? 'none', r.matches?.[0]?.headers?.[0]?.value ?? '', r.backendRefs!.map((b) => b.name).join(',')])).toEqual([
      ['Exact', 'riverside', 'patient-api'],
      ['Exact', 'acme.eu', 'patient-api-canary'],
      ['RegularExpression', '.+', 'patient-api'],
      ['none', '', 'patient-api,patient-api-canary'],
    ]);
    expect(await router.read()).toMatchObject({ weights: { v1: 90, v2: 10 }, orgs: { 'acme.eu': 'v2', riverside: 'v1' }, unpinned: { mode: 'version', version: 'v1' } });
    expect(await router.verify(spec)).toMatchObject({ status: 'unverifiable', detail: expect.stringContaining('no Gateway controller reports on it') });
    expect(await router.verify(step(20))).toMatchObject({ status: 'mismatch', detail: expect.stringContaining('weights {stable: 90, canary: 10} where the spec asks {stable: 80, canary: 20}') });
  });

  it('reports a foreign edit of the rules as drift and keeps the unrelated fields of the fresh object', async () => {
    const { router, route, path } = await gateway('gw-drift');
    await router.apply(step(5));
    const edited = await route();
    edited.spec.hostnames = ['api.example.com'];
    edited.spec.rules.at(-1)!.backendRefs!.forEach((r) => (r.weight = 50));
    await cluster.api('PUT', path, edited);
    const result = await router.apply(step(25));
    expect(result.drift).toBe('HTTPRoute patient-api was edited outside Cutover: weights {stable: 50, canary: 50} where Cutover last wrote {stable: 95, canary: 5}');
    const live = await route();
    expect(live.spec.hostnames).toEqual(['api.example.com']);
    expect(weightedShares(live)).toEqual({ 'patient-api': 75, 'patient-api-canary': 25 });
    expect((await router.apply(step(50))).drift).toBeUndefined();
  });

  it('re-reads and retries on a 409, keeping what the other writer changed', async () => {
    const replaced: string[] = [];
    let path = '';
    const racing = (kube: KubeClient): KubeClient =>
      new Proxy(kube, {
        get(target, prop) {
          if (prop !== 'replace') {
            const value = Reflect.get(target, prop, target) as unknown;
            return typeof value === 'function' ? value.bind(target) : value;
          }
          return async (p: string, object: KubeObject) => {
            // another writer edits the route between the router's GET and its PUT, once
            if (replaced.length === 0) await cluster.api('PATCH', path, { spec: { hostnames: ['added-meanwhile.example.com'] } }, { contentType: 'application/merge-patch+json' });
            try {
              const out = await target.replace(p, object);
              replaced.push('ok');
              return out;
            } catch (e) {
              replaced.push(e instanceof KubeApiError && e.conflict ? 'conflict' : 'error');
              throw e;
            }
          };
        },
      });
    const g = await gateway('gw-race', {}, racing);
    path = g.path;
    await g.router.apply(step(1)); // created by POST: no PUT yet
    const result = await g.router.apply(step(5));
    expect(replaced).toEqual(['conflict', 'ok']);
    expect(result.changed).toBe(true);
    expect(result.drift).toBeUndefined();
    const live = await g.route();
    expect(live.spec.hostnames).toEqual(['added-meanwhile.example.com']);
    expect(weightedShares(live)).toEqual({ 'patient-api': 95, 'patient-api-canary': 5 });
  });

  it('refuses a write under an older fencing token, also when the newer holder writes between its read and its write', async () => {
    let newer: (() => Promise<unknown>) | undefined;
    const late = (kube: KubeClient): KubeClient =>
      new Proxy(kube, {
        get(target, prop) {
          const value = Reflect.get(target, prop, target) as unknown;
          if (prop !== 'replace') return typeof value === 'function' ? value.bind(target) : value;
          return async (p: string, object: KubeObject) => {
            // the new lock holder writes after this (stale) driver read the route, once
            const first = newer;
            newer = undefined;
            await first?.();
            return target.replace(p, object);
          };
        },
      });
    const g = await gateway('gw-fence', {}, late);
    await g.router.apply(step(5, { fence: 3 }));
    expect((await g.route()).metadata.annotations?.['cutover.dev/fence']).toBe('3');
    const holder = new GatewayApiRouter({ ...backends, httpRoute: 'patient-api', acceptTimeoutMs: 5_000, acceptPollMs: 50 }, g.kube);
    newer = () => holder.apply(step(0, { fence: 4 }));
    const stale = await g.router.apply(step(25, { fence: 3 })).then(() => undefined, (e: unknown) => e);
    expect(stale).toBeInstanceOf(LockedError);
    expect((stale as Error).message).toMatch(/last written under fencing token 4, newer than this driver's 3; nothing was written/);
    const live = await g.route();
    expect(weightedShares(live)).toEqual({ 'patient-api': 100, 'patient-api-canary': 0 });
    expect(live.metadata.annotations?.['cutover.dev/fence']).toBe('4');
    // A write without a token (an operator's repair outside any lock) neither checks nor lowers it.
    await g.router.apply(step(1));
    expect((await g.route()).metadata.annotations?.['cutover.dev/fence']).toBe('4');
  });

  it('concurrent appliers of one spec make exactly one write between them', async () => {
    const { ns, router, route } = await gateway('gw-concurrent');
    await router.apply(step(1));
    const rv = Number((await route()).metadata.resourceVersion);
    const others = await Promise.all(Array.from({ length: 6 }, async () => new GatewayApiRouter({ ...backends, httpRoute: 'patient-api' }, await connectKube({ kubeconfig: cluster.kubeconfig, namespace: ns }))));
    const results = await Promise.all(others.map((r) => r.apply(step(5))));
    expect(results.filter((r) => r.changed)).toHaveLength(1);
    const live = await route();
    expect(weightedShares(live)).toEqual({ 'patient-api': 95, 'patient-api-canary': 5 });
    expect(Number(live.metadata.resourceVersion)).toBeGreaterThan(rv);
  });

  describe('accepted status', () => {
    const parent = (status: string, generation: number, reason: string, message: string) => ({
      parentRef: { name: 'public', namespace: 'gateways' },
      controllerName: 'example.com/gateway-controller',
      conditions: [{ type: 'Accepted', status, reason, message, observedGeneration: generation, lastTransitionTime: new Date().toISOString() }],
    });
    /** Play the controller: once the route's generation passes `after`, report on it. */
    const controller = async (path: string, after: number, status: string, reason: string, message: string) => {
      for (let i = 0; i < 200; i += 1) {
        const r = (await cluster.api<Route>('GET', path)).body;
        if ((r.metadata.generation ?? 0) > after) {
          await cluster.api('PUT', `${path}/status`, { ...r, status: { parents: [parent(status, r.metadata.generation!, reason, message)] } });
          return;
        }
        await delay(25);
      }
    };

    it('fails a write the controller refuses, naming the controller and the reason', async () => {
      const { router, route, path } = await gateway('gw-refused');
      await router.apply(step(1));
      const r = await route();
      await cluster.api('PUT', `${path}/status`, { ...r, status: { parents: [parent('True', r.metadata.generation!, 'Accepted', 'accepted')] } });
      const [error] = await Promise.all([router.apply(step(5)).catch((e: unknown) => e), controller(path, r.metadata.generation!, 'False', 'NotAllowedByListeners', 'no listener of public allows routes from this namespace')]);
      expect(error).toBeInstanceOf(OperationError);
      expect((error as Error).message).toBe(
        'HTTPRoute patient-api generation 2 was not accepted: example.com/gateway-controller (parent gateways/public) reports Accepted=False, reason NotAllowedByListeners: no listener of public allows routes from this namespace',
      );
    });

    it('returns once the controller accepts the new generation, and verify then confirms it', async () => {
      const { router, route, path } = await gateway('gw-accepted');
      await router.apply(step(1));
      const r = await route();
      await cluster.api('PUT', `${path}/status`, { ...r, status: { parents: [parent('True', r.metadata.generation!, 'Accepted', 'accepted')] } });
      const [result] = await Promise.all([router.apply(step(5)), controller(path, r.metadata.generation!, 'True', 'Accepted', 'accepted')]);
      expect(result).toMatchObject({ changed: true, generation: 2 });
      expect(await router.verify(step(5))).toMatchObject({ status: 'verified' });
    });
  });

  describe('preflight', () => {
    it('passes with the Services there and parentRefs to create the route', async () => {
      const { router } = await gateway('gw-pre-ok');
      await router.preflight();
    });

    it('names a missing Service', async () => {
      const ns = await cluster.namespace('gw-pre-svc');
      await services(ns, ['patient-api']);
      const router = new GatewayApiRouter({ ...backends, httpRoute: 'patient-api', parentRefs: [{ name: 'public' }] }, await connectKube({ kubeconfig: cluster.kubeconfig, namespace: ns }));
      const error = await router.preflight().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UsageError);
      expect((error as Error).message).toBe(`Service patient-api-canary not found in namespace ${ns}`);
    });

    it('says to add router.parentRefs when the route is missing and cannot be created', async () => {
      const { router } = await gateway('gw-pre-parents', { parentRefs: [] });
      const error = await router.preflight().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UsageError);
      expect((error as Error).message).toMatch(/^HTTPRoute patient-api not found in namespace gw-pre-parents-\S+, and Cutover can create it only with router.parentRefs$/);
      expect((error as UsageError).hint).toContain('add router.parentRefs');
      await expect(router.apply(step(5))).rejects.toThrow('can create it only with router.parentRefs');
    });

    it('names every verb a restricted user lacks', async () => {
      const ns = await cluster.namespace('gw-pre-rbac');
      await services(ns);
      const file = await cluster.restrictedKubeconfig(ns, 'deployer', [
        { apiGroups: ['gateway.networking.k8s.io'], resources: ['httproutes'], verbs: ['get'] },
      ]);
      const router = new GatewayApiRouter({ ...backends, httpRoute: 'patient-api', parentRefs: [{ name: 'public' }] }, await connectKube({ kubeconfig: file, namespace: ns }));
      const error = await router.preflight().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UsageError);
      expect((error as Error).message).toBe(
        `context cutover-test may not update httproutes.gateway.networking.k8s.io patient-api, create httproutes.gateway.networking.k8s.io, get services patient-api, get services patient-api-canary in namespace ${ns}`,
      );
    });

    it('passes, and writes, with exactly the Role `deploy rbac` prints', async () => {
      for (const router of ['gateway-api', 'ingress-nginx'] as const) {
        const { ns } = router === 'gateway-api' ? await gateway('rbac-gw') : await ingress('rbac-in');
        const config = { service: 'patient-api', router: { type: router, service: 'patient-api', httpRoute: 'patient-api', ingress: 'patient-api', parentRefs: [{ name: 'public' }] } } as unknown as Config;
        const kube = await connectKube({ kubeconfig: await cluster.restrictedKubeconfig(ns, 'cutover', rbacRules(config)), namespace: ns });
        const r = router === 'gateway-api' ? new GatewayApiRouter({ ...backends, httpRoute: 'patient-api', parentRefs: [{ name: 'public' }] }, kube) : new IngressNginxRouter({ ...backends, ingress: 'patient-api' }, kube);
        await r.preflight();
        await r.apply(step(5));
        await r.apply(step(25));
        expect((await r.read()).weights).toEqual({ v1: 75, v2: 25 });
        await r.removeManaged('v1');
      }
    });
  });

  it('removeManaged leaves one weighted rule, all on the fallback, and keeps the route', async () => {
    const { router, route } = await gateway('gw-remove');
    await router.apply(step(25, { orgs: { acme: 'v2' } }));
    await router.removeManaged('v1');
    const live = await route();
    expect(live.spec.rules).toHaveLength(1);
    expect(weightedShares(live)).toEqual({ 'patient-api': 100 });
  });
});

/** A namespace with both Services and the stable Ingress, and an ingress-nginx router over it. */
async function ingress(prefix: string, { stable = true } = {}) {
  const ns = await cluster.namespace(prefix);
  await services(ns);
  const base = `/apis/networking.k8s.io/v1/namespaces/${ns}/ingresses`;
  if (stable) {
    await cluster.api('POST', base, {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name: 'patient-api' },
      spec: { ingressClassName: 'nginx', rules: [{ host: 'api.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'patient-api', port: { number: 80 } } } }] } }] },
    });
  }
  const kube = await connectKube({ kubeconfig: cluster.kubeconfig, namespace: ns });
  const router = new IngressNginxRouter({ ingress: 'patient-api', service: 'patient-api', canaryService: 'patient-api-canary', orgHeader: 'X-Org-Id' }, kube);
  const canary = async () => (await cluster.api<Ingress>('GET', `${base}/patient-api-canary`, undefined, { allow: [404] })).body;
  return { ns, router, base, canary };
}

/** The canary-* annotations of an Ingress, without the prefix. */
const nginx = (i: Ingress) => Object.fromEntries(Object.entries(i.metadata.annotations ?? {}).filter(([k]) => k.startsWith('nginx.ingress.kubernetes.io/')).map(([k, v]) => [k.slice('nginx.ingress.kubernetes.io/'.length), v]));

describe('ingress-nginx router', () => {
  it('creates the canary twin and moves canary-weight through the walk, writing nothing twice', async () => {
    const { router, canary } = await ingress('in-walk');
    for (const w of [1, 5, 25, 50, 100]) {
      expect((await router.apply(step(w))).changed).toBe(true);
      expect(nginx(await canary())).toEqual({ canary: 'true', 'canary-weight': String(w) });
      expect((await router.read()).weights).toEqual({ v1: 100 - w, v2: w });
    }
    const live = await canary();
    expect(live.spec.ingressClassName).toBe('nginx');
    expect(live.spec.rules[0]!.http.paths[0]!.backend.service.name).toBe('patient-api-canary');
    expect(await router.apply(step(100))).toEqual({ changed: false, generation: live.metadata.generation });
    expect((await canary()).metadata.resourceVersion).toBe(live.metadata.resourceVersion);
    await router.apply(step(0.5));
    expect(nginx(await canary())).toEqual({ canary: 'true', 'canary-weight': '5', 'canary-weight-total': '1000' });
    expect(await router.verify(step(0.5))).toMatchObject({ status: 'verified' });
  });

  it('refuses a write under an older fencing token than the canary Ingress was last written under', async () => {
    const { router, canary } = await ingress('in-fence');
    await router.apply(step(5, { fence: 9 }));
    const before = await canary();
    expect(before.metadata.annotations?.['cutover.dev/fence']).toBe('9');
    await expect(router.apply(step(25, { fence: 8 }))).rejects.toBeInstanceOf(LockedError);
    expect((await canary()).metadata.resourceVersion).toBe(before.metadata.resourceVersion);
    expect(nginx(await canary())).toEqual({ canary: 'true', 'canary-weight': '5' });
  });

  it('pins orgs to the canary by a header pattern, and drops it when the pins go', async () => {
    const { router, canary } = await ingress('in-orgs');
    await router.apply(step(0, { orgs: { 'st-marys': 'v2', 'acme.eu': 'v2', riverside: 'v1' }, unpinned: { mode: 'version', version: 'v1' } }));
    expect(nginx(await canary())).toEqual({ canary: 'true', 'canary-weight': '0', 'canary-by-header': 'X-Org-Id', 'canary-by-header-pattern': '^(acme\\.eu|st-marys)$' });
    expect(await router.read()).toMatchObject({ orgs: { 'acme.eu': 'v2', 'st-marys': 'v2' } });
    await router.apply(step(0));
    expect(nginx(await canary())).toEqual({ canary: 'true', 'canary-weight': '0' });
  });

  it('refuses what ingress-nginx cannot carry, before any write', async () => {
    const { router, canary } = await ingress('in-limit');
    await router.apply(step(5));
    const before = (await canary()).metadata.resourceVersion;
    const third = await router.apply({ weights: { v1: 90, v2: 5, v3: 5 }, roles: { v1: 'stable', v2: 'canary', v3: 'canary' } }).catch((e: unknown) => e);
    expect(third).toBeInstanceOf(UsageError);
    expect((third as Error).message).toBe('ingress-nginx routes two versions at once (the stable Ingress and its canary); this spec routes to v1, v2, v3');
    const pinned = await router.apply(step(5, { orgs: { riverside: 'v1' } })).catch((e: unknown) => e);
    expect((pinned as Error).message).toContain('orgs pinned to stable version v1 (riverside) cannot be kept on it while the canary takes 5%');
    expect((await canary()).metadata.resourceVersion).toBe(before);
  });

  it('re-syncs the twin when the stable Ingress changes, and reports a hand edit as drift', async () => {
    const { router, canary, base } = await ingress('in-sync');
    await router.apply(step(5));
    const stable = (await cluster.api<Ingress & { spec: { rules: Array<{ host: string }> } }>('GET', `${base}/patient-api`)).body;
    stable.spec.rules[0]!.host = 'api2.example.com';
    await cluster.api('PUT', `${base}/patient-api`, stable);
    const synced = await router.apply(step(5));
    expect(synced).toMatchObject({ changed: true });
    expect(synced.drift).toBeUndefined();
    expect(((await canary()).spec.rules[0] as { host?: string }).host).toBe('api2.example.com');
    const edited = await canary();
    edited.metadata.annotations!['nginx.ingress.kubernetes.io/canary-weight'] = '50';
    edited.metadata.labels = { team: 'payments' };
    await cluster.api('PUT', `${base}/patient-api-canary`, edited);
    const result = await router.apply(step(25));
    expect(result.drift).toBe('Ingress patient-api-canary was edited outside Cutover: weights {stable: 50, canary: 50} where Cutover last wrote {stable: 95, canary: 5}');
    const live = await canary();
    expect(nginx(live)['canary-weight']).toBe('25');
    expect(live.metadata.labels).toMatchObject({ team: 'payments' });
  });

  it('needs the stable Ingress', async () => {
    const { router, ns } = await ingress('in-missing', { stable: false });
    for (const attempt of [() => router.preflight(), () => router.apply(step(5))]) {
      const error = await attempt().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UsageError);
      expect((error as Error).message).toBe(`Ingress patient-api not found in namespace ${ns}: the ingress-nginx router needs the stable Ingress (its paths sent to Service patient-api)`);
    }
  });

  it('removeManaged deletes the twin, leaving all traffic on the stable Ingress', async () => {
    const { router, canary } = await ingress('in-remove');
    await router.preflight();
    await router.apply(step(25));
    await router.removeManaged('v1');
    expect((await canary())).toMatchObject({ kind: 'Status', code: 404 });
  });
});
