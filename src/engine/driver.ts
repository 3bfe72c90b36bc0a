/**
 * The driver: the loop a `deploy promote` or `deploy resume` process runs while it holds the
 * lock. It takes operator requests, ticks the machine, renews the lease, and sleeps until the
 * next thing is due. It stops when the rollout is over, paused, failed, or the process is told
 * to stop — the state stays recorded for `deploy resume`.
 */
import { ExitCode, LockedError, UsageError } from '../errors.js';
import type { Lock, OperatorRequest } from '../state/store.js';
import { emit, type EngineDeps, pauseByOperator, promoteNow, rollback, tick, unpause } from './machine.js';
import { stepNumberOf } from './plan.js';
import { isTerminal, type RolloutState } from './state.js';

/** What the loop needs besides the machine's deps. */
export interface DriverDeps extends EngineDeps {
  lock: Lock;
  /** Sleep that resolves early when `signal` aborts. */
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** How long the lease lasts; it is renewed at a third of it. */
  leaseMs: number;
  /** How often to wake while holding (gates, hold events). */
  checkIntervalMs: number;
  /** How often to look for operator requests. */
  requestPollMs?: number;
  /** Router write attempts before the driver stops with phase `failed`. */
  maxAttempts?: number;
  /** Aborted on Ctrl-C or SIGTERM: the driver stops between ticks and leaves the state as it is. */
  signal?: AbortSignal;
}

/** How the driver ended. */
export interface DriveResult {
  state: RolloutState;
  exitCode: number;
  detached: boolean;
}

/** Exit code for a rollout that a driver left in `state`. */
export function exitCodeFor(state: RolloutState): number {
  switch (state.phase) {
    case 'promoted':
      return ExitCode.Done;
    case 'rolled_back':
    case 'aborted':
      return ExitCode.RolledBack;
    case 'paused':
      return ExitCode.Paused;
    default:
      return ExitCode.Unexpected;
  }
}

/** Apply one operator request to the state. */
export async function applyRequest(state: RolloutState, request: OperatorRequest, deps: EngineDeps): Promise<RolloutState> {
  const by = request.by.owner;
  switch (request.kind) {
    case 'abort':
      return rollback(state, 'abort', request.reason ?? 'no reason given', deps, undefined, by);
    case 'pause':
      return pauseByOperator(state, deps, by);
    case 'resume':
      return unpause(state, 'resume', deps, by);
    case 'promote':
      return promoteNow(state, request.full ?? false, deps, by);
  }
}

/** Run the rollout until it is over, paused, failed or detached. */
export async function drive(initial: RolloutState, deps: DriverDeps): Promise<DriveResult> {
  const pollMs = deps.requestPollMs ?? 250;
  const maxAttempts = deps.maxAttempts ?? 5;
  let state = initial;
  let attempts = 0;
  let renewAt = deps.clock() + deps.leaseMs / 3;
  /** Why a forward write that kept failing past the plan's write timeout is being rolled back. */
  let rollBack: string | undefined;

  for (;;) {
    try {
      // Inside the error handling: an abort whose write fails stays recorded as an intent and is
      // retried below like any other write, never lost with a crashed driver.
      for (const request of await deps.store.takeRequests()) state = await applyRequest(state, request, deps);
      if (isTerminal(state) || state.phase === 'paused') break;
      if (deps.signal?.aborted) return { state, exitCode: 130, detached: true };
      if (rollBack !== undefined) {
        const reason = rollBack;
        rollBack = undefined;
        state = await rollback(state, 'gate', reason, deps);
      } else state = await tick(state, deps);
      attempts = 0;
    } catch (e) {
      if (e instanceof UsageError || e instanceof LockedError) {
        // A refusal or a lost lock is not a network error: retrying cannot help, and after a
        // lost lock another driver owns the record.
        emit(deps, state, { event: 'error', message: e.message, retrying: false });
        if (e instanceof UsageError) await deps.store.audit.append({ actor: deps.actor.owner, action: 'rollout.refused', rolloutId: state.rolloutId, detail: { error: e.message, step: stepNumberOf(state.step) } });
        throw e;
      }
      attempts += 1;
      state = (await deps.store.load()) ?? state;
      // With a write timeout (a fleet), a failing write is retried until its intent is that old;
      // then a forward write is rolled back (the targets that answer go back to stable) and a
      // rollback stays recorded, owed, for the next command. Without one, a few attempts.
      const timeoutMs = state.plan.writeTimeoutMs;
      const age = state.intent !== undefined ? deps.clock() - Date.parse(state.intent.at) : 0;
      const forward = state.intent?.to === 'holding' || state.intent?.to === 'promoted';
      // A rollback that cannot even be recorded (no target answers a read) is tried for one more
      // timeout, then the driver stops like any other: the forward intent stays for the next command.
      const giveUp = timeoutMs !== undefined && state.intent !== undefined ? age >= (forward ? 2 * timeoutMs : timeoutMs) : attempts >= maxAttempts;
      if (timeoutMs !== undefined && forward && age >= timeoutMs && !giveUp) {
        rollBack = `a write did not complete within ${Math.round(timeoutMs / 1000)}s: ${(e as Error).message}`;
      }
      emit(deps, state, { event: 'error', message: (e as Error).message, retrying: !giveUp });
      if (giveUp) {
        await deps.store.audit.append({ actor: deps.actor.owner, action: 'rollout.failed', rolloutId: state.rolloutId, detail: { error: (e as Error).message, intent: state.intent && { ...state.intent, step: stepNumberOf(state.intent.step) } } });
        state = { ...state, phase: 'failed', updatedAt: new Date(deps.clock()).toISOString() };
        await deps.store.save(state);
        break;
      }
      // Under a write timeout the wait is short enough for a returning target to be met soon.
      await deps.sleep(Math.min(timeoutMs !== undefined ? 2_000 : 30_000, 500 * 2 ** (attempts - 1)), deps.signal);
      continue;
    }
    if (isTerminal(state) || state.phase === 'paused') break;

    const now = deps.clock();
    if (now >= renewAt) {
      await deps.lock.renew();
      renewAt = now + deps.leaseMs / 3;
    }
    if (state.phase === 'holding') {
      // Past the hold (gates still inconclusive) the driver keeps checking at the interval.
      const remainingMs = Math.max(0, Date.parse(state.holdUntil!) - now);
      emit(deps, state, { event: 'hold', remainingMs });
      const wake = Math.min(remainingMs > 0 ? remainingMs : deps.checkIntervalMs, deps.checkIntervalMs, Math.max(1, renewAt - now));
      await sleepWatchingRequests(wake, pollMs, deps);
    } else if (state.waitingForTargets) {
      // Not holding yet: the candidate's targets are not ready, so ask again at the check interval.
      await sleepWatchingRequests(deps.checkIntervalMs, pollMs, deps);
    }
  }
  return { state, exitCode: exitCodeFor(state), detached: false };
}

/** Sleep up to `ms`, waking early when an operator request arrives or the signal aborts. */
async function sleepWatchingRequests(ms: number, pollMs: number, deps: DriverDeps): Promise<void> {
  const until = deps.clock() + ms;
  while (deps.clock() < until && !deps.signal?.aborted) {
    if (await deps.store.hasRequests()) return;
    await deps.sleep(Math.min(pollMs, until - deps.clock()), deps.signal);
  }
}
