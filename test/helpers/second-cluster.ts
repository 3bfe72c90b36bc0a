/**
 * Another real Kubernetes control plane for a test that needs two (a fleet across clusters): the
 * same cached build as the run's cluster, started by scripts/test-cluster on ports of its own in
 * a folder of its own, and stopped by `stop()`. It fails loudly when it cannot start.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { connectCluster, type TestCluster } from './cluster.js';

const SCRIPT = resolve(import.meta.dirname, '../../scripts/test-cluster');

/** A second cluster with admin access, and a way to stop it. */
export interface OwnCluster extends TestCluster {
  stop(): Promise<void>;
}

/** Start a control plane of its own (30–90 s on a busy machine). */
export async function startOwnCluster(): Promise<OwnCluster> {
  const runDir = mkdtempSync(join(tmpdir(), 'cutover-cluster2-'));
  const dir = join(runDir, 'cluster');
  const up = await execa('bash', [SCRIPT, 'up', dir], { reject: false, all: true });
  if (up.exitCode !== 0) {
    rmSync(runDir, { recursive: true, force: true });
    throw new Error(`a second test cluster did not start (scripts/test-cluster up):\n${up.all}`);
  }
  return {
    ...connectCluster(dir),
    async stop() {
      await execa('bash', [SCRIPT, 'down', dir], { reject: false });
      rmSync(runDir, { recursive: true, force: true });
    },
  };
}
