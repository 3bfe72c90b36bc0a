/** `deploy rbac`'s rules: exactly the verbs on exactly the objects deploy.yaml names. */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/parse.js';
import { rbacObjects, rbacRules } from '../../src/kube/rbac.js';

const config = (router: string, state = '') =>
  parseConfig(
    `service: patient-api
stable: v1
versions:
  v1: { image: "acme/patient-api:1.4" }
  v2: { image: "acme/patient-api:1.5" }
kubernetes: { namespace: clinical }
workload: { type: kubernetes, deployment: patient-api }
router:
${router}
${state}`,
    'deploy.yaml',
  );

describe('deploy rbac', () => {
  it('names the Deployments, Services and HTTPRoute of a gateway-api config', () => {
    expect(rbacRules(config('  type: gateway-api\n  httpRoute: patient-api\n  service: patient-api'))).toEqual([
      { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'update'], resourceNames: ['patient-api', 'patient-api-canary'] },
      { apiGroups: ['apps'], resources: ['deployments'], verbs: ['create'] },
      { apiGroups: [''], resources: ['services'], verbs: ['get'], resourceNames: ['patient-api', 'patient-api-canary'] },
      { apiGroups: [''], resources: ['services'], verbs: ['create'] },
      { apiGroups: ['gateway.networking.k8s.io'], resources: ['httproutes'], verbs: ['get', 'update'], resourceNames: ['patient-api'] },
      { apiGroups: ['gateway.networking.k8s.io'], resources: ['httproutes'], verbs: ['create'] },
    ]);
  });

  it('adds the Lease and ConfigMaps of the kubernetes state backend, and binds a ServiceAccount', () => {
    const c = config('  type: ingress-nginx\n  ingress: patient-api\n  service: patient-api', 'state: { type: kubernetes }');
    const rules = rbacRules(c);
    expect(rules).toContainEqual({ apiGroups: ['networking.k8s.io'], resources: ['ingresses'], verbs: ['get', 'update', 'delete'], resourceNames: ['patient-api-canary'] });
    expect(rules).toContainEqual({ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'update', 'delete'], resourceNames: ['cutover-patient-api'] });
    const [role, binding] = rbacObjects(c, 'clinical', { kind: 'ServiceAccount', name: 'ci', namespace: 'clinical' });
    expect(role).toMatchObject({ kind: 'Role', metadata: { name: 'cutover-patient-api', namespace: 'clinical' } });
    expect(binding).toMatchObject({ kind: 'RoleBinding', roleRef: { kind: 'Role', name: 'cutover-patient-api' }, subjects: [{ kind: 'ServiceAccount', name: 'ci', namespace: 'clinical' }] });
  });

  it('refuses a Kubernetes router without the kubernetes workload', () => {
    expect(() => parseConfig(`service: a\nstable: v1\nversions: { v1: {} }\nrouter: { type: gateway-api, httpRoute: a, service: a }\n`, 'deploy.yaml')).toThrow(
      /router\.type: gateway-api routes to a stable and a canary Service: add workload: \{ type: kubernetes/,
    );
  });
});
