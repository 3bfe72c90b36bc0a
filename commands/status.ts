/** `deploy status`: the recorded state of the rollout; `--watch` follows it until it stops. */
import { setTimeout as delay } from 'node:timers/promises';
import { openProject, type GlobalOptions, type Io } from '../src/cli/context.js';
import { isTerminal, stateForPeople, type RolloutState } from '../src/engine/state.js';
import { ExitCode } from '../src/errors.js';
import { createWorkload } from '../src/providers/chosen.js';
import type { MemberStatus } from '../src/workloads/workload.js';
import { holderGone } from '../src/state/liveness.js';
import { renderStatus } from '../src/ui/plain.js';

/** Options of status. */
export interface StatusOptions extends GlobalOptions {
  watch?: boolean;
}

/** Print the state (once, or on every change with --watch). */
export async function run(opts: StatusOptions, io: Io): Promise<number> {
  const project = await openProject(opts, io.clock);
  // A workload that can say what runs, part by part (a release group's members), is asked each time.
  const workload = await createWorkload(project, io.clock);
  // A fleet: every target's live routing, read from the target each time.
  const fleet = project.config.targets ? await import('../src/fleet/status.js') : undefined;
  let last = '';
  for (;;) {
    const state = await project.store.load();
    const targets = fleet ? await fleet.targetRows(project, state, io.clock) : undefined;
    const members = state && workload?.describe ? await workload.describe().catch((e: unknown) => (e instanceof Error ? e : new Error(String(e)))) : undefined;
    const holder = await project.store.lockHolder();
    const leased = holder && Date.parse(holder.leaseExpiresAt) > io.clock() ? holder : undefined;
    // A holder whose process is gone from this host drives nothing, whatever its lease says.
    const gone = leased && holderGone(leased) ? leased : undefined;
    const driver = gone ? undefined : leased;
    const key = JSON.stringify([state?.updatedAt, state?.phase, driver?.token, gone?.token, members instanceof Error ? members.message : members, targets]);
    if (key !== last || (!opts.watch && !last)) {
      last = key;
      show(state, driver, gone, members, project.config.service, io, targets && fleet ? { rows: targets, text: fleet.renderTargetRows(targets, io.out.color) } : undefined);
    }
    if (!opts.watch || !state || isTerminal(state) || (state.phase === 'paused' && !driver)) return ExitCode.Done;
    await delay(1000);
  }
}

type Holder = { owner: string; pid: number; host: string; leaseExpiresAt: string };

function show(state: RolloutState | undefined, driver: Holder | undefined, gone: Holder | undefined, members: MemberStatus[] | Error | undefined, service: string, io: Io, targets?: { rows: unknown[]; text: string }): void {
  if (!state) {
    io.out.result({ event: 'status', service, phase: 'none' }, `${service}: no rollout has been started`);
    return;
  }
  const driverText = driver
    ? `driver    ${driver.owner} (pid ${driver.pid} on ${driver.host})`
    : gone
      ? `driver    gone: ${gone.owner} (pid ${gone.pid} on ${gone.host}) no longer runs; \`deploy resume\` carries on, \`deploy abort\` acts at once`
      : 'driver    none';
  io.out.result(
    {
      event: 'status',
      ...stateForPeople(state),
      driver: driver ?? null,
      ...(gone ? { driverGone: { owner: gone.owner, pid: gone.pid, host: gone.host } } : {}),
      ...(members instanceof Error ? { membersError: members.message } : members ? { members } : {}),
      ...(targets ? { fleet: targets.rows } : {}),
    },
    `${renderStatus(state, io.clock(), io.out.color, members)}\n${targets ? `${targets.text}\n` : ''}${driverText}`,
  );
}
