/**
 * Running the cutover console: it renders the model with ink, folds the driver's events and the
 * stored state into it, and carries out keys. Keys never touch the router: they post operator
 * requests to whichever driver holds the lock (this process's or another's), and only when no
 * driver runs do they start one here — the same driver `deploy promote` and `deploy resume` run.
 * Imported lazily, so commands that do not open the console never load ink or React.
 */
import { randomUUID } from 'node:crypto';
import { render, renderToString, type Instance } from 'ink';
import { createElement } from 'react';
import type { Io, Project } from '../../cli/context.js';
import { actUnderLock, driveUnderLock } from '../../cli/drive.js';
import { pauseByOperator, promoteNow, rollback, unpause, type EngineDeps } from '../../engine/machine.js';
import { isTerminal, type RolloutState } from '../../engine/state.js';
import { ExitCode, UsageError } from '../../errors.js';
import { chosenProviders, createWorkload } from '../../providers/chosen.js';
import { currentActor } from '../../state/actor.js';
import type { AuditRecord } from '../../state/store.js';
import type { Workload } from '../../workloads/workload.js';
import type { Output } from '../output.js';
import { App, LiveArea } from './App.js';
import { endOf, onAppend } from './audit.js';
import { pressKey, type KeyPress, type OperatorAction } from './keys.js';
import { createModel, foldAudit, foldClose, foldDriver, foldEvent, foldMembers, foldOrgs, foldState, foldTargets, withLogLine, withNotice, type ConsoleModel } from './model.js';
import { gatesByMember } from './parts.js';
import type { OrgSource } from './orgs.js';
import { eraseAddedRows, terminalRewraps } from './resize.js';

/** What a driver does first under the lock (start, promote, unpause…), as in driveUnderLock. */
export type FirstMove = (state: RolloutState | undefined, deps: EngineDeps) => Promise<RolloutState>;

/** How the console looks and how often it reads the state. */
export interface ConsoleSettings {
  color: boolean;
  /** How often the state file and the lock are read (default 400 ms). */
  pollMs?: number;
  /** At most how often a release group's members and a fleet's targets are read (default 2 s). */
  partsMs?: number;
}

/**
 * `deploy promote` / `deploy resume` with the console: drive under the lock, show it, and stay
 * open through pauses. Errors before the first move succeeds are thrown as without the console.
 */
export async function driveWithConsole(project: Project, io: Io, firstMove: FirstMove, settings: ConsoleSettings): Promise<number> {
  const screen = new CutoverConsole(project, io, 'drive', settings);
  const ended = screen.ended();
  await screen.drive(firstMove);
  return ended;
}

/** `deploy watch`: follow the state file until `q`; keys still act through requests. */
export async function watchWithConsole(project: Project, io: Io, settings: ConsoleSettings): Promise<number> {
  const screen = new CutoverConsole(project, io, 'watch', settings);
  const ended = screen.ended();
  await screen.poll(false);
  screen.note(`watching ${project.config.service} (${project.store.location}); keys ask its driver to act`);
  screen.open();
  return ended;
}

/** One console on the terminal: its model, its ink instance, and the driver it may run. */
class CutoverConsole {
  private model: ConsoleModel;
  private instance?: Instance;
  private driving = false;
  private detach?: AbortController;
  private quitting = false;
  private closed = false;
  private lastExit = 0;
  private finish: (code: number) => void = () => undefined;
  private timer?: NodeJS.Timeout;
  private chain: Promise<void> = Promise.resolve();
  private polling = false;
  private orgIds?: string[];
  /** When the members and targets were last read, and whether a read is under way. */
  private partsAt = -Infinity;
  private partsReading?: Promise<void>;
  private workload?: Promise<Workload | undefined>;
  private columns = 80;
  /** The terminal ink draws on. */
  private readonly screen: NodeJS.WritableStream & { columns?: number; rows?: number };
  private readonly driverIo: Io;
  private readonly actor = currentActor();
  /**
   * The project with its audit log watched: a record this process appends (an operator's pause,
   * resume or early promote) becomes a log line before the event it leads to.
   */
  private readonly project: Project;

