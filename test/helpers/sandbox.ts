/**
 * A real sandbox for CLI tests: two sample versions, a real nginx on free loopback ports with a
 * temp prefix, and a deploy.yaml pointing at them. `deploy()` runs the built CLI as a real process.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { NginxRouter, type NginxRouterOptions } from '../../src/routers/nginx/router.js';
import { startNginx, type NginxProcess } from '../../src/sandbox/nginx-process.js';
import { startPrometheus, type PrometheusProcess } from '../../src/sandbox/prometheus-process.js';
import { startSampleService, type SampleService } from '../../src/sandbox/sample-service.js';
import { freePorts } from './ports.js';

/** The built CLI launcher. */
export const DEPLOY = resolve(import.meta.dirname, '../../bin/deploy');

/** A running sandbox. */
export interface Sandbox {
  dir: string;
  file: string;
  listen: string;
  router: NginxRouter;
  versions: Record<string, SampleService>;
  /** Present when the sandbox was started with Prometheus; replaced by `restartPrometheus`. */
  prometheus?: PrometheusProcess;
  /** Start Prometheus again on the same port and data (after `prometheus.kill()`). */
  restartPrometheus(): Promise<void>;
  /** Run `deploy ARGS -f file`; never throws on a non-zero exit. */
  deploy(args: string[], opts?: { env?: Record<string, string> }): ResultPromise<{ reject: false; all: false }>;
  /** Rewrite the canary steps of deploy.yaml. */
  setSteps(yaml: string): void;
  stop(): Promise<void>;
}

/**
 * Start v1 and v2, nginx in front, and write deploy.yaml with `stepsYaml` under strategy.canary.
 * With `prometheus`, a real Prometheus scrapes both versions every second and `extra` may use
 * `PROMETHEUS_URL`, which is replaced by its address. The driver lock's lease is 1 s unless
 * `lease` says otherwise.
 */
export async function startSandbox(stepsYaml: string, extra = '', opts: { prometheus?: boolean; lease?: string } = {}): Promise<Sandbox> {
  const dir = mkdtempSync(join(tmpdir(), 'cutover-it-'));
  const file = join(dir, 'deploy.yaml');
  const versions = { v1: await startSampleService({ version: 'v1' }), v2: await startSampleService({ version: 'v2' }) };
  const promOptions = {
    dataDir: join(dir, 'prometheus'),
    scrapeIntervalMs: 1000,
    scrapeTargets: [{ job: 'patient-api', targets: Object.values(versions).map((v) => `127.0.0.1:${v.port}`) }],
  };
  let prometheus: PrometheusProcess | undefined;
  if (opts.prometheus) {
    try {
      prometheus = await startPrometheus(promOptions);
    } catch (e) {
      await Promise.all(Object.values(versions).map((v) => v.stop()));
      throw e;
    }
    extra = extra.replaceAll('PROMETHEUS_URL', prometheus.url);
  }
  const [listenPort, adminPort] = await freePorts(2);
  const listen = `127.0.0.1:${listenPort}`;
  const admin = `127.0.0.1:${adminPort}`;
  const options: NginxRouterOptions = {
    prefix: join(dir, 'nginx'),
    listen,
    admin,
    upstreams: { v1: [`127.0.0.1:${versions.v1.port}`], v2: [`127.0.0.1:${versions.v2.port}`] },
  };
  const write = (steps: string) =>
    writeFileSync(
      file,
      `service: patient-api
stable: v1
versions:
  v1: { endpoints: ["127.0.0.1:${versions.v1.port}"] }
  v2: { endpoints: ["127.0.0.1:${versions.v2.port}"] }
router:
  type: nginx
  listen: ${listen}
  admin: ${admin}
  prefix: nginx
state:
  type: local
  lease: ${opts.lease ?? '1s'}
${extra}strategy:
  canary:
    checkInterval: 100ms
${steps}`,
    );
  write(stepsYaml);
  let nginx: NginxProcess;
  try {
    nginx = await startNginx(options);
  } catch (e) {
    await prometheus?.stop();
    await Promise.all(Object.values(versions).map((v) => v.stop()));
    throw e;
  }
  const router = new NginxRouter(options);
  await router.apply({ weights: { v1: 100 } });
  const sandbox: Sandbox = {
    dir,
    file,
    listen,
    router,
    versions,
    ...(prometheus ? { prometheus } : {}),
    async restartPrometheus() {
      await sandbox.prometheus?.exited;
      sandbox.prometheus = await startPrometheus({ ...promOptions, port: sandbox.prometheus!.port });
    },
    deploy: (args, opts = {}) =>
      execa(DEPLOY, [...args, '-f', file], { reject: false, all: false, env: { CI: 'true', ...opts.env }, cwd: dir }),
    setSteps: write,
    async stop() {
      await nginx.stop();
      await sandbox.prometheus?.stop();
      await Promise.all(Object.values(versions).map((v) => v.stop()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return sandbox;
}

/** Send `n` keep-alive requests through nginx and count the answering versions. */
export async function sample(listen: string, n: number, concurrency = 16): Promise<{ byVersion: Record<string, number>; failed: number }> {
  const { Agent, request } = await import('node:http');
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const byVersion: Record<string, number> = {};
  let failed = 0;
  let next = 0;
  const one = () =>
    new Promise<void>((done) => {
      const req = request(`http://${listen}/`, { agent }, (res) => {
        res.resume();
        res.on('end', () => {
          const v = res.statusCode === 200 ? String(res.headers['x-version']) : undefined;
          if (v) byVersion[v] = (byVersion[v] ?? 0) + 1;
          else failed += 1;
          done();
        });
      });
      req.on('error', () => {
        failed += 1;
        done();
      });
      req.end();
    });
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        next += 1;
        await one();
      }
    }),
  );
  agent.destroy();
  return { byVersion, failed };
}

/** Collect a running command's stdout as JSON events, to wait on while it runs. */
export function followEvents(run: { stdout: NodeJS.ReadableStream | null }): () => Record<string, unknown>[] {
  let out = '';
  run.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  return () => jsonLines(out);
}

/** Poll `check` every 50 ms until it holds; fail naming `what` after `ms`. */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** JSON lines of a command's stdout. */
export function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}
