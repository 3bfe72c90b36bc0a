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
import { unlink } from 'node:fs/promises';
import path from 'node:path';
import { LockedError, OperationError, UsageError } from '../../errors.js';
import { writeFileAtomic } from '../../state/atomic.js';
import { renderNginxConfigWithHash, resolveNginxOptions, WORKER_SHUTDOWN_TIMEOUT_S, type NginxRouterOptions, type ResolvedNginxOptions } from './config.js';
import {
  ADMIN_TIMEOUT_MS,
  adminUrl,
  awaitConfigHash,
  defaultExec,
  installConfig,
  listNginxWorkers,
  readMasterPid,
  RELOAD_TIMEOUT_MS,
  RETIRE_POLL_MS,
  RETIRE_TIMEOUT_MS,
  runNginx,
  servedConfig,
  startNginxDaemon,
  type ExecFn,
  type NginxRouterDeps,
  type WorkerListFn,
} from './daemon.js';
import { adminHeaders, adminSecretIfAny, restoreAdminSecret, rotateAdminSecret } from './secrets.js';
import { parseRoutingTable, renderRoutingTable } from './table.js';
import {
  sameRoutes,
  type ApplyResult,
  type LiveRoutes,
  type RouteSpec,
  type Router,
  type StagedRoutes,
  type Verification,
} from '../router.js';

// Imported from here by the factory, the sandbox and tests.
export type { NginxRouterOptions } from './config.js';
export { adminUrl, defaultExec, listNginxWorkers, prepareNginxPrefix, runNginx, startNginxDaemon } from './daemon.js';
export type { ExecFn, NginxRouterDeps, NginxWorker, WorkerListFn } from './daemon.js';

