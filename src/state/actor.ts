/**
 * Who is running this process, as recorded in the driver lock and in every audit record.
 */
import { hostname, userInfo } from 'node:os';
import type { Actor } from './store.js';

/**
 * The actor of this process: `user@host`, its pid and host.
 *
 * `os.userInfo()` throws when the uid has no passwd entry, which is common in containers and CI
 * runners started with an arbitrary uid; the environment is consulted next, then the bare uid, so
 * a driver is never refused the lock merely for being anonymous.
 */
export function currentActor(): Actor {
  const host = safeHostname();
  return { owner: `${userName()}@${host}`, pid: process.pid, host };
}

function userName(): string {
  try {
    const name = userInfo().username;
    if (name) return name;
  } catch {
    // no passwd entry for this uid: fall through to the environment
  }
  const fromEnv = process.env.USER ?? process.env.LOGNAME ?? process.env.USERNAME;
  if (fromEnv) return fromEnv;
  return typeof process.getuid === 'function' ? `uid${process.getuid()}` : 'unknown';
}

function safeHostname(): string {
  try {
    return hostname() || 'localhost';
  } catch {
    return 'localhost';
  }
}
