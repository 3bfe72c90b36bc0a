/**
 * `deploy promote --to VERSION`: start a rollout, or continue the one in progress (a paused one
 * moves to its next step). `--full` skips every remaining step after confirmation.
 */
import { confirm } from '../src/cli/confirm.js';
import { openProject, type Io } from '../src/cli/context.js';
import { requestOfDriver } from '../src/cli/requests.js';
import { driveInTerminal, type ConsoleOptions } from '../src/cli/tui.js';
import { promoteNow, retireWorkload, startRollout } from '../src/engine/machine.js';
import { stepNumberOf, type Traffic } from '../src/engine/plan.js';
import { isTerminal, servingVersion, type RolloutState } from '../src/engine/state.js';
import { ExitCode, OperationError, UsageError } from '../src/errors.js';
import { planFor } from '../strategies/index.js';

/** Options of promote. */
export interface PromoteOptions extends ConsoleOptions {
  /** The candidate; without it, the rollout in progress carries on. */
  to?: string;
  full?: boolean;
  yes?: boolean;
}

/** Start or continue a rollout and drive it. */
export async function run(opts: PromoteOptions, io: Io): Promise<number> {
  const project = await openProject(opts, io.clock);
  const { config } = project;
  if (opts.to === undefined) {
    const inProgress = await project.store.load();
    if (!inProgress || isTerminal(inProgress)) {
      throw new UsageError(
        inProgress ? `no rollout of ${config.service} is in progress (the last one, of ${inProgress.candidate}, is ${inProgress.phase.replace('_', ' ')})` : `no rollout of ${config.service} has been started`,
        `start one with \`deploy promote --to VERSION\` (versions: ${Object.keys(config.versions).join(', ')})`,
      );
    }
    return run({ ...opts, to: inProgress.candidate }, io);
  }
  const to = opts.to;
  if (!(to in config.versions)) {
    throw new UsageError(`--to ${to}: unknown version of ${config.service} (known: ${Object.keys(config.versions).join(', ')})`, `add it under versions: in ${project.path}`);
  }
  const current = await project.store.load();
  const active = current && !isTerminal(current) ? current : undefined;
  if (active && active.candidate !== to) {
    throw new UsageError(
      `a rollout of ${active.candidate} is in progress (phase ${active.phase}); it must end before ${to} can start`,
      '`deploy status` shows it; `deploy abort` ends it',
    );
  }
  const serving = current ? servingVersion(current) : config.stable;
  if (!active && serving === to) {
    throw new UsageError(`${to} is already the stable version of ${config.service}`, 'name another version with --to');
  }
  if (opts.full && !(await confirm(`Skip the remaining steps and send 100% of ${config.service} to ${to}?`, opts.yes, io))) {
    io.out.note('not promoted');
    return ExitCode.Done;
  }

  if (!active) {
    // A new rollout is not recorded onto a chain that no longer proves itself: that would bury
    // the break under fresh records. A torn final line (a crash mid-write) is not such a break.
    const chain = await project.store.audit.verify();
    if (!chain.ok && !chain.reason.startsWith('torn final record')) {
      throw new OperationError(
        `the audit log does not verify (record ${chain.brokenAt}: ${chain.reason.slice(0, 200)}); no new rollout is recorded onto it`,
        '`deploy history` shows where it breaks; restore the log from a backup, or move it aside to start a new chain',
      );
    }
  }
  let traffic: Traffic | undefined;
  if (!active && config.gates?.length) {
    // Every gate query goes to Prometheus once before anything is recorded or moved.
    const { createProvider, checkGateQueries, measureTraffic } = await import('../src/gates/runner.js');
    const provider = (await createProvider(config))!;
    const noData = await checkGateQueries(config, provider, serving, to);
    if (noData.length) io.out.note(`gates with no data yet (no traffic to ${to}?): ${noData.join(', ')}`);
    // The steps' error-rate margins follow the traffic stable serves now.
    traffic = await measureTraffic(config, provider, serving, io.clock());
  }
  if (!active && !config.gates?.length) io.out.note(`warning: no gates: nothing will roll back ${to} by itself; add gates: to ${project.path}`);

  const holder = active ? await project.store.lockHolder() : undefined;
  if (active && opts.full && holder && Date.parse(holder.leaseExpiresAt) > io.clock()) {
    const last = (s: RolloutState) => s.plan.steps.length - 1;
    // Acted on: at the last step, or waiting for the candidate's pods or targets to enter it.
    const state = await requestOfDriver(project, io, { kind: 'promote', full: true }, (s) => s.phase === 'promoted' || s.step === last(s) || s.waitingForTargets?.step === last(s));
    const text = state.step === last(state) || state.phase === 'promoted'
      ? `the driver moved ${config.service} to its last step (${state.phase})`
      : `the driver is readying ${to} for its last step: ${state.waitingForTargets!.detail}`;
    io.out.result({ event: 'promote', phase: state.phase, step: stepNumberOf(state.step), weights: state.weights }, text);
    return ExitCode.Done;
  }

  return driveInTerminal(project, io, opts, async (state: RolloutState | undefined, deps) => {
    const stillActive = state && !isTerminal(state) ? state : undefined;
    if (!stillActive) {
      // The last rollout's workload must be tidied first (a consumer or a CronJob left on its candidate).
      if (state?.retiring && (await retireWorkload(state, deps)).retiring) {
        throw new OperationError(`the workload of the last rollout (${state.phase.replace('_', ' ')}) could not be tidied; no new rollout starts on it`, 'fix what the error above names, then `deploy resume`');
      }
      const stable = state ? servingVersion(state) : config.stable;
      const plan = planFor(config, project.dir);
      const started = await startRollout({ service: config.service, stable, candidate: to, plan: traffic ? { ...plan, traffic } : plan }, deps);
      return opts.full ? promoteNow(started, true, deps) : started;
    }
    if (stillActive.candidate !== to) throw new UsageError(`a rollout of ${stillActive.candidate} started meanwhile`, '`deploy status` shows it');
    if (stillActive.phase === 'paused' || opts.full) return promoteNow(stillActive, opts.full ?? false, deps);
    if (stillActive.phase === 'failed') return { ...stillActive, phase: stillActive.intent ? 'progressing' : 'holding' };
    return stillActive;
  });
}
