/**
 * Running a driver from a command: take the lock, let the command make its first move under it,
 * drive until the rollout stops, report, release. Shared by promote, resume and the demo.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { drive } from '../engine/driver.js';
import { emit, type EngineDeps } from '../engine/machine.js';
import type { RolloutState } from '../engine/state.js';
import { createGates, createRouter, createWorkload } from '../providers/chosen.js';
import type { Router } from '../routers/router.js';
import { currentActor } from '../state/actor.js';
import type { Lock } from '../state/store.js';
import type { EngineEvent } from '../engine/events.js';
import type { ProviderEvent } from '../providers/provider.js';
import type { Notifier } from '../notify/index.js';
import { checkIntervalOf } from '../../strategies/index.js';
import type { Io, Project } from './context.js';
import { excessFailuresOf } from '../gates/types.js';

/** Default wake-up interval during a hold. */
const DEFAULT_CHECK_MS = 10_000;

/** With orgs configured, every write carries the org pins (read from the registry each time). */
async function routeSource(project: Project): Promise<EngineDeps['routes']> {
  if (!project.config.orgs) return undefined;
  return (await import('../orgs/routes.js')).orgRouteSource(project.config, project.store);
}

/** Sleep that ends early on abort, without throwing. */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0) return;
  await delay(ms, undefined, signal ? { signal } : {}).catch(() => undefined);
}

/**
 * Take the lock, run `act` on the freshly re-read state with the engine's deps, release.
 * For one-shot moves (abort, pause) when no driver is running.
 */
export async function actUnderLock<T>(project: Project, io: Io, act: (state: RolloutState | undefined, deps: EngineDeps) => Promise<T>): Promise<T> {
  const notifier = await notifierOf(project, io);
  const events = eventsOf(project, io, notifier);
  const router = await createRouter(project, events.report, io.clock);
  await router.preflight();
  const workload = await createWorkload(project, io.clock, events.report);
  await workload?.preflight();
  const actor = currentActor();
  const lock = await project.store.acquireLock(actor, project.leaseMs);
  try {
    const routes = await routeSource(project);
    return await act(await project.store.load(), { router, store: project.store, clock: io.clock, emit: events.emit, actor, fence: () => renewed(lock), ...(routes ? { routes } : {}), ...(workload ? { workload } : {}) });
  } finally {
    try {
      await lock.release();
    } finally {
      await notifier?.close();
    }
  }
}

/**
 * Take the lock, run `firstMove` on the freshly re-read state (it may start, promote or refuse),
 * then drive. Ctrl-C and SIGTERM detach: the loop stops between ticks and the lock is released.
 * `detach` does the same from inside the process (the console's `q`, where the terminal is in
 * raw mode and Ctrl-C arrives as a key, not as SIGINT).
 */
export async function driveUnderLock(
  project: Project,
  io: Io,
  firstMove: (state: RolloutState | undefined, deps: EngineDeps) => Promise<RolloutState>,
  routerOverride?: Router,
  detach?: AbortSignal,
): Promise<number> {
  const notifier = await notifierOf(project, io);
  const events = eventsOf(project, io, notifier);
  const router = routerOverride ?? (await createRouter(project, events.report, io.clock));
  await router.preflight();
  const workload = await createWorkload(project, io.clock, events.report);
  await workload?.preflight();
  const actor = currentActor();
  const lock = await project.store.acquireLock(actor, project.leaseMs);
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  detach?.addEventListener('abort', stop);
  if (detach?.aborted) stop();
  try {
    const gates = await createGates(project, router, io.clock);
    const routes = await routeSource(project);
    const deps: EngineDeps = { router, store: project.store, clock: io.clock, emit: events.emit, actor, fence: () => renewed(lock), ...(gates ? { gates } : {}), ...(routes ? { routes } : {}), ...(workload ? { workload } : {}) };
    const state = await firstMove(await project.store.load(), deps);
    const result = await drive(state, {
      ...deps,
      lock,
      sleep,
      leaseMs: project.leaseMs,
      checkIntervalMs: checkIntervalOf(project.config) ?? DEFAULT_CHECK_MS,
      signal: controller.signal,
    });
    const s = result.state;
    const excessFailures = excessFailuresOf(s.gates);
    emit(deps, s, {
      event: 'done',
      phase: result.detached ? 'detached' : s.phase,
      exitCode: result.exitCode,
      weights: s.weights,
      stable: s.stable,
      candidate: s.candidate,
      durationMs: Math.max(0, io.clock() - Date.parse(s.startedAt)),
      ...(s.outcome ? { reason: s.outcome.reason } : s.paused ? { reason: `paused: ${s.paused.reason}` } : {}),
      ...(s.gates?.length ? { gates: s.gates.map((g) => ({ gate: g.gate, verdict: g.verdict, reason: g.reason })) } : {}),
      ...(excessFailures !== undefined ? { excessFailures } : {}),
    });
    return result.exitCode;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    detach?.removeEventListener('abort', stop);
    try {
      await lock.release();
    } finally {
      await notifier?.close();
    }
  }
}

/** Renew the lease before a router write and answer the fencing token the write carries. */
async function renewed(lock: Lock): Promise<number | undefined> {
  await lock.renew();
  return lock.info.fence;
}

/**
 * Where a command's events go: the engine's as they are, and what providers report (a retried
 * call) as events of the rollout last heard of.
 */
function eventsOf(project: Project, io: Io, notifier?: Notifier): { emit: (e: EngineEvent) => void; report: (e: ProviderEvent) => void } {
  let rolloutId = '';
  return {
    emit: (e) => {
      rolloutId = e.rolloutId;
      io.out.event(e);
      notifier?.event(e);
    },
    report: (e) => io.out.event({ ...e, at: new Date(io.clock()).toISOString(), service: project.config.service, rolloutId }),
  };
}

/**
 * Notifications for deploy.yaml's `notify:`, their deliveries recorded in the audit log. Loaded
 * only when the section is there; `close()` gives pending deliveries a 5 s grace at the end.
 */
async function notifierOf(project: Project, io: Io): Promise<Notifier | undefined> {
  if (!project.config.notify) return undefined;
  const { auditedNotifier } = await import('../notify/index.js');
  return auditedNotifier(project.config.notify, { audit: project.store.audit, actor: currentActor().owner, env: io.env, clock: io.clock });
}
