/**
 * The `ingress-nginx` router's pure half: canary annotations per step and per pin, the header
 * pattern and its escaping, the canary Ingress's spec, and the refusals of the two-version limit.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../../src/errors.js';
import {
  canaryAnnotations, canaryIngressSpec, carriedRoutes, decodeCanaryAnnotations, ingressRoutes, NGINX_CANARY, ORG_LIMIT, orgPattern, parseOrgPattern, type IngressSpec,
} from '../../src/routers/ingress-nginx/routes.js';
import type { RouteSpec } from '../../src/routers/router.js';
import { runCli } from '../helpers/cli.js';

const roles = { v1: 'stable', v2: 'canary' } as const;
const annotationsFor = (spec: RouteSpec) => canaryAnnotations(carriedRoutes(ingressRoutes(spec, spec.roles ?? roles)!), 'X-Org-Id');

describe('ingress-nginx canary annotations', () => {
  it('writes canary-weight per step, with canary-weight-total only for fractional shares', () => {
    expect(annotationsFor({ weights: { v1: 95, v2: 5 } })).toEqual({ [NGINX_CANARY.canary]: 'true', [NGINX_CANARY.weight]: '5' });
    expect(annotationsFor({ weights: { v1: 99.5, v2: 0.5 } })).toEqual({ [NGINX_CANARY.canary]: 'true', [NGINX_CANARY.weight]: '5', [NGINX_CANARY.total]: '1000' });
    expect(annotationsFor({ weights: { v1: 100, v2: 0 } })[NGINX_CANARY.weight]).toBe('0');
    for (const canary of [0.25, 1, 12.5, 50, 100]) {
      const decoded = decodeCanaryAnnotations(annotationsFor({ weights: { v1: 100 - canary, v2: canary } }), 'X-Org-Id');
      expect(decoded.weights).toEqual({ stable: 100 - canary, canary });
    }
  });

  it('sends orgs pinned to the canary by a header pattern, with dots escaped', () => {
    const a = annotationsFor({ weights: { v1: 100, v2: 0 }, orgs: { 'st-marys': 'v2', 'acme.eu': 'v2', riverside: 'v1' } });
    expect(a[NGINX_CANARY.header]).toBe('X-Org-Id');
    expect(a[NGINX_CANARY.pattern]).toBe('^(acme\\.eu|st-marys)$');
    const re = new RegExp(a[NGINX_CANARY.pattern]!);
    expect(['acme.eu', 'st-marys'].every((o) => re.test(o))).toBe(true);
    expect(['acmeXeu', 'riverside', 'st-marys2', 'xacme.eu'].some((o) => re.test(o))).toBe(false);
    expect(decodeCanaryAnnotations(a, 'x-org-id').orgs).toEqual({ 'acme.eu': 'canary', 'st-marys': 'canary' });
  });

  it('adds .+ when unpinned orgs go to the canary, and reads it back', () => {
    expect(orgPattern([], true)).toBe('^(.+)$');
    expect(parseOrgPattern('^(a\\.b|c|.+)$')).toEqual({ orgs: ['a.b', 'c'], anyOrg: true });
    expect(parseOrgPattern('^foo$')).toBeUndefined();
    const a = annotationsFor({ weights: { v1: 75, v2: 25 }, orgs: { acme: 'v2' }, unpinned: { mode: 'version', version: 'v2' } });
    expect(a[NGINX_CANARY.pattern]).toBe('^(acme|.+)$');
    expect(decodeCanaryAnnotations(a, 'X-Org-Id')).toEqual({ weights: { stable: 75, canary: 25 }, orgs: { acme: 'canary' }, unpinned: 'canary' });
  });
});

describe('ingress-nginx limits', () => {
  const refusal = (spec: RouteSpec, r: RouteSpec['roles'] = roles) => {
    try {
      ingressRoutes(spec, r);
    } catch (e) {
      expect(e).toBeInstanceOf(UsageError);
      return (e as Error).message;
    }
    return undefined;
  };

  it('refuses a third version', () => {
    expect(refusal({ weights: { v1: 90, v2: 5, v3: 5 } }, undefined)).toBe('ingress-nginx routes two versions at once (the stable Ingress and its canary); this spec routes to v1, v2, v3');
    expect(refusal({ weights: { v1: 95, v2: 5 }, orgs: { acme: 'v3' } }, undefined)).toContain('routes two versions at once');
  });

  it('refuses orgs pinned to stable while the canary takes weight, and allows them at weight 0', () => {
    expect(refusal({ weights: { v1: 95, v2: 5 }, orgs: { riverside: 'v1' } })).toBe(
      "ingress-nginx routes two versions at once (the stable Ingress and its canary), and a request whose org header does not match the canary's pattern falls through to the canary weight: orgs pinned to stable version v1 (riverside) cannot be kept on it while the canary takes 5%",
    );
    expect(refusal({ weights: { v1: 100, v2: 0 }, orgs: { riverside: 'v1', acme: 'v2' } })).toBeUndefined();
    // after a promotion v2 is stable, and the pins to it ride on the canary weight of 0
    expect(refusal({ weights: { v2: 100 }, orgs: { acme: 'v2' }, roles: { v2: 'stable' } }, { v2: 'stable' })).toBeUndefined();
  });

  it('refuses unpinned orgs on stable while the canary takes part of the traffic', () => {
    expect(refusal({ weights: { v1: 75, v2: 25 }, unpinned: { mode: 'version', version: 'v1' } })).toContain('unpinned orgs cannot all stay on stable version v1 while the canary takes 25%');
    expect(refusal({ weights: { v1: 0, v2: 100 }, unpinned: { mode: 'version', version: 'v1' } })).toContain('while the canary takes 100%');
    expect(refusal({ weights: { v1: 100, v2: 0 }, unpinned: { mode: 'version', version: 'v1' } })).toBeUndefined();
    expect(refusal({ weights: { v1: 75, v2: 25 }, unpinned: { mode: 'weighted' } })).toBeUndefined();
  });

  it('refuses a version with no role', () => {
    expect(refusal({ weights: { v1: 95, v3: 5 } })).toContain('version v3 runs in neither');
  });
});

describe('ingress-nginx canary Ingress spec', () => {
  const stable: IngressSpec = {
    ingressClassName: 'nginx',
    tls: [{ hosts: ['api.example.com'], secretName: 'tls' }],
    rules: [
      { host: 'api.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'patient-api', port: { number: 80 } } } }, { path: '/admin', pathType: 'Prefix', backend: { service: { name: 'admin', port: { number: 80 } } } }] } },
      { host: 'other.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'other', port: { name: 'http' } } } }] } },
    ],
  };

  it('mirrors the paths to the stable Service, sent to the canary Service', () => {
    expect(canaryIngressSpec(stable, 'patient-api', 'patient-api', 'patient-api-canary')).toEqual({
      ingressClassName: 'nginx',
      rules: [{ host: 'api.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'patient-api-canary', port: { number: 80 } } } }] } }],
    });
  });

  it('refuses a stable Ingress that sends nothing to the Service', () => {
    expect(() => canaryIngressSpec(stable, 'patient-api', 'billing', 'billing-canary')).toThrow('Ingress patient-api sends nothing to Service billing');
  });
});

describe('deploy plan with ingress-nginx', () => {
  const config = (orgs: string) => {
    const file = join(mkdtempSync(join(tmpdir(), 'cutover-plan-')), 'deploy.yaml');
    writeFileSync(file, `service: patient-api\nstable: v1\nversions:\n  v1: {}\n  v2: {image: ghcr.io/acme/patient-api:2}\nrouter: {type: ingress-nginx, ingress: patient-api, service: patient-api}\nworkload: {type: kubernetes, deployment: patient-api}\n${orgs}`);
    return file;
  };

  it('states the two-version limit when the config has orgs, in text and in JSON', async () => {
    const text = await runCli(['plan', '-f', config('orgs: {list: [acme, riverside]}\n')]);
    expect(text.code).toBe(0);
    expect(text.stdout + text.stderr).toContain(`\n${ORG_LIMIT}`);
    const json = await runCli(['plan', '-f', config('orgs: {list: [acme]}\n'), '-o', 'json']);
    expect(JSON.parse(json.stdout.trim())).toMatchObject({ event: 'plan', routerLimit: ORG_LIMIT });
    const none = await runCli(['plan', '-f', config(''), '-o', 'json']);
    expect(JSON.parse(none.stdout.trim()).routerLimit).toBeUndefined();
  });
});
