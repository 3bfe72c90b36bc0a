/**
 * Kubernetes Services whose endpoints are the sample-service backends of a network namespace
 * (backend-netns.ts): no selector, and an EndpointSlice written by the test naming the backend's
 * address and port, as the EndpointSlice controller would for a pod. A data plane reading the
 * Service (Traefik, test/helpers/traefik.ts) then sends its requests across the veth pair.
 */
import type { Backend } from './backend-netns.js';
import type { TestCluster } from './cluster.js';

/** A Service `name` without selector, and an EndpointSlice naming `backend` as its one endpoint. */
export async function serviceFor(cluster: TestCluster, ns: string, name: string, backend: Backend): Promise<void> {
  await serviceOnly(cluster, ns, name, backend);
  await endpointsFor(cluster, ns, name, backend);
}

/** A Service `name` without selector, to `backend`'s port, and no EndpointSlice yet. */
export async function serviceOnly(cluster: TestCluster, ns: string, name: string, backend: Backend): Promise<void> {
  await cluster.api('POST', `/api/v1/namespaces/${ns}/services`, { apiVersion: 'v1', kind: 'Service', metadata: { name }, spec: { ports: [{ name: 'http', port: 80, targetPort: backend.port }] } });
}

/** The EndpointSlice of Service `name`, naming `backend` as its one endpoint. */
export async function endpointsFor(cluster: TestCluster, ns: string, name: string, backend: Backend): Promise<void> {
  await cluster.api('POST', `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`, {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, labels: { 'kubernetes.io/service-name': name, 'endpointslice.kubernetes.io/managed-by': 'cutover-test' } },
    addressType: 'IPv4',
    endpoints: [{ addresses: [backend.address], conditions: { ready: true, serving: true } }],
    ports: [{ name: 'http', port: backend.port, protocol: 'TCP' }],
  });
}
