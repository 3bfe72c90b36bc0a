/**
 * `deploy abort`: all traffic back to stable in one verified router write. When a driver is
 * running it is asked to do it (it holds the lock); otherwise this process does it.
 */
import { openProject, type GlobalOptions, type Io, type Project } from '../src/cli/context.js';
import { actUnderLock } from '../src/cli/drive.js';
import { requestOfDriver } from '../src/cli/requests.js';
import { rollback } from '../src/engine/machine.js';
import { isTerminal, type RolloutState } from '../src/engine/state.js';
import { ExitCode, UsageError } from '../src/errors.js';
import { holderGone } from '../src/state/liveness.js';
import { formatWeights } from '../src/ui/plain.js';

/** Options of abort. */
export interface AbortOptions extends GlobalOptions {
  reason?: string;
  /** Leave orgs pinned to the candidate pinned (by default they return to stable as well). */
  keepPins?: boolean;
}

/** Abort the rollout in progress. */
export async function run(opts: AbortOptions, io: Io): Promise<number> {
  const project = await openProject(opts, io.clock);
  const current = await project.store.load();
  if (!current || isTerminal(current)) {
    throw new UsageError(current ? `the last rollout of ${current.service} is already over (${current.phase.replace('_', ' ')})` : 'no rollout has been started', 'nothing to abort; `deploy status` shows the state');
  }
  const reason = opts.reason ?? 'no reason given';
  const holder = await project.store.lockHolder();
  const here = () =>
    actUnderLock(project, io, async (s, deps) => {
      if (!s || isTerminal(s)) return s ?? current;
      return rollback(s, 'abort', reason, deps);
    });
  // A live driver is asked (it holds the lock); a dead one is not waited for.
  const state: RolloutState = holder && Date.parse(holder.leaseExpiresAt) > io.clock() && !holderGone(holder)
    ? await requestOfDriver(project, io, { kind: 'abort', reason }, isTerminal, here)
    : await here();
  // "All traffic back to stable" includes the orgs pinned to the candidate, unless kept on purpose.
  const pinned = project.config.orgs ? await pinnedTo(project, state.candidate) : [];
  let pins = '';
  if (pinned.length && !opts.keepPins) {
    const { moveOrgs } = await import('../src/orgs/move.js');
    await actUnderLock(project, io, (_s, deps) => moveOrgs(project, deps, { orgs: pinned, version: undefined, reason: `returned to ${state.stable} by the abort` }));
    pins = `; ${pinned.length} org${pinned.length > 1 ? 's' : ''} pinned to ${state.candidate} returned to ${state.stable}`;
  } else if (pinned.length) {
    pins = `; ${pinned.length} org${pinned.length > 1 ? 's' : ''} stay pinned to ${state.candidate} (--keep-pins)`;
  }
  io.out.result(
    { event: 'abort', phase: state.phase, weights: state.weights, reason: state.outcome?.reason ?? reason, pinsReturned: opts.keepPins ? [] : pinned, pinsKept: opts.keepPins ? pinned : [] },
    `${state.service}: ${state.phase.replace('_', ' ')}, ${formatWeights(state.weights)}${pins}`,
  );
  return ExitCode.Done;
}

/** Orgs pinned to `version` in the registry. */
async function pinnedTo(project: Project, version: string): Promise<string[]> {
  const { loadRegistry, pinMap } = await import('../src/orgs/registry.js');
  return Object.entries(pinMap(await loadRegistry(project.store)))
    .filter(([, v]) => v === version)
    .map(([org]) => org)
    .sort();
}
