/**
 * Whether a lock's holder is provably gone: it ran on this host and its process no longer
 * exists (or its pid now belongs to a process that started later). Then nobody has to wait for
 * its lease to run out — an operator's `deploy abort` after a closed terminal acts at once.
 * A holder on another host can never be proved gone from here: its lease decides.
 */
import { readFileSync } from 'node:fs';
import { currentActor } from './actor.js';
import type { LockInfo } from './store.js';

/**
 * This process's start, as the kernel counts it (field 22 of /proc/PID/stat, in clock ticks since
 * boot), so a pid reused by a later process is told apart. Undefined where /proc is not there.
 */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count after its end.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

/** True when `pid` names a live process (one we may not signal counts as live). */
function alive(pid: number): boolean {
  if (!(pid > 0)) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True when the holder ran on this host and its process is gone. */
export function holderGone(holder: Pick<LockInfo, 'host' | 'pid' | 'started'>): boolean {
  if (holder.host !== currentActor().host || !(holder.pid > 0)) return false;
  if (!alive(holder.pid)) return true;
  const started = holder.started === undefined ? undefined : processStart(holder.pid);
  return started !== undefined && started !== holder.started;
}
