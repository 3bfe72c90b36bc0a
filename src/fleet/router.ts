/**
 * The fleet router: one Router over one router per target, so the engine's record (an intent
 * before every write, a commit after its read-back) covers every region at once.
 *
 * - A write goes to every target in parallel and succeeds only when every target has it live
 *   and read back. Where every target can stage (nginx), the new generation is staged in all of
 *   them first and made live at one wall-clock instant chosen after the last staging succeeded;
 *   if any target fails to stage, nothing activates anywhere. Otherwise the targets are written
 *   directly, and a forward write that fails in one target is undone in the others — the fleet
 *   never stands partly on the next step.
 * - A rollback (RouteSpec.rollback) is written directly to every target at once, never all or
 *   none: the targets that answer are safe at once, and one that does not stays owed (the error
 *   names it; the engine keeps the intent recorded until it answers).
 * - With `only` (`--target`), the other targets are read and must already carry the routing;
 *   they are never written.
 */
import { CutoverError, LockedError, OperationError, UsageError } from '../errors.js';
import { sameRoutes, type ApplyResult, type LiveRoutes, type RouteSpec, type Router, type StagedRoutes, type TargetReadiness, type Verification, type Weights } from '../routers/router.js';

/** One target of a fleet: its name in deploy.yaml and its own router. */
export interface FleetTarget {
  name: string;
  router: Router;
}

/** How a fleet router behaves. */
export interface FleetRouterOptions {
  /** Targets this command writes (`--target`); the others are read and must already carry each write. */
  only?: string[];
  /** The least time between the last staging and the activation instant (default 50 ms). */
  minActivationLeadMs?: number;
  clock?: () => number;
}

/** What one target said to a fleet write. */
export type TargetOutcome = { target: string; ok: true; changed: boolean; generation?: number } | { target: string; ok: false; error: Error };

/** What one target's routing read back as, or why it could not be read. */
export type TargetLive = { target: string; live: LiveRoutes } | { target: string; error: Error };

/** The last staged write's timing, for tests and the benchmark. */
export interface Activation {
  generation: number;
  /** Epoch ms the targets were told to switch at. */
  atMs: number;
  /** Epoch ms the slowest staging answered. */
  stagedMs: number;
}

/** A fleet write that did not reach every target: which did, and why the others did not. */
export class FleetWriteError extends OperationError {
  constructor(
    message: string,
    readonly outcomes: TargetOutcome[],
    hint = 'the write is retried; `deploy status` shows every target',
  ) {
    super(message, hint);
  }

  /** The targets that did not take the write. */
  get failed(): string[] {
    return this.outcomes.filter((o) => !o.ok).map((o) => o.target);
  }
}

const DEFAULT_MIN_LEAD_MS = 50;

/** Router over a fleet's targets (see the file comment). */
export class FleetRouter implements Router {
  readonly type = 'fleet';
  /** The candidate's readiness in every target, when any target's router can tell. */
  readonly targetsReady?: (version: string) => Promise<TargetReadiness>;
  /** The timing of the last staged write. */
  lastActivation: Activation | undefined;
  private readonly clock: () => number;

  constructor(
    readonly targets: FleetTarget[],
    private readonly options: FleetRouterOptions = {},
  ) {
    if (targets.length === 0) throw new UsageError('a fleet needs at least one target');
    for (const name of options.only ?? []) {
      if (!targets.some((t) => t.name === name)) throw new UsageError(`--target ${name}: no such target (targets: ${targets.map((t) => t.name).join(', ')})`);
    }
    this.clock = options.clock ?? Date.now;
    if (targets.some((t) => t.router.targetsReady)) this.targetsReady = (version) => this.readiness(version);
  }

  /**
   * Every target's preflight. A bad config or a missing tool anywhere is an error; a target that
   * does not answer is not, as long as one does — an abort must still reach the others, and a
   * write to it fails and is retried like any other.
   */
  async preflight(): Promise<void> {
    const results = await Promise.allSettled(this.written().map((t) => t.router.preflight()));
    const errors = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
    const refusal = errors.find((e) => e instanceof UsageError || e instanceof LockedError);
    if (refusal) throw refusal;
    if (errors.length === results.length) throw errors[0]!;
  }