  constructor(
    project: Project,
    private readonly io: Io,
    private readonly mode: 'drive' | 'watch',
    private readonly settings: ConsoleSettings,
  ) {
    this.project = { ...project, store: onAppend(project.store, (record) => this.set(foldAudit(this.model, [record]))) };
    this.screen = io.stdout;
    this.model = createModel(mode, project.config.service, io.clock());
    const out: Output = {
      format: 'text',
      color: io.out.color,
      event: (e) => this.set(foldEvent(this.model, e)),
      result: (_json, text) => this.note(text),
      note: (text) => this.note(text),
    };
    this.driverIo = { ...io, out };
  }

  /** Resolves with the exit code once the console has closed. */
  ended(): Promise<number> {
    return new Promise((resolve) => (this.finish = resolve));
  }

  /** A finished line in the log. */
  note(text: string): void {
    this.set(withLogLine(this.model, text, 'dim'));
  }

  /** Start rendering, reading the state and listening to keys. */
  open(): void {
    if (this.instance || this.closed) return;
    // Before ink's own resize handler, which is registered by render().
    this.columns = this.screen.columns ?? 80;
    this.io.stdout.on('resize', this.beforeInkResize);
    this.instance = render(this.element(), { stdout: this.io.stdout, stderr: this.io.stderr, stdin: this.io.stdin, exitOnCtrlC: false, interactive: true });
    this.timer = setInterval(() => void this.poll(false), this.settings.pollMs ?? 400);
    process.on('SIGINT', this.quit);
    process.on('SIGTERM', this.quit);
  }

  /**
   * Run a driver here until it stops. A pause keeps the console open (space or p drives again);
   * a finished rollout or a detach closes it with the driver's exit code.
   */
  async drive(move: FirstMove): Promise<void> {
    this.driving = true;
    this.detach = new AbortController();
    let code: number;
    try {
      code = await driveUnderLock(this.project, this.driverIo, async (state, deps) => {
        const next = await move(state, deps);
        // From here on this console shows this rollout only, and ends with its exit code.
        this.set(foldDriver({ ...this.model, follow: next.rolloutId }, { owner: this.actor.owner, pid: process.pid, here: true }));
        this.open();
        return next;
      }, undefined, this.detach.signal);
    } catch (e) {
      this.driving = false;
      if (!this.instance) throw e;
      const err = e as { message?: string; hint?: string; exitCode?: number };
      this.lastExit = err.exitCode ?? 1;
      this.set(withNotice(this.model, `${err.message ?? String(e)}${err.hint ? ` (${err.hint})` : ''}`));
      if (this.quitting) await this.close(this.lastExit);
      return;
    }
    this.driving = false;
    this.lastExit = code;
    // Events stopped with the driver: fold its last state as live, so nothing is logged twice.
    await this.poll(true);
    if (this.quitting || code === 130 || ended(this.model)) await this.close(code);
  }

  /** Read the state and the lock (and the orgs) and fold them in. Reads never overlap. */
  poll(forceLive: boolean): Promise<void> {
    if (this.polling && !forceLive) return this.chain;
    this.polling = true;
    this.chain = this.chain.then(() => this.read(forceLive)).finally(() => (this.polling = false));
    return this.chain;
  }

  private async read(forceLive: boolean): Promise<void> {
    const { store, config } = this.project;
    try {
      const state = await store.load();
      const holder = await store.lockHolder();
      const orgs = config.orgs ? await this.orgSource(state) : undefined;
      const live = forceLive || this.driving;
      // The audit log after the state, so it holds every record the state shows the effect of.
      const audit = !live && state && this.auditWorthReading(state) ? await store.audit.read().catch(() => undefined) : undefined;
      // All reads first, then one synchronous fold: events folded meanwhile are not overwritten.
      const now = this.io.clock();
      let m = foldState(this.model, state, now, live, audit);
      const leased = holder && Date.parse(holder.leaseExpiresAt) > now;
      m = foldDriver(m, leased ? { owner: holder.owner, pid: holder.pid, here: this.driving && holder.pid === process.pid } : undefined);
      this.set(orgs ? foldOrgs(m, orgs) : m);
      this.readPartsNow(state);
      if (state && !this.driving) await this.closeIfOwnRolloutEnded(state, audit);
    } catch (e) {
      this.set(withNotice(this.model, `cannot read the state: ${(e as Error).message}`));
    }
  }

