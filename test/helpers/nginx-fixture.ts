/**
 * Real nginx in front of two sample services (v1, v2) on free loopback ports, in a temp prefix,
 * with org routing by header and cookie: what the nginx router's integration tests start once
 * per file and stop after.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { NginxRouterOptions } from '../../src/routers/nginx/config.js';
import { startNginx, type NginxProcess } from '../../src/sandbox/nginx-process.js';
import { startSampleService, type SampleService } from '../../src/sandbox/sample-service.js';
import { freePorts } from './ports.js';

/** A running nginx and its two versions. */
export interface NginxFixture {
  options: NginxRouterOptions;
  nginx: NginxProcess;
  v1: SampleService;
  v2: SampleService;
  /** `http://listen/`. */
  publicUrl: string;
  stop(): Promise<void>;
}

/** Start v1, v2 and nginx before them; `name` names the temp prefix. Throws when nginx cannot start. */
export async function startNginxFixture(name: string): Promise<NginxFixture> {
  const prefix = await mkdtemp(path.join(os.tmpdir(), `cutover-${name}-`));
  const [v1, v2] = await Promise.all([startSampleService({ version: 'v1' }), startSampleService({ version: 'v2' })]);
  const [listenPort, adminPort] = await freePorts(2);
  const options: NginxRouterOptions = {
    prefix,
    listen: `127.0.0.1:${listenPort}`,
    admin: `127.0.0.1:${adminPort}`,
    orgHeader: 'X-Org-Id',
    orgCookie: 'cutover_org',
    // Tests read which version answered from this header.
    exposeRoute: true,
    upstreams: { v1: [`127.0.0.1:${v1.port}`], v2: [`127.0.0.1:${v2.port}`] },
  };
  const stopServices = async () => {
    await Promise.all([v1.stop(), v2.stop()]);
    await rm(prefix, { recursive: true, force: true });
  };
  let nginx: NginxProcess;
  try {
    nginx = await startNginx(options);
  } catch (e) {
    await stopServices();
    throw e;
  }
  return {
    options,
    nginx,
    v1,
    v2,
    publicUrl: `http://${options.listen}/`,
    async stop() {
      await nginx.stop();
      await stopServices();
    },
  };
}
