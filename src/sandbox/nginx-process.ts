/**
 * Start and stop a Cutover-owned nginx in a prefix directory, for the sandbox demo and the
 * integration tests. Starting is the router's own `startNginxDaemon` (the same code its preflight
 * uses); this adds the pid bookkeeping a test needs to stop what it started. Production nginx is
 * usually started by the system's service manager, or by the router's preflight.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { OperationError } from '../errors.js';
import type { NginxRouterOptions } from '../routers/nginx/config.js';
import { defaultExec, runNginx, startNginxDaemon, type NginxRouterDeps } from '../routers/nginx/router.js';

/** A running nginx master started by `startNginx` or found by `findNginx`. */
export interface NginxProcess {
  /** Process id of the nginx master. */
  readonly pid: number;
  /** Fast shutdown (`nginx -s stop`, SIGTERM as fallback); resolves once the master is gone. */
  stop(): Promise<void>;
}

/** Side effects of starting nginx: the router's, so both run nginx the same way. */
export type NginxProcessDeps = NginxRouterDeps;

const STOP_TIMEOUT_MS = 5_000;

/**
 * Render the config into `options.prefix`, check it with `nginx -t`, start nginx (daemon mode)
 * and wait until its admin server serves this config's hash. Refuses when a master already runs
 * for the prefix, and fails loudly, with the tail of the error log, when nginx does not come up
 * within 5 s: a test must never pass without nginx.
 */
export async function startNginx(options: NginxRouterOptions, deps: NginxProcessDeps = {}): Promise<NginxProcess> {
  const stale = await findNginx(options, deps);
  if (stale !== undefined) {
    throw new OperationError(
      `nginx already runs for prefix ${options.prefix} (pid ${stale.pid})`,
      `stop it with \`${options.binary ?? 'nginx'} -p ${options.prefix}/ -s stop\` first`,
    );
  }
  await startNginxDaemon(options, deps);
  const started = await findNginx(options, deps);
  if (started === undefined) throw new OperationError(`nginx started but wrote no live pid to ${pidFile(options)}`);
  return started;
}

/**
 * The nginx master running for `options.prefix`, from its pid file; undefined when none is alive.
 * Lets a caller stop an nginx it did not start itself, such as one the router's preflight started.
 */
export async function findNginx(options: NginxRouterOptions, deps: NginxProcessDeps = {}): Promise<NginxProcess | undefined> {
  const pid = await readPid(pidFile(options));
  if (pid === undefined || !isAlive(pid)) return undefined;
  const exec = deps.exec ?? defaultExec;
  const binary = options.binary ?? 'nginx';
  return {
    pid,
    async stop() {
      try {
        await runNginx(exec, binary, ['-p', `${options.prefix}/`, '-c', 'conf/nginx.conf', '-s', 'stop']);
      } catch {
        // The pid file may be gone or stale; signal the master we know directly.
        if (isAlive(pid)) process.kill(pid, 'SIGTERM');
      }
      const stopBy = Date.now() + STOP_TIMEOUT_MS;
      while (isAlive(pid)) {
        if (Date.now() > stopBy) {
          process.kill(pid, 'SIGKILL');
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
  };
}

function pidFile(options: NginxRouterOptions): string {
  return path.join(options.prefix, 'logs', 'nginx.pid');
}

async function readPid(file: string): Promise<number | undefined> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const pid = Number.parseInt(text.trim(), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else, which still means alive.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
