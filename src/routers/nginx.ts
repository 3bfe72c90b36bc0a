/**
 * The `nginx` router. Structure (one upstream per version, ports, modules) is a full main config
 * that Cutover renders into a prefix it owns, checks with `nginx -t` and reloads only when it
 * changed. Routing (weights and org pins) is never reloaded: it is a table stored in a
 * `lua_shared_dict` through a loopback admin server inside the same nginx, because a reload resets
 * idle keep-alive connections and a weight step must not fail a single request.
 *
 * The config itself is rendered in `nginx-config.ts` and the table in `nginx-table.ts`; this file
 * holds what talks to a live nginx.
 */
import { mkdir, readdir, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { OperationError, UsageError } from '../errors.js';
import { writeFileAtomic } from '../state/atomic.js';
import {
  renderNginxConfigWithHash,
  resolveNginxOptions,
  WORKER_SHUTDOWN_TIMEOUT_S,
  type NginxRouterOptions,
  type ResolvedNginxOptions,
} from './nginx-config.js';
import { parseRoutingTable, renderRoutingTable } from './nginx-table.js';
import {
  sameRoutes,
  type ApplyResult,
  type LiveRoutes,
  type RouteSpec,
  type Router,
  type Verification,
} from './router.js';

// Still imported from here by the router factory and the CLI test sandbox.
export type { NginxRouterOptions } from './nginx-config.js';

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

const ADMIN_TIMEOUT_MS = 5_000;
/** One poll while waiting for a reload or a start: short, so a hung poll cannot eat the deadline. */
const POLL_TIMEOUT_MS = 1_000;
const RELOAD_TIMEOUT_MS = 5_000;
const START_TIMEOUT_MS = 5_000;
/** Retired workers are closed by nginx after worker_shutdown_timeout; this leaves it room. */
const RETIRE_TIMEOUT_MS = WORKER_SHUTDOWN_TIMEOUT_S * 1_000 + 5_000;
const RETIRE_POLL_MS = 20;
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
export function adminUrl(options: Pick<NginxRouterOptions, 'admin'>): string {
  return `http://${options.admin}`;
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
async function installConfig(exec: ExecFn, o: ResolvedNginxOptions, config: string): Promise<void> {
  await prepareNginxPrefix(o.prefix);
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
async function servedConfigHash(fetchFn: typeof fetch, o: ResolvedNginxOptions, timeoutMs: number): Promise<string | undefined> {
  try {
    const res = await fetchFn(`${adminUrl(o)}/cutover/config`, { signal: AbortSignal.timeout(timeoutMs) });
    return res.status === 200 ? (await res.text()).trim() : undefined;
  } catch {
    return undefined;
  }
}

/** Poll the admin server until it serves `hash`; after `timeoutMs`, fail with the error log's tail. */
async function awaitConfigHash(fetchFn: typeof fetch, o: ResolvedNginxOptions, hash: string, after: 'start' | 'reload', timeoutMs: number): Promise<void> {
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
async function readMasterPid(prefix: string): Promise<number | undefined> {
  const pid = Number.parseInt(await readFile(path.join(prefix, 'logs', 'nginx.pid'), 'utf8').catch(() => ''), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** A routing table as the admin server holds it: parsed, plus the raw text (undefined if none). */
interface LiveTable {
  routes: LiveRoutes;
  text: string | undefined;
}

/**
 * Router over a Cutover-owned nginx. `apply` first makes the structure match (render, `nginx -t`,
 * reload only if the running config hash differs), then writes the routing table as one new
 * generation through the admin server and reads it back. The nginx process itself is started by
 * `preflight` when nothing answers on the admin address, by `startNginx` in the sandbox, or by the
 * system's service manager with the rendered config.
 */
export class NginxRouter implements Router {
  /** Provider name as in config. */
  readonly type = 'nginx';
  private readonly options: ResolvedNginxOptions;
  private readonly exec: ExecFn;
  private readonly fetch: typeof fetch;
  private readonly workers: WorkerListFn;

  /** Validates the options at once, so bad config fails before anything is touched. */
  constructor(options: NginxRouterOptions, deps: NginxRouterDeps = {}) {
    this.options = resolveNginxOptions(options);
    this.exec = deps.exec ?? defaultExec;
    this.fetch = deps.fetch ?? fetch;
    this.workers = deps.workers ?? listNginxWorkers;
  }

  /**
   * The binary must run (`nginx -v`: a missing one is exit 2) and the admin server must answer.
   * When nothing answers, Cutover owns the prefix, so it starts nginx there on the rendered config
   * rather than sending the operator off to do it; only a failed start is an error.
   */
  async preflight(): Promise<void> {
    const { binary, prefix, admin } = this.options;
    await runNginx(this.exec, binary, ['-v']);
    let status: number;
    try {
      status = (await this.admin('GET', '/cutover/config')).status;
    } catch {
      await startNginxDaemon(this.options, { exec: this.exec, fetch: this.fetch }).catch((error: unknown) => {
        if (!(error instanceof OperationError)) throw error;
        throw new OperationError(
          `nginx is not running with Cutover's config at ${prefix} and could not be started: ${error.message}`,
          `see ${path.join(prefix, 'logs', 'error.log')}; once fixed, the next deploy starts it, or run \`${binary} -p ${prefix}/ -c conf/nginx.conf\``,
        );
      });
      return;
    }
    if (status !== 200) {
      throw new OperationError(
        `${adminUrl(this.options)}/cutover/config answered ${status}: something other than Cutover's nginx listens on ${admin}`,
        'free that port or set router.admin to another loopback port',
      );
    }
  }

  /** Make `spec` live as one generation (structure first, if it changed), then read it back. */
  async apply(spec: RouteSpec): Promise<ApplyResult> {
    this.checkSpec(spec);
    await this.ensureStructure();
    const live = await this.readTable();
    if (live.text !== undefined && sameRoutes(live.routes, spec)) {
      return { changed: false, generation: live.routes.generation };
    }
    const generation = (live.routes.generation ?? 0) + 1;
    const text = renderRoutingTable(spec, generation);
    // routes.txt is what a cold-started nginx restores; it is written first so that a crash
    // between the two writes never leaves nginx restarting into an older table than it served.
    const saved = path.join(this.options.prefix, 'routes.txt');
    await writeFileAtomic(saved, text);
    try {
      const put = await this.admin('PUT', '/cutover/routes', text);
      if (put.status !== 200) throw new OperationError(`nginx refused routing generation ${generation} (${put.status}): ${put.body.trim()}`);
    } catch (error) {
      if (live.text === undefined) await unlink(saved).catch(() => undefined);
      else await writeFileAtomic(saved, live.text);
      throw error;
    }
    const back = await this.read();
    if (back.generation !== generation || !sameRoutes(back, spec)) {
      throw new OperationError(
        `nginx routing read back as generation ${back.generation} ${summarize(back)}, expected generation ${generation} ${summarize(spec)}`,
        'another driver may have written; run `deploy status` before retrying',
      );
    }
    return { changed: true, generation };
  }

  /** The live routing; generation 0 with no weights when nginx holds no table yet. */
  async read(): Promise<LiveRoutes> {
    return (await this.readTable()).routes;
  }

  /** Compare the live routing with `spec`; an unreachable admin server makes it unverifiable. */
  async verify(spec: RouteSpec): Promise<Verification> {
    let live: LiveRoutes;
    try {
      live = await this.read();
    } catch (error) {
      return { status: 'unverifiable', detail: error instanceof Error ? error.message : String(error) };
    }
    if (sameRoutes(live, spec)) return { status: 'verified', live };
    return { status: 'mismatch', live, detail: `live ${summarize(live)}, expected ${summarize(spec)}` };
  }

  /** All traffic to `fallbackVersion`, no org pins, as one generation. */
  async removeManaged(fallbackVersion: string): Promise<void> {
    await this.apply({ weights: { [fallbackVersion]: 100 }, orgs: {} });
  }

  private checkSpec(spec: RouteSpec): void {
    const known = Object.keys(this.options.upstreams);
    const unpinned = spec.unpinned?.mode === 'version' ? [spec.unpinned.version] : [];
    const used = [...Object.keys(spec.weights), ...Object.values(spec.orgs ?? {}), ...unpinned];
    const unknown = used.find((v) => !known.includes(v));
    if (unknown !== undefined) {
      throw new UsageError(`version "${unknown}" has no nginx upstream (known: ${known.join(', ')})`);
    }
    renderRoutingTable(spec, 0); // the same checks as the write: names, org ids, weights sum
  }

  /**
   * Reload only when the running workers do not serve the config this router renders, and return
   * only once no worker of an earlier config is left. A reload retires the old workers but lets
   * them finish their open keep-alive connections on the old config, while the routing dict is
   * shared with them: a table naming a new version written before they are gone would reach
   * workers that have no upstream for it. So the workers of the previous generation are awaited
   * (nginx closes them after worker_shutdown_timeout), also when an earlier reload left some.
   */
  private async ensureStructure(): Promise<void> {
    const { config, hash } = renderNginxConfigWithHash(this.options);
    const { prefix, binary } = this.options;
    const master = await readMasterPid(prefix);
    if ((await servedConfigHash(this.fetch, this.options, ADMIN_TIMEOUT_MS)) === hash) {
      if (master !== undefined) await this.awaitRetiredWorkers(master, new Set(), false);
      return;
    }
    // The workers serving now, before the reload: after it, any of them still alive is old, even
    // before the master has got round to retitling it as shutting down.
    const previous = master === undefined ? undefined : await this.workers(master);
    await installConfig(this.exec, this.options, config);
    await runNginx(this.exec, binary, ['-p', `${prefix}/`, '-c', 'conf/nginx.conf', '-s', 'reload']);
    await awaitConfigHash(this.fetch, this.options, hash, 'reload', RELOAD_TIMEOUT_MS);
    // `nginx -s reload` itself needs the pid file, so after it the master is known.
    if (master !== undefined) await this.awaitRetiredWorkers(master, new Set(previous?.map((w) => w.pid)), true);
  }

  /**
   * Poll every 20 ms until no child of `master` is in `previous` or titled as shutting down; an
   * OperationError after 15 s. Where the process table cannot be read, a reload waits out the
   * whole worker_shutdown_timeout instead, the bound nginx itself guarantees.
   */
  private async awaitRetiredWorkers(master: number, previous: Set<number>, afterReload: boolean): Promise<void> {
    const deadline = Date.now() + RETIRE_TIMEOUT_MS;
    for (;;) {
      const workers = await this.workers(master);
      if (workers === undefined) {
        if (afterReload) await new Promise((r) => setTimeout(r, WORKER_SHUTDOWN_TIMEOUT_S * 1_000 + 500));
        return;
      }
      const old = workers.filter((w) => w.shuttingDown || previous.has(w.pid));
      if (old.length === 0) return;
      if (Date.now() > deadline) {
        throw new OperationError(
          `${old.length} nginx worker(s) of an earlier config (pid ${old.map((w) => w.pid).join(', ')}) still run ${RETIRE_TIMEOUT_MS / 1000}s after the reload; the routing was not written`,
          `see ${path.join(this.options.prefix, 'logs', 'error.log')}, then run the command again`,
        );
      }
      await new Promise((r) => setTimeout(r, RETIRE_POLL_MS));
    }
  }

  private async readTable(): Promise<LiveTable> {
    const res = await this.admin('GET', '/cutover/routes');
    if (res.status === 404) return { routes: { generation: 0, weights: {}, orgs: {}, unpinned: { mode: 'weighted' } }, text: undefined };
    if (res.status !== 200) throw new OperationError(`nginx admin answered ${res.status}: ${res.body.trim()}`);
    return { routes: parseRoutingTable(res.body), text: res.body };
  }

  private async admin(method: 'GET' | 'PUT', route: string, body?: string): Promise<{ status: number; body: string }> {
    const url = `${adminUrl(this.options)}${route}`;
    try {
      const res = await this.fetch(url, { method, body, signal: AbortSignal.timeout(ADMIN_TIMEOUT_MS) });
      return { status: res.status, body: await res.text() };
    } catch (error) {
      throw new OperationError(
        `nginx admin ${method} ${url} failed: ${error instanceof Error ? error.message : String(error)}`,
        'is nginx running with the config Cutover rendered? see logs/error.log in the prefix',
      );
    }
  }
}

function summarize(routes: RouteSpec): string {
  const weights = Object.entries(routes.weights).map(([v, w]) => `${v}=${w}%`).join(' ');
  const unpinned = routes.unpinned?.mode === 'version' ? `unpinned orgs on ${routes.unpinned.version}` : 'unpinned orgs by weight';
  return `[${weights || 'no weights'}; ${Object.keys(routes.orgs ?? {}).length} org pins; ${unpinned}]`;
}