  /** Refuse, without I/O, a spec any target's router could never carry. */
  check(spec: RouteSpec): void {
    for (const t of this.targets) {
      try {
        t.router.check?.(this.specOf(t.name, spec));
      } catch (e) {
        if (e instanceof CutoverError) throw new UsageError(`target ${t.name}: ${e.message}`, e.hint);
        throw e;
      }
    }
  }

  /** Make `spec` live in every target (see the file comment); throws FleetWriteError naming the targets that did not take it. */
  async apply(spec: RouteSpec): Promise<ApplyResult> {
    await this.confirmUnwritten(spec);
    const written = this.written();
    if (spec.rollback) return this.direct(written, spec, false);
    if (written.every((t) => t.router.stage && t.router.activate)) return this.staged(written, spec);
    return this.direct(written, spec, true);
  }

  /**
   * The live routing of the fleet: each target's weights under `targets`, and the weights, pins
   * and unpinned policy every answering target agrees on (weights empty when they differ or a
   * target did not answer). Throws only when no target answers.
   */
  async read(): Promise<LiveRoutes & { targets: Record<string, Weights> }> {
    const all = await this.readTargets();
    const answered = all.flatMap((r) => ('live' in r ? [r] : []));
    if (answered.length === 0) throw unreachable(all);
    const first = answered[0]!.live;
    const agree = answered.length === all.length && answered.every((r) => sameRoutes(r.live, first));
    return {
      weights: agree ? first.weights : {},
      ...(first.orgs ? { orgs: first.orgs } : {}),
      ...(first.unpinned ? { unpinned: first.unpinned } : {}),
      generation: Math.max(...answered.map((r) => r.live.generation ?? 0)),
      targets: Object.fromEntries(answered.map((r) => [r.target, r.live.weights])),
    };
  }

  /** Each target's live routing, or why it could not be read. */
  async readTargets(): Promise<TargetLive[]> {
    return Promise.all(
      this.targets.map(async (t): Promise<TargetLive> => {
        try {
          return { target: t.name, live: await t.router.read() };
        } catch (e) {
          return { target: t.name, error: e as Error };
        }
      }),
    );
  }

  /** Verified when every target carries its part of `spec`; a mismatch or an unreadable target says which. */
  async verify(spec: RouteSpec): Promise<Verification> {
    const answers = await Promise.all(this.targets.map(async (t) => ({ target: t.name, v: await t.router.verify(this.specOf(t.name, spec)) })));
    const mismatch = answers.find((a) => a.v.status === 'mismatch');
    if (mismatch && mismatch.v.status === 'mismatch') return { status: 'mismatch', live: mismatch.v.live, detail: `target ${mismatch.target}: ${mismatch.v.detail}` };
    const unknown = answers.find((a) => a.v.status === 'unverifiable');
    if (unknown && unknown.v.status === 'unverifiable') return { status: 'unverifiable', detail: `target ${unknown.target}: ${unknown.v.detail}` };
    return { status: 'verified', live: await this.read() };
  }

