/**
 * Backends a real data plane reaches through Kubernetes Services: one sample service per version
 * (src/sandbox/sample-service.ts, answering with its version), running in a network namespace
 * this helper creates, joined to the test's own namespace by a veth pair.
 *
 * Why a namespace. A Gateway API or Ingress controller sends traffic to a Service's endpoints as
 * its EndpointSlices list them, and kube-apiserver refuses loopback (127.0.0.0/8, ::1) and
 * link-local addresses there, so backends on 127.0.0.1 cannot be endpoints. What else was tried:
 * an ExternalName Service works with Traefik's ingress-nginx provider (it dials the external name
 * at the target port) but its Gateway API provider refuses it ("type ExternalName is not supported
 * for Kubernetes Service reference"); an FQDN EndpointSlice needs a name of two labels or more,
 * which /etc/hosts does not hold (`localhost` is refused), so Traefik would ask DNS off the machine;
 * Traefik's nativeLB dials the Service's ClusterIP, which nothing serves without kube-proxy. So each
 * run makes a network namespace `cutover-<pid>` with a veth pair carrying a /30 of 198.18.0.0/15
 * (RFC 2544's benchmarking range, never routed), puts the backends inside it on the far address,
 * and writes that address into the EndpointSlices. Traffic crosses the veth and never leaves the
 * machine. It needs root and iproute2 (`ip netns`), as the tests' machines have.
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import type { SampleFault } from '../../src/sandbox/sample-service.js';
import { spawnServer, type ServerProcess } from '../../src/sandbox/server-process.js';
import { waitFor } from './sandbox.js';

const run = promisify(execFile);
const SAMPLE_SERVICE = pathToFileURL(resolve(import.meta.dirname, '../../src/sandbox/sample-service.ts')).href;

/** A running backend: one version, listening inside the namespace. */
export interface Backend {
  version: string;
  /** The namespace-side address, as written into EndpointSlices. */
  address: string;
  port: number;
  /** Change its injected faults (src/sandbox/sample-service.ts), through a control port of its own. */
  setFault(fault: SampleFault): Promise<void>;
}

/** The network namespace and the backends in it. */
export interface BackendNetwork {
  /** Name of the network namespace (`ip netns`). */
  name: string;
  /** The address backends listen on, inside the namespace. */
  address: string;
  /** Start a sample service for `version` inside the namespace. */
  start(version: string): Promise<Backend>;
  /** Stop every backend, then delete the veth pair and the namespace. */
  stop(): Promise<void>;
}

/**
 * The sample service run inside the namespace: node loads the TypeScript source directly
 * (type stripping), prints its port, and exits when the test process that started it is gone.
 * Its faults are set over a second port (a JSON SampleFault POSTed to it), so the service's own
 * port serves nothing but the application's requests.
 */
const CHILD = `
const [version, host, parent] = process.argv.slice(1);
const { startSampleService } = await import(${JSON.stringify(SAMPLE_SERVICE)});
const { createServer } = await import('node:http');
const service = await startSampleService({ version, host });
const control = createServer((req, res) => {
  let body = '';
  req.on('data', (chunk) => (body += chunk));
  req.on('end', () => {
    try {
      service.setFault(JSON.parse(body));
      res.end('ok');
    } catch (e) {
      res.writeHead(400).end(String(e));
    }
  });
});
await new Promise((listening) => control.listen(0, host, listening));
console.log(JSON.stringify({ port: service.port, control: control.address().port }));
setInterval(() => { if (String(process.ppid) !== parent) process.exit(0); }, 500).unref();
process.on('SIGTERM', () => service.stop().finally(() => process.exit(0)));
`;

const ip = async (...args: string[]) => {
  try {
    await run('ip', args);
  } catch (e) {
    throw new Error(`ip ${args.join(' ')} failed: ${(e as { stderr?: string }).stderr?.trim() || (e as Error).message}`);
  }
};

/** 198.18.0.0/15 as /30s: the pid picks one, so concurrent runs on one machine do not share it. */
function subnetFor(pid: number): { host: string; inside: string } {
  const base = (198 << 24) + (18 << 16) + (pid % 32_768) * 4;
  const dotted = (n: number) => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
  return { host: dotted(base + 1), inside: dotted(base + 2) };
}

/** Delete namespaces (and their veth pairs) left by test processes that died before stopping them. */
async function sweepStale(): Promise<void> {
  const { stdout } = await run('ip', ['netns', 'list']);
  for (const line of stdout.split('\n')) {
    const pid = Number(/^cutover-(\d+)\b/.exec(line)?.[1]);
    if (!pid || pid === process.pid) continue;
    try {
      process.kill(pid, 0);
      continue; // its owner still runs
    } catch {
      await run('ip', ['link', 'del', `cvt${pid}h`]).catch(() => undefined);
      await run('ip', ['netns', 'del', `cutover-${pid}`]).catch(() => undefined);
    }
  }
}

/** Create the namespace and its veth pair; fails loudly without root or iproute2. */
export async function startBackendNetwork(): Promise<BackendNetwork> {
  if (process.getuid?.() !== 0) throw new Error('the data-plane tests put their backends in a network namespace, which needs root (ip netns)');
  await sweepStale();
  const name = `cutover-${process.pid}`;
  const [hostIf, insideIf] = [`cvt${process.pid}h`, `cvt${process.pid}n`];
  const { host, inside } = subnetFor(process.pid);
  await ip('netns', 'add', name);
  const backends: ServerProcess[] = [];
  const network: BackendNetwork = {
    name,
    address: inside,
    async start(version) {
      const child = spawnServer('ip', ['netns', 'exec', name, process.execPath, '--experimental-strip-types', '--disable-warning=ExperimentalWarning', '--input-type=module', '-e', CHILD, version, inside, String(process.pid)]);
      backends.push(child);
      let port = 0;
      let control = 0;
      await waitFor(`the ${version} backend to listen in namespace ${name}`, () => {
        if (child.result()) throw new Error(`the ${version} backend exited: ${child.output()}`);
        const ports = /\{"port":(\d+),"control":(\d+)\}/.exec(child.output());
        [port, control] = [Number(ports?.[1] ?? 0), Number(ports?.[2] ?? 0)];
        return port > 0;
      }, 15_000);
      const setFault = async (fault: SampleFault) => {
        const answer = await fetch(`http://${inside}:${control}/`, { method: 'POST', body: JSON.stringify(fault) });
        if (!answer.ok) throw new Error(`the ${version} backend refused fault ${JSON.stringify(fault)}: ${await answer.text()}`);
      };
      return { version, address: inside, port, setFault };
    },
    async stop() {
      await Promise.all(backends.map((b) => b.stop(5_000)));
      await run('ip', ['link', 'del', hostIf]).catch(() => undefined);
      await ip('netns', 'del', name);
    },
  };
  try {
    await ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', insideIf, 'netns', name);
    await ip('addr', 'add', `${host}/30`, 'dev', hostIf);
    await ip('link', 'set', hostIf, 'up');
    await ip('-n', name, 'addr', 'add', `${inside}/30`, 'dev', insideIf);
    await ip('-n', name, 'link', 'set', insideIf, 'up');
    await ip('-n', name, 'link', 'set', 'lo', 'up');
  } catch (e) {
    await network.stop().catch(() => undefined);
    throw e;
  }
  return network;
}