  /**
   * Read the audit log only when the state shows something it records: a first look, another
   * rollout, step or phase, or a gate's verdict changed. (A log kept as one object per record is
   * not read at every check.)
   */
  private auditWorthReading(state: RolloutState): boolean {
    const m = this.model;
    const seen = m.seen;
    if (m.auditSeq === undefined || !seen) return true;
    if (seen.rolloutId !== state.rolloutId || seen.stepIndex !== state.step || seen.phase !== state.phase) return true;
    return (state.gates ?? []).some((g) => m.gates.find((l) => l.gate === g.gate)?.verdict !== g.verdict);
  }

  /**
   * A driving console that no longer drives (a pause left it open) closes once its own rollout
   * ends by another hand — with that rollout's exit code, never following a later rollout.
   */
  private async closeIfOwnRolloutEnded(state: RolloutState, audit: AuditRecord[] | undefined): Promise<void> {
    const own = this.model.follow;
    if (this.mode !== 'drive' || own === undefined || this.closed) return;
    let end: string | undefined;
    if (state.rolloutId === own) end = ended(this.model) ? this.model.phase : undefined;
    else end = endOf(audit ?? (await this.project.store.audit.read()), own) ?? 'unknown';
    if (end === undefined) return;
    const code = end === 'promoted' ? ExitCode.Done : end === 'unknown' ? ExitCode.Unexpected : ExitCode.RolledBack;
    if (end === 'unknown') this.note(`rollout ${own} ended by another hand, and the audit log does not say how: \`deploy history\` shows it`);
    // Not awaited: closing waits for the reads in progress, this one among them.
    void this.close(code);
  }

  /**
   * Start a read of the members and targets, unless one is under way or the last began less than
   * `partsMs` ago. Not awaited by the state's poll: a slow cluster or an unreachable target never
   * holds up the state, the lock or the keys.
   */
  private readPartsNow(state: RolloutState | undefined): void {
    const { config } = this.project;
    const members = config.workload ? (chosenProviders(config).workload?.members?.(config.workload) ?? []) : [];
    const fleet = config.targets !== undefined;
    if ((!members.length && !fleet) || this.partsReading || this.closed) return;
    const now = this.io.clock();
    if (now - this.partsAt < (this.settings.partsMs ?? 2000)) return;
    this.partsAt = now;
    this.partsReading = this.readParts(state, members.length > 0, fleet)
      .catch((e: unknown) => this.set(withNotice(this.model, `cannot read the members or targets: ${(e as Error).message}`)))
      .finally(() => (this.partsReading = undefined));
  }

  /** Ask the workload what runs and each target how it routes, as `deploy status` does; errors become row notes. */
  private async readParts(state: RolloutState | undefined, members: boolean, fleet: boolean): Promise<void> {
    const asError = (e: unknown) => (e instanceof Error ? e : new Error(String(e)));
    if (members && state) {
      this.workload ??= createWorkload(this.project, this.io.clock);
      const described = await this.workload.then((w) => (w?.describe ? w.describe() : [])).catch(asError);
      if (!this.closed) this.set(foldMembers(this.model, described, gatesByMember(this.project.config.gates)));
    }
    if (fleet) {
      const { targetRows } = await import('../../fleet/status.js');
      const rows = await targetRows(this.project, state, this.io.clock).catch(asError);
      if (!this.closed) this.set(foldTargets(this.model, rows));
    }
  }

  private async orgSource(state: RolloutState | undefined): Promise<OrgSource> {
    const { loadOrgDirectory } = await import('../../orgs/directory.js');
    const { loadRegistry, pinMap } = await import('../../orgs/registry.js');
    this.orgIds ??= loadOrgDirectory(this.project.config, this.project.dir).ids;
    const active = state && !isTerminal(state);
    return {
      ids: this.orgIds,
      pins: pinMap(await loadRegistry(this.project.store)),
      unpinned: this.project.config.orgs?.unpinned,
      wave: active ? (state.plan.steps[state.step]?.orgs ?? []) : [],
    };
  }