/** How long after an activation instant nginx may still read back the older generation (its clock's skew). */
const ACTIVATION_SKEW_MS = 1_000;

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
  /** The generation this router staged last and has not activated yet. */
  private staged: { generation: number; text: string; spec: RouteSpec; previous: string | undefined } | undefined;

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

  /** Whether Cutover's nginx runs for this prefix, and what it serves. */
  async machinery(): Promise<{ running: boolean; facts: Record<string, string | number> }> {
    const { prefix, listen, admin } = this.options;
    const master = await readMasterPid(prefix);
    const alive = master !== undefined && (() => {
      try {
        process.kill(master, 0);
        return true;
      } catch {
        return false;
      }
    })();
    const facts: Record<string, string | number> = { prefix, listen, admin };
    if (!alive) return { running: false, facts };
    facts.pid = master!;
    const workers = await this.workers(master!);
    if (workers) facts.workers = workers.filter((w) => !w.shuttingDown).length;
    const served = await servedConfig(this.fetch, this.options, ADMIN_TIMEOUT_MS);
    facts.config = 'hash' in served ? (served.hash === renderNginxConfigWithHash(this.options).hash ? `${served.hash} (as deploy.yaml renders it)` : `${served.hash} (deploy.yaml renders another: the next write reloads)`) : 'unanswered' in served ? `admin ${served.unanswered}` : 'none';
    const live = await this.read().catch(() => undefined);
    if (live) facts.routing = `generation ${live.generation ?? 0}: ${summarize(live)}`;
    return { running: true, facts };
  }

  /** A graceful quit of Cutover's nginx: workers finish their requests, then exit. */
  async stopMachinery(): Promise<void> {
    const { prefix, binary } = this.options;
    if ((await readMasterPid(prefix)) === undefined) return;
    await runNginx(this.exec, binary, ['-p', `${prefix}/`, '-c', 'conf/nginx.conf', '-s', 'quit']);
  }

  /** A new admin secret, loaded by a reload of the running nginx; the old one is refused after it. */
  async rotateSecret(): Promise<void> {
    const { prefix, binary } = this.options;
    const { hash } = renderNginxConfigWithHash(this.options);
    const old = adminSecretIfAny(prefix);
    await rotateAdminSecret(prefix);
    try {
      await runNginx(this.exec, binary, ['-p', `${prefix}/`, '-c', 'conf/nginx.conf', '-s', 'reload']);
      await awaitConfigHash(this.fetch, this.options, hash, 'reload', RELOAD_TIMEOUT_MS);
    } catch (error) {
      if (old !== undefined) await restoreAdminSecret(prefix, old);
      throw error;
    }
  }

  /** Make `spec` live as one generation (structure first, if it changed), then read it back. */
  async apply(spec: RouteSpec): Promise<ApplyResult> {
    this.check(spec);
    await this.ensureStructure();
    const live = await this.readTable();
    if (live.text !== undefined && sameRoutes(live.routes, spec)) {
      return { changed: false, generation: live.routes.generation };
    }
    refuseOlderFence(spec, live.routes.fence);
    const generation = (live.routes.generation ?? 0) + 1;
    const text = renderRoutingTable(spec, generation);
    // routes.txt is what a cold-started nginx restores; it is written first so that a crash
    // between the two writes never leaves nginx restarting into an older table than it served.
    const saved = path.join(this.options.prefix, 'routes.txt');
    await writeFileAtomic(saved, text);
    try {
      acceptedTable(await this.admin('PUT', '/cutover/routes', text), spec, `routing generation ${generation}`);
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

  /**
   * Store `spec` as a generation (at least `generation`, past the live one) that routes nothing
   * until `activate`: the first half of a fleet's write at one instant. Answers changed: false,
   * storing nothing, when the live routing already equals `spec`.
   */
  async stage(spec: RouteSpec, generation = 0): Promise<StagedRoutes> {
    this.check(spec);
    await this.ensureStructure();
    const live = await this.readTable();
    if (live.text !== undefined && sameRoutes(live.routes, spec)) return { changed: false, generation: live.routes.generation ?? 0 };
    refuseOlderFence(spec, live.routes.fence);
    const next = Math.max(generation, (live.routes.generation ?? 0) + 1);
    const text = renderRoutingTable(spec, next);
    acceptedTable(await this.admin('PUT', '/cutover/routes?stage=1', text), spec, `to stage routing generation ${next}`);
    this.staged = { generation: next, text, spec, previous: live.text };
    return { changed: true, generation: next };
  }

  /**
   * Make the staged generation live at `atMs` (epoch ms) by nginx's clock, then read it back once
   * that instant has passed here. routes.txt gets the new table before the activation is sent,
   * as with `apply`, and the previous one back if it cannot be sent.
   */
  async activate(staged: StagedRoutes, atMs: number): Promise<ApplyResult> {
    const mine = this.staged;
    if (!mine || mine.generation !== staged.generation) throw new OperationError(`routing generation ${staged.generation} was not staged by this router`);
    const saved = path.join(this.options.prefix, 'routes.txt');
    await writeFileAtomic(saved, mine.text);
    try {
      const put = await this.admin('PUT', '/cutover/activate', `generation ${mine.generation} at ${Math.round(atMs)}\n`);
      if (put.status !== 200) throw new OperationError(`nginx refused to activate routing generation ${mine.generation} (${put.status}): ${put.body.trim()}`);
    } catch (error) {
      if (mine.previous === undefined) await unlink(saved).catch(() => undefined);
      else await writeFileAtomic(saved, mine.previous);
      throw error;
    }
    // nginx switches by its own clock: past the instant here, allow it a little skew.
    await new Promise((r) => setTimeout(r, Math.max(0, atMs - Date.now()) + 1));
    let back = await this.read();
    for (const until = Date.now() + ACTIVATION_SKEW_MS; back.generation !== mine.generation && Date.now() < until; back = await this.read()) {
      await new Promise((r) => setTimeout(r, 5));
    }
    if (back.generation !== mine.generation || !sameRoutes(back, mine.spec)) {
      throw new OperationError(
        `nginx routing read back as generation ${back.generation} ${summarize(back)} after the activation instant, expected generation ${mine.generation} ${summarize(mine.spec)}`,
        'another driver may have written, or the clocks differ by more than a second; run `deploy status` before retrying',
      );
    }
    this.staged = undefined;
    return { changed: true, generation: mine.generation };
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

  /** Refuse a spec this nginx cannot carry (unknown versions, bad ids, too many orgs), without I/O. */
  check(spec: RouteSpec): void {
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
    const served = await servedConfig(this.fetch, this.options, ADMIN_TIMEOUT_MS);
    // A running nginx whose admin endpoint does not answer says nothing of its config: a reload
    // then would only reset every kept-alive connection, so the write fails here and is retried.
    if ('unanswered' in served && master !== undefined) {
      throw new OperationError(`nginx admin ${this.options.admin} ${served.unanswered} when asked for its config; nothing was changed`, 'the write is retried; `deploy status` shows where traffic is');
    }
    if ('hash' in served && served.hash === hash) {
      if (master !== undefined) await this.awaitRetiredWorkers(master, new Set(), false);
      return;
    }
    // The workers serving now, before the reload: after it, any of them still alive is old, even
    // before the master has got round to retitling it as shutting down.
    const previous = master === undefined ? undefined : await this.workers(master);
    await installConfig(this.exec, this.options, config);
    // Every structural reload loads a new admin secret, so the workers it starts know only that
    // one; if the reload does not take, the old secret is put back for the workers still serving.
    const oldSecret = master === undefined ? undefined : adminSecretIfAny(prefix);
    if (master !== undefined) await rotateAdminSecret(prefix);
    try {
      await runNginx(this.exec, binary, ['-p', `${prefix}/`, '-c', 'conf/nginx.conf', '-s', 'reload']);
      await awaitConfigHash(this.fetch, this.options, hash, 'reload', RELOAD_TIMEOUT_MS);
    } catch (error) {
      if (oldSecret !== undefined) await restoreAdminSecret(prefix, oldSecret);
      throw error;
    }
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
      const res = await this.fetch(url, { method, body, headers: adminHeaders(this.options.prefix), signal: AbortSignal.timeout(ADMIN_TIMEOUT_MS) });
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

/** Refuse, before writing, a table under an older fencing token than the live one's. */
function refuseOlderFence(spec: RouteSpec, live: number | undefined): void {
  if (spec.fence !== undefined && live !== undefined && spec.fence < live) throw staleFence(spec.fence, live);
}

/** The admin endpoint's answer to a table write: accepted, refused for a newer holder's fence, or refused. */
function acceptedTable(put: { status: number; body: string }, spec: RouteSpec, what: string): void {
  const stale = /^stale fence \d+: the live table was written under fence (\d+)/.exec(put.body);
  if (put.status === 409 && stale && spec.fence !== undefined) throw staleFence(spec.fence, Number(stale[1]));
  if (put.status !== 200) throw new OperationError(`nginx refused ${what} (${put.status}): ${put.body.trim()}`);
}

/** A write refused because a newer lock holder wrote the live table: this driver has lost its lock. */
function staleFence(mine: number, live: number): LockedError {
  return new LockedError(
    `lock lost: the live routing was written under fencing token ${live}, newer than this driver's ${mine}; nothing was written`,
    'another driver now drives this rollout: stop here and run `deploy status` to see where it stands',
  );
}
