/**
 * Running a Cutover-owned nginx: the binary (a missing one is a usage error with the install
 * command), its prefix, starting it from the rendered config, waiting for the config hash its
 * workers serve, and the process table of its workers — what the router needs to reload safely.
 */
import { mkdir, readdir, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { OperationError, UsageError } from '../../errors.js';
import { writeFileAtomic } from '../../state/atomic.js';
import { existsSync } from 'node:fs';
import { ADMIN_SECRET_FILE, adminHeaders, rotateAdminSecret, writeOrgKey } from './secrets.js';
import {
  renderNginxConfigWithHash,
  resolveNginxOptions,
  WORKER_SHUTDOWN_TIMEOUT_S,
  type NginxRouterOptions,
  type ResolvedNginxOptions,
} from './config.js';

/** Runs a program to completion; rejects when it cannot start or exits non-zero. */
export type ExecFn = (file: string, args: string[]) => Promise<{ stdout: string; stderr: string }>;

/** Side effects of the nginx router, injectable so unit tests run without nginx. */
export interface NginxRouterDeps {
  /** Runs `nginx -v`, `nginx -t`, `nginx -s reload` and a daemon start; default execa. */
  exec?: ExecFn;
  /** Talks to the admin server; default the global fetch. */
  fetch?: typeof fetch;
  /** Lists the workers of the nginx master; default `listNginxWorkers` (reads /proc). */
  workers?: WorkerListFn;
}

/** A worker process of an nginx master, as the process table shows it. */
export interface NginxWorker {
  /** Its process id. */
  pid: number;
  /** True once a reload retired it: it only finishes its open connections, on the old config. */
  shuttingDown: boolean;
}

/** Lists the workers of the nginx master `masterPid`; undefined when the process table cannot be read. */
export type WorkerListFn = (masterPid: number) => Promise<NginxWorker[] | undefined>;

export const ADMIN_TIMEOUT_MS = 5_000;
/** One poll while waiting for a reload or a start: short, so a hung poll cannot eat the deadline. */
export const POLL_TIMEOUT_MS = 1_000;
export const RELOAD_TIMEOUT_MS = 5_000;
export const START_TIMEOUT_MS = 5_000;
/** Retired workers are closed by nginx after worker_shutdown_timeout; this leaves it room. */
export const RETIRE_TIMEOUT_MS = WORKER_SHUTDOWN_TIMEOUT_S * 1_000 + 5_000;
export const RETIRE_POLL_MS = 20;
/** The title nginx gives a worker once a reload (or a graceful stop) retires it. */
const RETIRED_WORKER_TITLE = 'nginx: worker process is shutting down';

/**
 * Run nginx. A missing binary is a usage problem (exit 2) with the install command; any other
 * failure is an OperationError carrying nginx's own message (e.g. the `nginx -t` complaint).
 */
export async function runNginx(exec: ExecFn, binary: string, args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await exec(binary, args);
    return `${stdout}${stderr}`;
  } catch (error) {
    const e = error as { code?: unknown; cause?: { code?: unknown }; stderr?: unknown; message?: unknown };
    if (e.code === 'ENOENT' || e.cause?.code === 'ENOENT') {
      throw new UsageError(
        `nginx binary "${binary}" was not found`,
        'install it with `apt-get install nginx libnginx-mod-http-lua`, or set the router binary to its path',
      );
    }
    const detail = typeof e.stderr === 'string' && e.stderr.trim() ? e.stderr.trim() : String(e.message);
    throw new OperationError(`nginx ${args.join(' ')} failed:\n${detail}`);
  }
}

/** execa, reduced to what the router needs. */
export const defaultExec: ExecFn = async (file, args) => {
  const { stdout, stderr } = await execa(file, args);
  return { stdout, stderr };
};

/** The admin base URL (`http://127.0.0.1:8081`) of a router config. */
export function adminUrl(options: Pick<NginxRouterOptions, 'admin' | 'adminEndpoint'>): string {
  return `http://${options.adminEndpoint ?? options.admin}`;
}

/** Create the directories nginx writes into (`conf`, `logs`, `temp`) under the prefix. */
export async function prepareNginxPrefix(prefix: string): Promise<void> {
  for (const dir of ['conf', 'logs', 'temp']) await mkdir(path.join(prefix, dir), { recursive: true });
}

/**
 * Render the config into `options.prefix`, check it with `nginx -t`, start nginx on it (daemon
 * mode) and wait until its admin server serves this config's hash. Fails loudly, with the tail
 * of the error log, when nginx does not come up within 5 s. The caller makes sure no master runs
 * for the prefix yet. Started as root, the workers drop to nginx's default unprivileged user;
 * they need nothing from the prefix (the master opens logs and restores `routes.txt`), so no
 * `user` directive is set.
 */
export async function startNginxDaemon(options: NginxRouterOptions, deps: NginxRouterDeps = {}): Promise<void> {
  const o = resolveNginxOptions(options);
  const exec = deps.exec ?? defaultExec;
  const { config, hash } = renderNginxConfigWithHash(o);
  await installConfig(exec, o, config);
  // Daemon mode: the command returns once the master has forked; the admin check below is what
  // tells us the workers actually serve.
  await runNginx(exec, o.binary, ['-p', `${o.prefix}/`, '-c', 'conf/nginx.conf']);
  await awaitConfigHash(deps.fetch ?? fetch, o, hash, 'start', START_TIMEOUT_MS);
}

