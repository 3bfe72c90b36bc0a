/** `deploy status`: the recorded state of the rollout; `--watch` follows it until it stops. */
import { setTimeout as delay } from 'node:timers/promises';
import { openProject, type GlobalOptions, type Io } from '../src/cli/context.js';
import { isTerminal, type RolloutState } from '../src/engine/state.js';
import { ExitCode } from '../src/errors.js';
import { renderStatus } from '../src/ui/plain.js';

/** Options of status. */
export interface StatusOptions extends GlobalOptions {
  watch?: boolean;
}

/** Print the state (once, or on every change with --watch). */
export async function run(opts: StatusOptions, io: Io): Promise<number> {
  const project = await openProject(opts, io.clock);
  let last = '';
  for (;;) {
    const state = await project.store.load();
    const holder = await project.store.lockHolder();
    const driver = holder && Date.parse(holder.leaseExpiresAt) > io.clock() ? holder : undefined;
    const key = JSON.stringify([state?.updatedAt, state?.phase, driver?.token]);
    if (key !== last || (!opts.watch && !last)) {
      last = key;
      show(state, driver, project.config.service, io);
    }
    if (!opts.watch || !state || isTerminal(state) || (state.phase === 'paused' && !driver)) return ExitCode.Done;
    await delay(1000);
  }
}

function show(state: RolloutState | undefined, driver: { owner: string; pid: number; host: string } | undefined, service: string, io: Io): void {
  if (!state) {
    io.out.result({ event: 'status', service, phase: 'none' }, `${service}: no rollout has been started`);
    return;
  }
  const driverText = driver ? `driver    ${driver.owner} (pid ${driver.pid} on ${driver.host})` : 'driver    none';
  io.out.result({ event: 'status', ...state, driver: driver ?? null }, `${renderStatus(state, io.clock(), io.out.color)}\n${driverText}`);
}