  private element() {
    return createElement(App, { model: this.model, color: this.settings.color, onKey: this.onKey });
  }

  private set(model: ConsoleModel): void {
    this.model = model;
    this.instance?.rerender(this.element());
  }

  private readonly onKey = (key: KeyPress): void => {
    const { model, action } = pressKey(this.model, key);
    this.set(model);
    if (action) this.perform(action).catch((e: Error) => this.set(withNotice(this.model, e.message)));
  };

  /** Erase what a narrower terminal re-wrapped of the last frame; ink then erases the rest and redraws. */
  private readonly beforeInkResize = (): void => {
    const columns = this.screen.columns ?? this.columns;
    if (columns < this.columns && terminalRewraps(this.io.env)) {
      const frame = renderToString(createElement(LiveArea, { model: this.model, columns: this.columns, color: this.settings.color }), { columns: this.columns });
      // A frame as tall as the terminal is redrawn from the top by ink itself.
      if (frame.split('\n').length < (this.screen.rows ?? 24)) this.screen.write(eraseAddedRows(frame, columns));
    }
    this.columns = columns;
  };

  private readonly quit = (): void => {
    this.quitting = true;
    if (this.driving) {
      // The driver stops between ticks — never in the middle of a router write — and releases the lock.
      this.set(withNotice(this.model, 'leaving: the driver stops after its current tick…'));
      this.detach?.abort();
      return;
    }
    const code = this.mode === 'watch' ? ExitCode.Done : !ended(this.model) ? this.lastExit : this.model.phase === 'promoted' ? ExitCode.Done : ExitCode.RolledBack;
    void this.close(code);
  };

  /** Carry out a confirmed key: ask the running driver, or act here when none runs. */
  private async perform(action: OperatorAction): Promise<void> {
    if (action === 'quit') return this.quit();
    const reason = 'from the console';
    const holder = this.driving ? undefined : await this.project.store.lockHolder();
    if (this.driving || (holder && Date.parse(holder.leaseExpiresAt) > this.io.clock())) {
      await this.project.store.postRequest({ id: randomUUID(), kind: action, ...(action === 'abort' ? { reason } : {}), by: this.actor, at: new Date(this.io.clock()).toISOString() });
      this.set(withNotice(this.model, `asked the driver to ${action}…`));
      return;
    }
    if (action === 'pause' || (this.mode === 'watch' && action === 'abort')) {
      // One write (or none) under the lock, as `deploy pause` and `deploy abort` do without a driver.
      await actUnderLock(this.project, this.driverIo, async (s, deps) => {
        if (!s || isTerminal(s)) return s;
        return action === 'pause' ? pauseByOperator(s, deps) : rollback(s, 'abort', reason, deps);
      });
      await this.poll(false);
      return;
    }
    if (this.mode === 'watch') {
      this.set(withNotice(this.model, `no driver is running: \`deploy ${action === 'promote' ? `promote --to ${this.model.candidate}` : 'resume'}\` carries on`));
      return;
    }
    this.set(withNotice(this.model, undefined));
    // Who resumed or promoted is logged from the audit record the move appends.
    void this.drive(async (s, deps) => {
      if (!s || isTerminal(s)) throw new UsageError('the rollout ended meanwhile');
      if (action === 'abort') return rollback(s, 'abort', reason, deps);
      if (action === 'promote') return promoteNow(s, false, deps);
      if (s.phase === 'paused') return unpause(s, 'resume', deps);
      if (s.phase === 'failed') return { ...s, phase: s.intent ? 'progressing' : 'holding' };
      return s;
    });
  }

  private async close(code: number): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.io.stdout.off('resize', this.beforeInkResize);
    process.off('SIGINT', this.quit);
    process.off('SIGTERM', this.quit);
    await this.chain.catch(() => undefined);
    await this.partsReading;
    this.set(foldClose(this.model, code));
    this.instance?.unmount();
    await this.instance?.waitUntilExit().catch(() => undefined);
    this.finish(code);
  }
}

/** The rollout is over: promoted, rolled back or aborted. */
function ended(model: ConsoleModel): boolean {
  return model.phase === 'promoted' || model.phase === 'rolled_back' || model.phase === 'aborted';
}
