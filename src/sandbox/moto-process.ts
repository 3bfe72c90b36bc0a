/**
 * moto's server on loopback: an AWS emulator (PyPI `moto[server]`) that speaks the real ELBv2
 * and EC2 APIs, so the `alb` router is tested through the real AWS SDK. `scripts/moto` installs
 * a pinned version into a virtualenv under ~/.cache/cutover once; this starts it on a free port,
 * waits until it answers, resets its state between tests and stops it. It never skips: if the
 * server cannot be installed or started, starting throws with its output.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { execa } from 'execa';
import { OperationError } from '../errors.js';
import { freePort } from './ports.js';
import { spawnServer } from './server-process.js';

/** A running moto server. */
export interface MotoProcess {
  /** `http://127.0.0.1:<port>`: the endpoint URL for every AWS client of a test. */
  readonly url: string;
  readonly port: number;
  /** Forget every resource (`POST /moto-api/reset`), as between tests. */
  reset(): Promise<void>;
  /** SIGTERM and wait (SIGKILL after 5 s). */
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 5_000;
const OUTPUT_TAIL_LINES = 30;

/** The checkout's root: the folder holding scripts/moto, above this file in src/ or dist/src/. */
function checkoutRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'scripts', 'moto'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new OperationError('scripts/moto not found above the sandbox module', 'run from a Cutover checkout');
    dir = up;
  }
  return dir;
}

/**
 * The path of `moto_server`, installing it first when the cache lacks it (`scripts/moto` is
 * quick when it is there already).
 * @throws OperationError with the installer's output when it fails.
 */
export async function motoServerPath(): Promise<string> {
  const result = await execa('bash', [path.join(checkoutRoot(), 'scripts', 'moto')], { reject: false });
  const server = result.stdout.trim().split('\n').at(-1) ?? '';
  if (result.failed || !server) {
    throw new OperationError(`moto's server could not be installed:\n${tail(String(result.stderr))}`, 'scripts/moto installs it with pip into ~/.cache/cutover; it needs python3 with venv');
  }
  return server;
}

/**
 * Start moto's server on 127.0.0.1 and wait until `/moto-api/` answers.
 * @throws OperationError with the tail of its output when it exits or is not up within 30 s.
 */
export async function startMoto(options: { binary?: string; port?: number } = {}): Promise<MotoProcess> {
  const binary = options.binary ?? (await motoServerPath());
  const port = options.port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  const server = spawnServer(binary, ['-H', '127.0.0.1', '-p', String(port)], OUTPUT_TAIL_LINES);

  const deadline = Date.now() + READY_TIMEOUT_MS;
  let up = false;
  while (!up && Date.now() < deadline && server.result() === undefined) {
    try {
      const response = await fetch(`${url}/moto-api/`, { signal: AbortSignal.timeout(1_000) });
      await response.body?.cancel();
      up = response.ok;
    } catch {
      await delay(100);
    }
  }
  if (!up) {
    server.kill();
    await server.exited;
    throw new OperationError(`moto's server on 127.0.0.1:${port} ${server.result() ? 'exited during start-up' : `did not answer within ${READY_TIMEOUT_MS / 1000} s`}:\n${server.output()}`, `it is ${binary}`);
  }

  return {
    url,
    port,
    async reset() {
      const response = await fetch(`${url}/moto-api/reset`, { method: 'POST', signal: AbortSignal.timeout(5_000) });
      await response.body?.cancel();
      if (!response.ok) throw new OperationError(`moto reset answered ${response.status}`);
    },
    stop: () => server.stop(STOP_TIMEOUT_MS),
  };
}

function tail(text: string): string {
  return text.split('\n').slice(-OUTPUT_TAIL_LINES).join('\n');
}
