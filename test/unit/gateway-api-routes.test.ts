/**
 * The `gateway-api` router's pure half: exact integer weights, rule order and chunking, decoding
 * live rules back into routes, the CRD's limits, the drift report, the controllers' verdict, and
 * what `deploy plan` says of the router.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { acceptance, checkRouteCapacity, decodeRules, desiredRules, gatewayWeights, HTTPROUTE_LIMITS, rulesHash, type HTTPRouteRule } from '../../src/routers/gateway-api/routes.js';
import { driftOf, roleRoutes, versionRoutes, writeAnnotations } from '../../src/routers/kube-common.js';
import { runCli } from '../helpers/cli.js';

const backends = { service: 'patient-api', canaryService: 'patient-api-canary', port: 80, orgHeader: 'X-Org-Id' };
const roles = { v1: 'stable', v2: 'canary' } as const;
const orgs = (n: number, version: string) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`org-${String(i).padStart(3, '0')}`, version]));

describe('gateway-api weights', () => {
  it('scales percent to the smallest whole integers and reads them back exactly', () => {
    expect(gatewayWeights({ stable: 95, canary: 5 })).toEqual({ stable: 95, canary: 5 });
    expect(gatewayWeights({ stable: 99.5, canary: 0.5 })).toEqual({ stable: 995, canary: 5 });
    expect(gatewayWeights({ stable: 99.9999, canary: 0.0001 })).toEqual({ stable: 999_999, canary: 1 });
    expect(gatewayWeights({ stable: 0, canary: 100 })).toEqual({ stable: 0, canary: 100 });
    for (const canary of [0.1, 0.5, 1, 2.5, 33.3333, 50, 99.99]) {
      const rules = desiredRules(roleRoutes({ weights: { v1: +(100 - canary).toFixed(4), v2: canary } }, roles, 'r'), backends);
      expect(decodeRules(rules, backends).weights.canary).toBe(canary);
    }
  });

  it('refuses a share finer than the largest scale allows', () => {
    expect(() => gatewayWeights({ stable: 99.99995, canary: 0.00005 })).toThrow(UsageError);
    expect(() => gatewayWeights({ stable: 99.99995, canary: 0.00005 })).toThrow('needs finer steps than 0.0001%');
  });
});

describe('gateway-api rules', () => {
  it('writes org rules first, then the unpinned rule, then the weighted rule', () => {
    const routes = roleRoutes({ weights: { v1: 95, v2: 5 }, orgs: { acme: 'v2', beta: 'v1' }, unpinned: { mode: 'version', version: 'v1' }, roles }, roles, 'r');
    const rules = desiredRules(routes, backends);
    expect(rules.map((r) => [r.matches!.map((m) => m.headers?.[0]?.value ?? '*'), r.backendRefs!.map((b) => `${b.name}:${b.weight}`)])).toEqual([
      [['beta'], ['patient-api:1']],
      [['acme'], ['patient-api-canary:1']],
      [['.+'], ['patient-api:1']],
      [['*'], ['patient-api:95', 'patient-api-canary:5']],
    ]);
    expect(rules[0]!.matches![0]).toEqual({ path: { type: 'PathPrefix', value: '/' }, headers: [{ name: 'X-Org-Id', type: 'Exact', value: 'beta' }] });
    expect(rules[2]!.matches![0]!.headers![0]!.type).toBe('RegularExpression');
    expect(decodeRules(rules, backends)).toEqual({ ...routes, foreign: 0 });
  });

  it('leaves out the unpinned rule when its version already takes 100%, and a canary Service with no version', () => {
    const routes = roleRoutes({ weights: { v1: 100 }, orgs: { acme: 'v2' }, unpinned: { mode: 'version', version: 'v1' } }, roles, 'r');
    const rules = desiredRules(routes, backends, false);
    expect(rules).toHaveLength(2);
    expect(rules[1]!.backendRefs).toEqual([{ group: '', kind: 'Service', name: 'patient-api', port: 80, weight: 100 }]);
    expect(desiredRules(routes, backends)[1]!.backendRefs!.map((r) => r.weight)).toEqual([100, 0]);
    expect(versionRoutes(decodeRules(rules, backends), { stable: 'v1', canary: 'v2' }, { stable: 'patient-api', canary: 'patient-api-canary' }).weights).toEqual({ v1: 100, v2: 0 });
  });

  it('puts 64 orgs in a rule and refuses more than the 128 matches a route may hold, saying how many fit', () => {
    const rules = desiredRules(roleRoutes({ weights: { v1: 100 }, orgs: orgs(127, 'v2') }, roles, 'r'), backends);
    expect(rules.map((r) => r.matches!.length)).toEqual([64, 63, 1]);
    expect(rules.reduce((n, r) => n + r.matches!.length, 0)).toBe(HTTPROUTE_LIMITS.matchesPerRoute);
    expect(() => checkRouteCapacity({ weights: { v1: 100 }, orgs: orgs(127, 'v2') })).not.toThrow();
    expect(() => checkRouteCapacity({ weights: { v1: 95, v2: 5 }, orgs: orgs(127, 'v2'), unpinned: { mode: 'version', version: 'v1' } })).toThrow(
      'an HTTPRoute holds at most 128 matches across its rules (64 per rule): 126 pinned orgs fit beside the weighted rule and the rule for unpinned orgs, and this spec pins 127',
    );
  });

  it('refuses a version without a role, and two served versions on one role', () => {
    expect(() => roleRoutes({ weights: { v1: 100 }, orgs: { acme: 'v3' } }, roles, 'HTTPRoute r')).toThrow('version v3 runs in neither (roles: v1: stable, v2: canary)');
    expect(() => roleRoutes({ weights: { v1: 50, v3: 50 } }, { v1: 'stable', v3: 'stable' }, 'HTTPRoute r')).toThrow('cannot send traffic to both v1 and v3');
  });

  it('hashes rules alike with or without the CRD defaults, and decodes them alike', () => {
    const rules = desiredRules(roleRoutes({ weights: { v1: 90, v2: 10 }, orgs: { acme: 'v2' } }, roles, 'r'), backends);
    const bare: HTTPRouteRule[] = [
      { matches: [{ headers: [{ name: 'x-org-id', value: 'acme' }] }], backendRefs: [{ name: 'patient-api-canary', port: 80 }] },
      { backendRefs: [{ name: 'patient-api', port: 80, weight: 90 }, { name: 'patient-api-canary', port: 80, weight: 10 }] },
    ];
    expect(decodeRules(bare, backends)).toMatchObject({ weights: { stable: 90, canary: 10 }, orgs: { acme: 'canary' }, foreign: 0 });
    expect(rulesHash(rules)).not.toBe(rulesHash(bare)); // the header name's case differs
    bare[0]!.matches![0]!.headers![0]!.name = 'X-Org-Id';
    expect(rulesHash(rules)).toBe(rulesHash(bare));
  });

  it('counts a rule of another shape as foreign and reads back weights by version', () => {
    const rules = desiredRules(roleRoutes({ weights: { v1: 75, v2: 25 } }, roles, 'r'), backends);
    const live = decodeRules([{ matches: [{ path: { type: 'PathPrefix', value: '/admin' } }], backendRefs: [{ name: 'admin', port: 80 }] }, ...rules], backends);
    expect(live.foreign).toBe(1);
    expect(versionRoutes(live, { stable: 'v1', canary: 'v2' }, { stable: 'patient-api', canary: 'patient-api-canary' })).toEqual({
      weights: { v1: 75, v2: 25 }, orgs: {}, unpinned: { mode: 'weighted' }, roles: { v1: 'stable', v2: 'canary' },
    });
  });
});

describe('gateway-api drift and acceptance', () => {
  it('names what a foreign edit changed against what Cutover last wrote', () => {
    const written = roleRoutes({ weights: { v1: 95, v2: 5 }, orgs: { acme: 'v2' } }, roles, 'r');
    const annotations = writeAnnotations({ stable: 'v1', canary: 'v2' }, rulesHash(desiredRules(written, backends)), written);
    const edited = desiredRules(roleRoutes({ weights: { v1: 50, v2: 50 } }, roles, 'r'), backends);
    expect(driftOf('HTTPRoute patient-api', annotations, rulesHash(edited), decodeRules(edited, backends))).toBe(
      'HTTPRoute patient-api was edited outside Cutover: weights {stable: 50, canary: 50} where Cutover last wrote {stable: 95, canary: 5}; orgs {acme: by weight} where Cutover last wrote {acme: canary}',
    );
    expect(driftOf('HTTPRoute patient-api', annotations, annotations['cutover.dev/managed-hash']!, written)).toBeUndefined();
    expect(driftOf('HTTPRoute patient-api', undefined, 'abc', written)).toBeUndefined();
  });

  it('reads the controllers: unreported, pending, accepted, refused', () => {
    const parent = (status: string, observedGeneration: number, type = 'Accepted') => [{ parentRef: { name: 'gw' }, controllerName: 'example.com/gw', conditions: [{ type, status, reason: 'NotAllowedByListeners', message: 'no listener allows it', observedGeneration }] }];
    expect(acceptance(undefined, 2)).toEqual({ state: 'unreported' });
    expect(acceptance(parent('True', 1), 2)).toMatchObject({ state: 'pending' });
    expect(acceptance(parent('False', 1), 2)).toMatchObject({ state: 'pending' });
    expect(acceptance(parent('True', 2), 2)).toEqual({ state: 'accepted' });
    expect(acceptance(parent('False', 2), 2)).toEqual({ state: 'rejected', detail: 'example.com/gw (parent gw) reports Accepted=False, reason NotAllowedByListeners: no listener allows it' });
  });

  it('takes only Accepted=False as a refusal: a backendRef that does not resolve yet is waited for', () => {
    type Condition = { type: string; status: string; reason?: string; message?: string; observedGeneration?: number };
    const parent = (...conditions: Condition[]) => ({ parentRef: { name: 'gw', namespace: 'gateways' }, controllerName: 'traefik.io/gateway-controller', conditions });
    const accepted = (generation: number): Condition => ({ type: 'Accepted', status: 'True', reason: 'Accepted', observedGeneration: generation });
    // What Traefik reports for a Service whose EndpointSlices it has not seen yet.
    const backendNotFound = (generation: number): Condition => ({ type: 'ResolvedRefs', status: 'False', reason: 'BackendNotFound', message: 'Cannot load HTTPBackendRef shop/api-canary: endpointslices not found', observedGeneration: generation });
    const resolved = (generation: number): Condition => ({ type: 'ResolvedRefs', status: 'True', reason: 'ResolvedRefs', observedGeneration: generation });

    expect(acceptance([parent(accepted(4), backendNotFound(4))], 4)).toEqual({
      state: 'unresolved',
      detail: 'traefik.io/gateway-controller (parent gateways/gw) reports ResolvedRefs=False, reason BackendNotFound: Cannot load HTTPBackendRef shop/api-canary: endpointslices not found',
    });
    expect(acceptance([parent(accepted(4), resolved(4))], 4)).toEqual({ state: 'accepted' });
    // A controller that reports no ResolvedRefs at all accepts by Accepted alone.
    expect(acceptance([parent(accepted(4))], 4)).toEqual({ state: 'accepted' });
    // Not yet accepted: pending, whatever ResolvedRefs says.
    expect(acceptance([parent(backendNotFound(4))], 4)).toMatchObject({ state: 'pending' });
    expect(acceptance([parent(accepted(3), backendNotFound(3))], 4)).toMatchObject({ state: 'pending' });
    // An old generation's unresolved ref says nothing about this one.
    expect(acceptance([parent(accepted(4), backendNotFound(3))], 4)).toEqual({ state: 'accepted' });
    // A refusal by any controller wins over another one's unresolved refs.
    const refusal = parent({ type: 'Accepted', status: 'False', reason: 'NotAllowedByListeners', observedGeneration: 4 });
    expect(acceptance([parent(accepted(4), backendNotFound(4)), { ...refusal, controllerName: 'example.com/gw' }], 4)).toMatchObject({ state: 'rejected', detail: expect.stringContaining('example.com/gw (parent gateways/gw) reports Accepted=False, reason NotAllowedByListeners') });
  });
});

describe('deploy plan with gateway-api', () => {
  const config = (router: string, orgs: string) => {
    const file = join(mkdtempSync(join(tmpdir(), 'cutover-plan-')), 'deploy.yaml');
    writeFileSync(file, `service: patient-api\nstable: v1\nversions:\n  v1: {}\n  v2: {image: ghcr.io/acme/patient-api:2}\nrouter: {type: gateway-api, httpRoute: patient-api, service: patient-api${router}}\nworkload: {type: kubernetes, deployment: patient-api}\n${orgs}`);
    return file;
  };
  const common = 'weights written as whole numbers, fractional percents scaled (finest step 0.0001%); each implementation applies a route at its own pace (Cutover waits up to 5 s for it to report the route Accepted with its backends resolved, then goes on unconfirmed); tested with real traffic: Traefik 3.7.15 on the Gateway API v1.6.3 CRDs';

  it('names what implementations may read differently and what is tested, in text and in JSON', async () => {
    const text = await runCli(['plan', '-f', config('', 'orgs: {list: [acme, riverside]}\n')]);
    expect(text.code, text.stderr).toBe(0);
    const note = `gateway-api: org header X-Org-Id matched by name in any case, by value exactly; unpinned orgs caught by one RegularExpression match \`.+\` (Extended support: implementation-specific); ${common}`;
    expect(text.stdout.split('\n')).toContain(note);
    const json = await runCli(['plan', '-f', config('', 'orgs: {list: [acme]}\n'), '-o', 'json']);
    expect(JSON.parse(json.stdout.trim())).toMatchObject({ event: 'plan', router: 'gateway-api', routerLimit: note });
  });

  it('says that unpinned orgs follow the split per request under orgs.unpinned: weighted, with the configured header', async () => {
    const json = await runCli(['plan', '-f', config(', orgHeader: X-Tenant', 'orgs: {list: [acme], unpinned: weighted}\n'), '-o', 'json']);
    expect(JSON.parse(json.stdout.trim()).routerLimit).toBe(`gateway-api: org header X-Tenant matched by name in any case, by value exactly; unpinned orgs follow the split per request, not per org (Gateway API cannot hash a header); ${common}`);
  });

  it('keeps to weights and pace without orgs', async () => {
    const json = await runCli(['plan', '-f', config('', ''), '-o', 'json']);
    expect(JSON.parse(json.stdout.trim()).routerLimit).toBe(`gateway-api: ${common}`);
  });
});
