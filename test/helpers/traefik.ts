/**
 * A real data plane for the Kubernetes routers: Traefik (pinned, installed by scripts/traefik into
 * ~/.cache/cutover/traefik-<version>/) started outside the test cluster with its admin kubeconfig,
 * on free loopback ports. Two providers read what the routers write:
 *
 * - kubernetesGateway (Gateway API standard channel v1.5 in Traefik 3.7): a GatewayClass and a
 *   Gateway of this run, whose one HTTP listener is Traefik's `web` entry point;
 * - kubernetesIngressNGINX (the `nginx.ingress.kubernetes.io/*` annotations, canaries included):
 *   an IngressClass of this run.
 *
 * Both are named after the test process, and the GatewayClass carries a label Traefik selects on,
 * so Traefik leaves alone the routes and Ingresses that other test files write for no controller.
 * Backends are reached through EndpointSlices: see backend-netns.ts for why they sit in a network
 * namespace. Traefik's API (`/api/rawdata`) tells when a change is live, so tests wait for that
 * event, then judge the routing by real requests.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { spawnServer } from '../../src/sandbox/server-process.js';
import type { TestCluster } from './cluster.js';
import { freePorts } from './ports.js';
import { waitFor } from './sandbox.js';

const INSTALL = resolve(import.meta.dirname, '../../scripts/traefik');
/** Traefik's Gateway API controller name (fixed by Traefik). */
const CONTROLLER = 'traefik.io/gateway-controller';

/** A running Traefik serving this run's Gateway and IngressClass. */
export interface Traefik {
  /** The `web` entry point, where the Gateway listens and Ingresses are served. */
  url: string;
  /** The Gateway, as an HTTPRoute's parentRef. */
  parentRef: { name: string; namespace: string };
  /** The IngressClass whose Ingresses Traefik serves with the ingress-nginx annotations. */
  ingressClass: string;
  /**
   * What Traefik serves now for Kubernetes namespace `namespace`: one line per router (rule,
   * priority, and the servers behind it with their weights), from its live configuration.
   */
  routing(namespace: string): Promise<string>;
  /** Run `change` (a write that changes the routing of `namespace`), then wait until Traefik serves the new routing. */
  settled<T>(namespace: string, change: () => Promise<T>, ms?: number): Promise<T>;
  /** Stop Traefik and delete this run's GatewayClass and IngressClass. */
  stop(): Promise<void>;
}

interface RawData {
  routers?: Record<string, { rule: string; priority?: number; service: string; tls?: unknown; observability?: { metadata?: { ingress?: { namespace?: string } } } }>;
  services?: Record<string, { weighted?: { services: Array<{ name: string; weight?: number }> }; loadBalancer?: { servers?: Array<{ url: string }> } }>;
}