  /** Every target back to `fallbackVersion`, each on its own (as a rollback is). */
  async removeManaged(fallbackVersion: string): Promise<void> {
    const results = await Promise.allSettled(this.written().map((t) => t.router.removeManaged(fallbackVersion)));
    const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [`${this.written()[i]!.name}: ${(r.reason as Error).message}`] : []));
    if (failed.length) throw new OperationError(`could not remove the routing of ${failed.join('; ')}`);
  }

  /** The spec one target is written: its own weights when the spec names them (waves). */
  specOf(target: string, spec: RouteSpec): RouteSpec {
    const { targets, rollback: _r, ...rest } = spec;
    const weights = targets?.[target];
    return weights ? { ...rest, weights } : rest;
  }

  /** The targets this command writes. */
  private written(): FleetTarget[] {
    return this.options.only ? this.targets.filter((t) => this.options.only!.includes(t.name)) : this.targets;
  }

  /** With `--target`, every other target must already carry the write: it is never written here. */
  private async confirmUnwritten(spec: RouteSpec): Promise<void> {
    if (!this.options.only) return;
    for (const t of this.targets.filter((x) => !this.options.only!.includes(x.name))) {
      const v = await t.router.verify(this.specOf(t.name, spec));
      if (v.status !== 'verified') {
        throw new OperationError(
          `target ${t.name} is left out (--target ${this.options.only.join(', ')}) and ${v.status === 'mismatch' ? `does not carry this routing: ${v.detail}` : `could not be read: ${v.detail}`}; nothing was written`,
          `run the command without --target once ${t.name} answers, so that every target gets it`,
        );
      }
    }
  }

  /**
   * Write every target at once. A forward write (`undo`) that fails anywhere is undone where it
   * changed something, from the routing read just before, so the fleet stays on one step.
   */
  private async direct(targets: FleetTarget[], spec: RouteSpec, undo: boolean): Promise<ApplyResult> {
    const before = undo ? await this.readAll(targets, 'nothing was written') : undefined;
    const outcomes = await this.each(targets, (t) => t.router.apply(this.specOf(t.name, spec)));
    const failed = outcomes.filter((o) => !o.ok);
    if (failed.length === 0) return result(outcomes);
    rethrowRefusal(outcomes);
    if (!before) {
      throw new FleetWriteError(`${describe(outcomes)}: ${failed.map((o) => o.target).join(', ')} owe${failed.length === 1 ? 's' : ''} this write`, outcomes, 'it is retried until they answer; `deploy status` shows every target');
    }
    const undone = await Promise.allSettled(
      outcomes.flatMap((o) => (o.ok && o.changed ? [this.restore(targets.find((t) => t.name === o.target)!, before.get(o.target)!, spec.fence)] : [])),
    );
    const stuck = undone.filter((r) => r.status === 'rejected').length;
    throw new FleetWriteError(`${describe(outcomes)}; ${stuck ? `${stuck} target(s) could not be put back` : 'the others were put back'}`, outcomes);
  }

  /**
   * Stage in every target, then activate at one instant after the last staging answered: as
   * long after it as three of the slowest read round trips, or the staging took, at least the
   * minimum lead — so the activation, one request, reaches every target before its time.
   */
  private async staged(targets: FleetTarget[], spec: RouteSpec): Promise<ApplyResult> {
    const readStart = this.clock();
    const before = await this.readAll(targets, 'nothing was staged');
    const roundTripMs = this.clock() - readStart;
    const generation = Math.max(...[...before.values()].map((l) => l.generation ?? 0)) + 1;
    const stagingStart = this.clock();
    const staged = new Map<string, StagedRoutes>();
    const stages = await this.each(targets, async (t) => {
      const s = await t.router.stage!(this.specOf(t.name, spec), generation);
      staged.set(t.name, s);
      return s;
    });
    if (stages.some((o) => !o.ok)) {
      rethrowRefusal(stages);
      throw new FleetWriteError(`${describe(stages, 'staged')}: nothing was activated anywhere`, stages);
    }
    const changing = targets.filter((t) => staged.get(t.name)!.changed);
    if (changing.length === 0) return { changed: false, generation: Math.max(...[...before.values()].map((l) => l.generation ?? 0)) };
    const stagedMs = this.clock();
    // The activation is one request like the reads, and must not arrive later than a staging took.
    const atMs = stagedMs + Math.max(this.options.minActivationLeadMs ?? DEFAULT_MIN_LEAD_MS, 3 * roundTripMs, stagedMs - stagingStart);
    this.lastActivation = { generation, atMs, stagedMs };
    const activations = await this.each(changing, (t) => t.router.activate!(staged.get(t.name)!, atMs));
    if (activations.some((o) => !o.ok)) {
      rethrowRefusal(activations);
      throw new FleetWriteError(`${describe(activations, 'activated')}; the write is retried (the targets that activated carry it already)`, activations);
    }
    return { changed: true, generation, activatedAt: atMs };
  }

  /** Every target's live routing before a write; any unread target fails the write before it starts. */
  private async readAll(targets: FleetTarget[], consequence: string): Promise<Map<string, LiveRoutes>> {
    const all = new Set(targets.map((t) => t.name));
    const reads = (await this.readTargets()).filter((r) => all.has(r.target));
    const failed = reads.flatMap((r) => ('error' in r ? [r] : []));
    if (failed.length) {
      const outcomes: TargetOutcome[] = reads.map((r) => ('error' in r ? { target: r.target, ok: false, error: r.error } : { target: r.target, ok: true, changed: false }));
      throw new FleetWriteError(`${failed.map((r) => `${r.target} did not answer (${r.error.message.split('\n')[0]})`).join('; ')}: ${consequence}`, outcomes);
    }
    return new Map(reads.flatMap((r) => ('live' in r ? [[r.target, r.live] as const] : [])));
  }

  /** Put a target back on what it carried before a failed fleet write. */
  private async restore(target: FleetTarget, live: LiveRoutes, fence: number | undefined): Promise<void> {
    if (Object.keys(live.weights).length === 0) return; // it carried no table: nothing to put back
    const { generation: _g, ...routes } = live;
    await target.router.apply({ ...routes, ...(fence === undefined ? {} : { fence }) });
  }

  /** Run a write on every target at once and collect what each said. */
  private each(targets: FleetTarget[], act: (t: FleetTarget) => Promise<{ changed: boolean; generation?: number | undefined }>): Promise<TargetOutcome[]> {
    return Promise.all(
      targets.map(async (t): Promise<TargetOutcome> => {
        try {
          const r = await act(t);
          return { target: t.name, ok: true, changed: r.changed, ...(r.generation !== undefined ? { generation: r.generation } : {}) };
        } catch (e) {
          return { target: t.name, ok: false, error: e as Error };
        }
      }),
    );
  }

  private async readiness(version: string): Promise<TargetReadiness> {
    const answers = await Promise.all(this.targets.filter((t) => t.router.targetsReady).map(async (t) => ({ target: t.name, r: await t.router.targetsReady!(version) })));
    const stuck = answers.find((a) => a.r.stuck);
    return {
      ready: answers.every((a) => a.r.ready),
      detail: answers.map((a) => `${a.target}: ${a.r.detail}`).join('; '),
      ...(stuck ? { stuck: `${stuck.target}: ${stuck.r.stuck}` } : {}),
    };
  }
}