/**
 * Make `conf/nginx.conf` hold `config`, unless it already does. The new text is checked with
 * `nginx -t` as `nginx.conf.next` and only then renamed into place, so a config nginx rejects
 * never replaces the one the running master (or the next start) reads.
 */
export async function installConfig(exec: ExecFn, o: ResolvedNginxOptions, config: string): Promise<void> {
  await prepareNginxPrefix(o.prefix);
  // The master reads the secrets as it loads the config: they are in place before any load.
  if (!existsSync(path.join(o.prefix, ADMIN_SECRET_FILE))) await rotateAdminSecret(o.prefix);
  if (o.orgFrom === 'signedCookie') {
    if (!o.orgKey) throw new UsageError('nginx orgFrom signedCookie needs the org cookie key: set the environment variable router.orgKeyEnv names (default CUTOVER_ORG_KEY)');
    await writeOrgKey(o.prefix, o.orgKey);
  }
  const live = path.join(o.prefix, 'conf', 'nginx.conf');
  if ((await readFile(live, 'utf8').catch(() => undefined)) === config) return;
  const next = `${live}.next`;
  await writeFileAtomic(next, config);
  try {
    await runNginx(exec, o.binary, ['-t', '-p', `${o.prefix}/`, '-c', 'conf/nginx.conf.next']);
  } catch (error) {
    await unlink(next).catch(() => undefined);
    throw error;
  }
  await rename(next, live);
}

/** The config hash the admin server serves; undefined when it does not answer with one. */
export async function servedConfigHash(fetchFn: typeof fetch, o: ResolvedNginxOptions, timeoutMs: number): Promise<string | undefined> {
  try {
    const res = await fetchFn(`${adminUrl(o)}/cutover/config`, { headers: adminHeaders(o.prefix), signal: AbortSignal.timeout(timeoutMs) });
    return res.status === 200 ? (await res.text()).trim() : undefined;
  } catch {
    return undefined;
  }
}

/**
 * What the admin server says of its config: its hash; `none` when it answers but has no config
 * endpoint (a config from before it existed); or why it did not answer (down, 5xx, hung).
 */
export async function servedConfig(fetchFn: typeof fetch, o: ResolvedNginxOptions, timeoutMs: number): Promise<{ hash: string } | { none: true } | { unanswered: string }> {
  try {
    const res = await fetchFn(`${adminUrl(o)}/cutover/config`, { headers: adminHeaders(o.prefix), signal: AbortSignal.timeout(timeoutMs) });
    if (res.status === 200) return { hash: (await res.text()).trim() };
    if (res.status === 404) return { none: true };
    return { unanswered: `answered ${res.status} ${(await res.text().catch(() => '')).trim().slice(0, 120)}`.trim() };
  } catch (error) {
    return { unanswered: (error as Error).name === 'TimeoutError' ? `did not answer within ${timeoutMs} ms` : (error as Error).message };
  }
}

/** Poll the admin server until it serves `hash`; after `timeoutMs`, fail with the error log's tail. */
export async function awaitConfigHash(fetchFn: typeof fetch, o: ResolvedNginxOptions, hash: string, after: 'start' | 'reload', timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await servedConfigHash(fetchFn, o, POLL_TIMEOUT_MS)) !== hash) {
    if (Date.now() > deadline) {
      const log = path.join(o.prefix, 'logs', 'error.log');
      const tail = await readFile(log, 'utf8').then((t) => t.trimEnd().split('\n').slice(-20).join('\n'), () => '(no error log)');
      throw new OperationError(
        `nginx did not serve config ${hash} on admin ${o.admin} within ${timeoutMs / 1000}s after a ${after}\n${tail}`,
        `see ${log}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The children of `masterPid` from /proc: their parent (`PPid` in `status`) and their title, which
 * nginx sets to `nginx: worker process is shutting down` once a reload retires them. Undefined
 * where there is no /proc (not Linux).
 */
export const listNginxWorkers: WorkerListFn = async (masterPid) => {
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return undefined;
  }
  const children = await Promise.all(
    entries
      .filter((entry) => /^\d+$/.test(entry))
      .map(async (entry) => {
        const status = await readFile(`/proc/${entry}/status`, 'utf8').catch(() => '');
        if (Number(/^PPid:\s*(\d+)/m.exec(status)?.[1]) !== masterPid) return undefined;
        // nginx writes its title over argv and pads the rest with NULs.
        const title = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).replace(/\0/g, ' ').trim();
        return { pid: Number(entry), shuttingDown: title === RETIRED_WORKER_TITLE };
      }),
  );
  return children.filter((w): w is NginxWorker => w !== undefined);
};

/** The master pid from the pid file the rendered config names; undefined when there is none. */
export async function readMasterPid(prefix: string): Promise<number | undefined> {
  const pid = Number.parseInt(await readFile(path.join(prefix, 'logs', 'nginx.pid'), 'utf8').catch(() => ''), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}
