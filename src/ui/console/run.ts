/**
 * Running the cutover console: it renders the model with ink, folds the driver's events and the
 * stored state into it, and carries out keys. Keys never touch the router: they post operator
 * requests to whichever driver holds the lock (this process's or another's), and only when no
 * driver runs do they start one here — the same driver `deploy promote` and `deploy resume` run.
 * Imported lazily, so commands that do not open the console never load ink or React.
 */
import { randomUUID } from 'node:crypto';
import { render, type Instance } from 'ink';
import { createElement } from 'react';
import type { Io, Project } from '../../cli/context.js';
import { actUnderLock, driveUnderLock } from '../../cli/drive.js';
import { pauseByOperator, promoteNow, rollback, unpause, type EngineDeps } from '../../engine/machine.js';
import { isTerminal, type RolloutState } from '../../engine/state.js';
import { ExitCode, UsageError } from '../../errors.js';
import { currentActor } from '../../state/actor.js';
import type { Output } from '../output.js';
import { App } from './App.js';
import { pressKey, type KeyPress, type OperatorAction } from './keys.js';
import { createModel, foldClose, foldDriver, foldEvent, foldOrgs, foldState, withLogLine, withNotice, type ConsoleModel } from './model.js';
import type { OrgSource } from './orgs.js';

/** What a driver does first under the lock (start, promote, unpause…), as in driveUnderLock. */
export type FirstMove = (state: RolloutState | undefined, deps: EngineDeps) => Promise<RolloutState>;

/** How the console looks and how often it reads the state. */
export interface ConsoleSettings {
  color: boolean;
  /** How often the state file and the lock are read (default 400 ms). */
  pollMs?: number;
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
  private readonly driverIo: Io;
  private readonly actor = currentActor();

  constructor(
    private readonly project: Project,
    private readonly io: Io,
    private readonly mode: 'drive' | 'watch',
    private readonly settings: ConsoleSettings,
  ) {
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
        this.set(foldDriver(this.model, { owner: this.actor.owner, pid: process.pid, here: true }));
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
      // All reads first, then one synchronous fold: events folded meanwhile are not overwritten.
      const now = this.io.clock();
      let m = foldState(this.model, state, now, forceLive || this.driving);
      const live = holder && Date.parse(holder.leaseExpiresAt) > now;
      m = foldDriver(m, live ? { owner: holder.owner, pid: holder.pid, here: this.driving && holder.pid === process.pid } : undefined);
      this.set(orgs ? foldOrgs(m, orgs) : m);
    } catch (e) {
      this.set(withNotice(this.model, `cannot read the state: ${(e as Error).message}`));
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
    const reason = `aborted by ${this.actor.owner} from the console`;
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
    // Resuming emits no event of its own; promote and abort are logged by their step or rollback.
    if (action === 'resume') this.note(`resumed by ${this.actor.owner} from the console`);
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
    process.off('SIGINT', this.quit);
    process.off('SIGTERM', this.quit);
    await this.chain.catch(() => undefined);
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
