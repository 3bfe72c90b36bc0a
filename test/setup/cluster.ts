/**
 * Global setup: a run folder for the test Kubernetes control plane. The cluster itself starts
 * lazily, the first time a test asks for it (test/helpers/cluster.ts), so a run without
 * Kubernetes tests never starts one; it is stopped here when the run ends.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    clusterRunDir: string;
  }
}

const SCRIPT = resolve(import.meta.dirname, '../../scripts/test-cluster');

export default function setup(project: TestProject): () => void {
  const runDir = mkdtempSync(join(tmpdir(), 'cutover-cluster-'));
  project.provide('clusterRunDir', runDir);
  return () => {
    const clusterDir = join(runDir, 'cluster');
    if (existsSync(join(clusterDir, 'pids'))) execFileSync('bash', [SCRIPT, 'down', clusterDir], { stdio: 'inherit' });
    rmSync(runDir, { recursive: true, force: true });
  };
}