/** A refusal (a lost lock, a spec a target can never carry) is not retried: it goes up as it is. */
function rethrowRefusal(outcomes: TargetOutcome[]): void {
  for (const o of outcomes) if (!o.ok && (o.error instanceof LockedError || o.error instanceof UsageError)) throw o.error;
}

function result(outcomes: TargetOutcome[]): ApplyResult {
  const gens = outcomes.flatMap((o) => (o.ok && o.generation !== undefined ? [o.generation] : []));
  return { changed: outcomes.some((o) => o.ok && o.changed), ...(gens.length ? { generation: Math.max(...gens) } : {}) };
}

/** `us written (generation 7); eu failed: …`. */
function describe(outcomes: TargetOutcome[], verb = 'written'): string {
  return outcomes
    .map((o) => (o.ok ? `${o.target} ${verb}${o.generation !== undefined ? ` (generation ${o.generation})` : ''}` : `${o.target} failed: ${o.error.message.split('\n')[0]}`))
    .join('; ');
}

function unreachable(all: TargetLive[]): OperationError {
  return new OperationError(`no target of the fleet answered: ${all.map((r) => `${r.target}: ${'error' in r ? r.error.message.split('\n')[0] : 'ok'}`).join('; ')}`, 'check the targets\' routers, then run the command again');
}
