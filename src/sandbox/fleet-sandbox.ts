/**
 * A fleet on this machine, for the fleet tests and benchmark: per region two sample versions and
 * a real nginx (its own prefix and ports), optionally one real Prometheus scraping every region's
 * services with a `region` label, and a deploy.yaml whose targets are the regions. `deploy()`
 * runs the built CLI. Everything listens on loopback and is stopped by `stop()`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import type { NginxRouterOptions } from '../routers/nginx/config.js';
import { NginxRouter } from '../routers/nginx/router.js';
import { findNginx, startNginx, type NginxProcess } from './nginx-process.js';
import { freePorts } from './ports.js';
import { startPrometheus, type PrometheusProcess } from './prometheus-process.js';
import { startSampleService, type SampleService } from './sample-service.js';

/** One region: its services, its nginx and a router to read it with. */
export interface Region {
  name: string;
  listen: string;
  options: NginxRouterOptions;
  router: NginxRouter;
  versions: { v1: SampleService; v2: SampleService };
  /** Stop this region's nginx (it stays stopped until `startNginx`). */
  stopNginx(): Promise<void>;
  /** Start this region's nginx again on the same prefix (it restores its last table). */
  startNginx(): Promise<void>;
}

/** A running fleet sandbox. */
export interface FleetSandbox {
  dir: string;
  file: string;
  regions: Region[];
  prometheus?: PrometheusProcess;
  /** Run `deploy ARGS -f file`; never throws on a non-zero exit. */
  deploy(args: string[], opts?: { env?: Record<string, string> }): ResultPromise<{ reject: false; all: false }>;
  /** Rewrite deploy.yaml with another router section body and canary steps. */
  write(parts: { fleet?: string; steps?: string }): void;
  stop(): Promise<void>;
}

/** What a fleet sandbox is started with. */
export interface FleetSandboxOptions {
  /** The CLI launcher (`bin/deploy`). */
  deployBin: string;
  regions: string[];
  /** Lines under `router:` after `type: fleet` (indented by two spaces). */
  fleet?: string;
  /** Lines under `strategy.canary:` (indented by four spaces). */
  steps: string;
  /** Top-level YAML added before `strategy:`; PROMETHEUS_URL is replaced by Prometheus' address. */
  extra?: string;
  prometheus?: boolean;
  lease?: string;
}

/** Start the regions (and Prometheus), write deploy.yaml and put every region on v1. */
export async function startFleetSandbox(opts: FleetSandboxOptions): Promise<FleetSandbox> {
  const dir = mkdtempSync(join(tmpdir(), 'cutover-fleet-'));
  const file = join(dir, 'deploy.yaml');
  const regions: Region[] = [];
  const started: { stop(): Promise<void> }[] = [];
  let prometheus: PrometheusProcess | undefined;
  try {
    for (const name of opts.regions) {
      const versions = { v1: await startSampleService({ version: 'v1' }), v2: await startSampleService({ version: 'v2' }) };
      started.push(versions.v1, versions.v2);
      const [listenPort, adminPort] = await freePorts(2);
      const options: NginxRouterOptions = {
        prefix: join(dir, `nginx-${name}`),
        listen: `127.0.0.1:${listenPort}`,
        admin: `127.0.0.1:${adminPort}`,
        exposeRoute: true,
        upstreams: { v1: [`127.0.0.1:${versions.v1.port}`], v2: [`127.0.0.1:${versions.v2.port}`] },
      };
      let nginx: NginxProcess | undefined = await startNginx(options);
      const region: Region = {
        name,
        listen: options.listen,
        options,
        router: new NginxRouter(options),
        versions,
        async stopNginx() {
          await (nginx ?? (await findNginx(options)))?.stop();
          nginx = undefined;
        },
        async startNginx() {
          nginx = await startNginx(options);
        },
      };
      started.push({ stop: () => region.stopNginx() });
      regions.push(region);
      await region.router.apply({ weights: { v1: 100 } });
    }
    if (opts.prometheus) {
      prometheus = await startPrometheus({
        dataDir: join(dir, 'prometheus'),
        scrapeIntervalMs: 1000,
        scrapeTargets: regions.map((r) => ({ job: `patient-api-${r.name}`, targets: [r.versions.v1, r.versions.v2].map((v) => `127.0.0.1:${v.port}`), labels: { region: r.name } })),
      });
    }
  } catch (e) {
    await Promise.all(started.map((s) => s.stop().catch(() => undefined)));
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const write = (parts: { fleet?: string; steps?: string }) => {
    const targets = regions
      .map((r) =>
        [
          `  ${r.name}:`,
          `    router: { type: nginx, listen: ${r.options.listen}, admin: ${r.options.admin}, prefix: nginx-${r.name}, exposeRoute: true }`,
          `    versions: { v1: { endpoints: ["127.0.0.1:${r.versions.v1.port}"] }, v2: { endpoints: ["127.0.0.1:${r.versions.v2.port}"] } }`,
          `    prometheus: { labels: { region: ${r.name} } }`,
        ].join('\n'),
      )
      .join('\n');
    writeFileSync(
      file,
      `service: patient-api
stable: v1
versions: { v1: {}, v2: {} }
router:
  type: fleet
${parts.fleet ?? opts.fleet ?? ''}
targets:
${targets}
state:
  type: local
  lease: ${opts.lease ?? '1s'}
${(opts.extra ?? '').replaceAll('PROMETHEUS_URL', prometheus?.url ?? 'http://127.0.0.1:1')}strategy:
  canary:
    checkInterval: 100ms
${parts.steps ?? opts.steps}`,
    );
  };
  write({});
  return {
    dir,
    file,
    regions,
    ...(prometheus ? { prometheus } : {}),
    deploy: (args, o = {}) => execa(opts.deployBin, [...args, '-f', file], { reject: false, all: false, env: { CI: 'true', ...o.env }, cwd: dir }),
    write,
    async stop() {
      await prometheus?.stop();
      await Promise.all(started.map((s) => s.stop().catch(() => undefined)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