/** Start Traefik against `cluster`; fails loudly when it cannot be installed or does not come up. */
export async function startTraefik(cluster: TestCluster): Promise<Traefik> {
  const installed = await execa('bash', [INSTALL], { reject: false, all: true });
  if (installed.exitCode !== 0) throw new Error(`Traefik could not be installed (scripts/traefik):\n${installed.all}`);
  const binary = installed.stdout.trim();
  const [web, admin] = await freePorts(2);
  const id = String(process.pid);
  const className = `cutover-traefik-${id}`;
  const gatewayNs = await cluster.namespace('traefik');
  const parentRef = { name: 'traefik', namespace: gatewayNs };

  const apiGroup = 'gateway.networking.k8s.io';
  await cluster.api('POST', `/apis/${apiGroup}/v1/gatewayclasses`, {
    apiVersion: `${apiGroup}/v1`, kind: 'GatewayClass',
    metadata: { name: className, labels: { 'cutover.test/traefik': id } },
    spec: { controllerName: CONTROLLER },
  });
  await cluster.api('POST', `/apis/${apiGroup}/v1/namespaces/${gatewayNs}/gateways`, {
    apiVersion: `${apiGroup}/v1`, kind: 'Gateway',
    metadata: { name: parentRef.name },
    spec: { gatewayClassName: className, listeners: [{ name: 'web', port: web, protocol: 'HTTP', allowedRoutes: { namespaces: { from: 'All' } } }] },
  });
  await cluster.api('POST', '/apis/networking.k8s.io/v1/ingressclasses', {
    apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass',
    metadata: { name: className },
    spec: { controller: `cutover.test/traefik-${id}` },
  });

  const dir = mkdtempSync(join(tmpdir(), 'cutover-traefik-'));
  const file = join(dir, 'traefik.yaml');
  // JSON is YAML: Traefik reads the static configuration by the file's extension.
  writeFileSync(file, JSON.stringify({
    global: { checkNewVersion: false, sendAnonymousUsage: false },
    log: { level: 'INFO', noColor: true },
    entryPoints: {
      // asDefault: routers that name no entry point (the ingress-nginx provider's TLS twins) stay off the API port
      web: { address: `127.0.0.1:${web}`, asDefault: true },
      traefik: { address: `127.0.0.1:${admin}` },
    },
    api: { insecure: true },
    ping: { entryPoint: 'traefik' },
    providers: {
      // apply each provider update at once: the tests wait for it
      providersThrottleDuration: '0s',
      kubernetesGateway: { labelSelector: `cutover.test/traefik=${id}` },
      kubernetesIngressNGINX: { ingressClass: className, controllerClass: `cutover.test/traefik-${id}`, httpEntryPoint: 'web' },
    },
  }, null, 2));
  // Traefik's Kubernetes providers take a kubeconfig only from KUBECONFIG.
  const server = spawnServer('env', [`KUBECONFIG=${cluster.kubeconfig}`, binary, `--configFile=${file}`], 80);
  const adminUrl = `http://127.0.0.1:${admin}`;

  const cleanup = async () => {
    await server.stop(5_000);
    await cluster.api('DELETE', `/apis/${apiGroup}/v1/gatewayclasses/${className}`, undefined, { allow: [404] });
    await cluster.api('DELETE', `/apis/networking.k8s.io/v1/ingressclasses/${className}`, undefined, { allow: [404] });
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    await waitFor('Traefik to answer its ping and program the Gateway', async () => {
      if (server.result()) throw new Error(`Traefik exited:\n${server.output()}`);
      const ping = await fetch(`${adminUrl}/ping`).then((r) => r.ok, () => false);
      if (!ping) return false;
      type Gateway = { status?: { conditions?: Array<{ type: string; status: string }> } };
      const { body } = await cluster.api<Gateway>('GET', `/apis/${apiGroup}/v1/namespaces/${gatewayNs}/gateways/${parentRef.name}`);
      return body.status?.conditions?.some((c) => c.type === 'Programmed' && c.status === 'True') ?? false;
    }, 30_000);
  } catch (e) {
    const output = server.output();
    await cleanup();
    throw new Error(`${(e as Error).message}\nTraefik's last lines:\n${output}`);
  }

  const routing = async (namespace: string): Promise<string> => {
    const raw = (await (await fetch(`${adminUrl}/api/rawdata`)).json()) as RawData;
    const describe = (name: string, provider: string): string => {
      const service = raw.services?.[name.includes('@') ? name : `${name}@${provider}`];
      if (service?.weighted) return `{${service.weighted.services.map((s) => `${describe(s.name, provider)} ×${s.weight ?? 1}`).join(', ')}}`;
      if (service?.loadBalancer) return (service.loadBalancer.servers ?? []).map((s) => s.url).join(' | ') || '(no servers)';
      return `(${name}: no such service)`;
    };
    return Object.entries(raw.routers ?? {})
      // an Ingress's default backend is one router for all namespaces, named only in its metadata
      .filter(([key, r]) => (key.includes(namespace) || r.observability?.metadata?.ingress?.namespace === namespace) && !r.tls)
      .map(([key, r]) => ({ priority: r.priority ?? 0, line: `${r.rule} [${r.priority ?? 0}] → ${describe(r.service, key.slice(key.indexOf('@') + 1))}` }))
      .sort((a, b) => b.priority - a.priority || (a.line < b.line ? -1 : 1))
      .map((r) => r.line)
      .join('\n');
  };

  return {
    url: `http://127.0.0.1:${web}`,
    parentRef,
    ingressClass: className,
    routing,
    async settled(namespace, change, ms = 20_000) {
      const before = await routing(namespace);
      const result = await change();
      await waitFor(`Traefik to serve new routes for namespace ${namespace} (it still serves:\n${before})`, async () => (await routing(namespace)) !== before, ms);
      return result;
    },
    stop: cleanup,
  };
}
