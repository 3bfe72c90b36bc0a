/**
 * The driver lock of the local backend: `lock.json` in the state directory, held under a lease.
 *
 * A driver that dies (killed, CI runner lost) cannot release its lock, so every holding carries a
 * lease the holder renews; once a lease has expired, the next driver may take the lock over. Taking
 * over, renewing and releasing all read-check-write the file, so they run under a short mutex (the
 * directory `lock.takeover`, created exclusively): without it two drivers could both see the same
 * expired lease and both believe they won, or a renewal could overwrite a fresh taker's lock.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LockedError } from '../../errors.js';
import { ensureDir, errorCode, fsyncDir, writeFileAtomic } from '../atomic.js';
import { currentActor } from '../actor.js';
import { holderGone, processStart } from '../liveness.js';
import type { Actor, Lock, LockInfo } from '../store.js';

/** Name of the lock file in the state directory. */
export const LOCK_FILE = 'lock.json';
/** Name of the file counting acquisitions: the last fencing token handed out. */
export const FENCE_FILE = 'lock.fence';
/** Name of the takeover mutex directory next to the lock file. */
export const TAKEOVER_MUTEX = 'lock.takeover';
/** A mutex directory older than this was left by a crashed process and may be broken. */
export const MUTEX_STALE_MS = 10_000;
/** A mutex whose holder has not said who it is after this long was left by a process killed at mkdir. */
const UNSAID_STALE_MS = 2_000;
/** How long lock operations wait for a busy takeover mutex; a takeover holds it for milliseconds. */
const MUTEX_WAIT_MS = 4_000;

const LOCKED_HINT =
  'wait for that driver to finish, or run `deploy status`; the lock is taken over automatically once its lease expires';

/** The current holder in the words of LockedError: "OWNER (pid P on HOST) since …; lease …". */
export function describeHolder(info: LockInfo): string {
  return `${info.owner} (pid ${info.pid} on ${info.host}) since ${info.acquiredAt}; lease renewed at ${info.renewedAt}, expires at ${info.leaseExpiresAt}`;
}

/**
 * Take the mutex directory `path`, waiting up to `waitMs` while someone else holds it. Returns the
 * function that gives it back, or undefined when it stayed busy. Every holder keeps it for
 * milliseconds, so a mutex is broken when its holder's process is gone from this host (it says
 * who it is in `holder.json` inside) or when it is older than MUTEX_STALE_MS (a holder elsewhere,
 * or one killed before it could say). Ages are compared with the wall clock, not an injected one,
 * because the filesystem stamps mtimes.
 */
export async function acquireDirMutex(path: string, waitMs: number): Promise<(() => Promise<void>) | undefined> {
  const giveUpAt = Date.now() + waitMs;
  for (;;) {
    try {
      await mkdir(path, { mode: 0o700 });
      const me = currentActor();
      const started = processStart(process.pid);
      await writeFile(join(path, 'holder.json'), JSON.stringify({ pid: process.pid, host: me.host, ...(started ? { started } : {}) })).catch(() => undefined);
      return () => rm(path, { recursive: true, force: true }).catch(() => undefined);
    } catch (error) {
      if (errorCode(error) !== 'EEXIST') throw error;
    }
    const held = await stat(path).catch(() => undefined);
    if (held) {
      const age = Date.now() - held.mtimeMs;
      const holder = await mutexHolder(path);
      // A holder writes holder.json right after mkdir: one that never did was killed in between.
      if (age > MUTEX_STALE_MS || holder === 'gone' || (holder === 'unsaid' && age > UNSAID_STALE_MS)) {
        await breakStaleMutex(path, held.ino);
        continue;
      }
    }
    if (held && Date.now() >= giveUpAt) return undefined;
    if (held) await sleep(5 + Math.random() * 20);
  }
}

/** What the mutex says of its holder: gone from this host, alive or elsewhere, or nothing yet. */
async function mutexHolder(path: string): Promise<'gone' | 'live' | 'unsaid'> {
  let text: string;
  try {
    text = await readFile(join(path, 'holder.json'), 'utf8');
  } catch {
    return 'unsaid';
  }
  try {
    const holder = JSON.parse(text) as { pid: number; host: string; started?: string };
    return typeof holder.pid === 'number' && typeof holder.host === 'string' && holderGone(holder) ? 'gone' : 'live';
  } catch {
    return 'unsaid'; // torn: the age rule decides
  }
}

/**
 * Remove a stale mutex without removing a fresh one that replaced it meanwhile: move it aside
 * (atomic, so only one breaker gets it), then check it is the directory judged stale.
 */
async function breakStaleMutex(path: string, staleIno: number): Promise<void> {
  const aside = `${path}.stale-${randomBytes(6).toString('hex')}`;
  try {
    await rename(path, aside);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return; // another process broke it first
    throw error;
  }
  const moved = await stat(aside);
  if (moved.ino === staleIno) await rm(aside, { recursive: true, force: true }).catch(() => undefined);
  else await rename(aside, path).catch(() => rm(aside, { recursive: true, force: true }).catch(() => undefined));
}

/** The lock file as found: absent, a valid holding, or unreadable. `fingerprint` identifies the version. */
type LockFileState =
  | { kind: 'missing' }
  | { kind: 'held'; info: LockInfo; fingerprint: string }
  | { kind: 'corrupt'; reason: string; fingerprint: string; mtimeMs: number };

async function readLockFile(file: string): Promise<LockFileState> {
  let raw: string;
  try {
    raw = await readFile(file, 'utf8');
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return { kind: 'missing' };
    const meta = await stat(file).catch(() => undefined);
    if (!meta) return { kind: 'missing' };
    const fingerprint = `unreadable:${meta.ino}:${meta.mtimeMs}:${meta.size}`;
    return { kind: 'corrupt', reason: `cannot be read (${errorCode(error) ?? String(error)})`, fingerprint, mtimeMs: meta.mtimeMs };
  }
  try {
    return { kind: 'held', info: parseLockInfo(raw), fingerprint: raw };
  } catch (error) {
    const meta = await stat(file).catch(() => undefined);
    return { kind: 'corrupt', reason: (error as Error).message, fingerprint: raw, mtimeMs: meta?.mtimeMs ?? 0 };
  }
}

function parseLockInfo(raw: string): LockInfo {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (error) {
    throw new Error(`is not valid JSON (${(error as Error).message})`);
  }
  const info = value as Partial<LockInfo> | null;
  const strings = ['owner', 'host', 'token', 'acquiredAt', 'renewedAt', 'leaseExpiresAt'] as const;
  if (typeof info !== 'object' || info === null) throw new Error('does not hold a lock object');
  for (const key of strings) {
    if (typeof info[key] !== 'string') throw new Error(`has no valid "${key}"`);
  }
  if (typeof info.pid !== 'number') throw new Error('has no valid "pid"');
  if (Number.isNaN(Date.parse(info.leaseExpiresAt!))) throw new Error('has an unparsable "leaseExpiresAt"');
  return info as LockInfo;
}

const serialize = (info: LockInfo): string => `${JSON.stringify(info, null, 2)}\n`;
const iso = (ms: number): string => new Date(ms).toISOString();

function newHolding(actor: Actor, leaseMs: number, now: number): LockInfo {
  const at = iso(now);
  const started = actor.pid === process.pid ? processStart(process.pid) : undefined;
  return {
    ...(started ? { started } : {}),
    owner: actor.owner,
    pid: actor.pid,
    host: actor.host,
    token: randomBytes(16).toString('hex'),
    acquiredAt: at,
    renewedAt: at,
    leaseExpiresAt: iso(now + leaseMs),
  };
}

/**
 * Take the driver lock in `dir` for `actor` with a lease of `leaseMs`, or throw LockedError naming
 * the holder. An expired lease is taken over; a corrupt lock file counts as expired only once it
 * has not been modified for a whole lease, since a young one may still be mid-write by its owner.
 * Every acquisition runs under the mutex, so each gets a fencing token greater than any before.
 */
export async function acquireLockFile(dir: string, actor: Actor, leaseMs: number, clock: () => number): Promise<Lock> {
  await ensureDir(dir);
  const file = join(dir, LOCK_FILE);
  const release = await acquireDirMutex(join(dir, TAKEOVER_MUTEX), MUTEX_WAIT_MS);
  if (!release) throw new LockedError(`the lock ${file} is being taken by another driver right now`, LOCKED_HINT);
  try {
    const found = await readLockFile(file);
    // A holder whose process is gone from this host cannot renew: its lease need not be waited out.
    if (found.kind === 'held' && Date.parse(found.info.leaseExpiresAt) > clock() && !holderGone(found.info)) {
      throw new LockedError(`locked by ${describeHolder(found.info)}`, LOCKED_HINT);
    }
    if (found.kind === 'corrupt' && Date.now() - found.mtimeMs <= leaseMs) {
      throw new LockedError(
        `lock file ${file} ${found.reason}, and it was modified ${Math.round((Date.now() - found.mtimeMs) / 1000)} s ago, within the lease of ${Math.round(leaseMs / 1000)} s`,
        `if no driver is running, remove it (rm ${file}); otherwise it is taken over automatically once it is older than the lease`,
      );
    }
    const last = Math.max(await readFence(dir), found.kind === 'held' ? (found.info.fence ?? 0) : 0);
    const holding = { ...newHolding(actor, leaseMs, clock()), fence: last + 1 };
    // The counter moves first: a crash between the two writes skips a token, never repeats one.
    await writeFileAtomic(join(dir, FENCE_FILE), `${holding.fence}\n`);
    await writeFileAtomic(file, serialize(holding));
    return new FileLock(dir, holding, leaseMs, clock);
  } finally {
    await release();
  }
}

/** The last fencing token handed out in `dir` (0 before the first). */
async function readFence(dir: string): Promise<number> {
  try {
    const n = Number((await readFile(join(dir, FENCE_FILE), 'utf8')).trim());
    return Number.isSafeInteger(n) && n > 0 ? n : 0;
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return 0;
    throw error;
  }
}

/** The holding recorded in `dir`, expired or not; undefined when nobody holds the lock. */
export async function readLockHolder(dir: string): Promise<LockInfo | undefined> {
  const found = await readLockFile(join(dir, LOCK_FILE));
  if (found.kind === 'corrupt') {
    throw new LockedError(
      `lock file ${join(dir, LOCK_FILE)} ${found.reason}`,
      `if no driver is running, remove it (rm ${join(dir, LOCK_FILE)}); otherwise it is taken over automatically once it is older than the lease`,
    );
  }
  return found.kind === 'held' ? found.info : undefined;
}

/** A holding of the lock file; renew and release act only while the file still carries our token. */
class FileLock implements Lock {
  private readonly file: string;
  private readonly mutex: string;

  constructor(
    dir: string,
    private holding: LockInfo,
    private readonly leaseMs: number,
    private readonly clock: () => number,
  ) {
    this.file = join(dir, LOCK_FILE);
    this.mutex = join(dir, TAKEOVER_MUTEX);
  }

  /** The holding as last written by us: renew moves its lease forward. */
  get info(): LockInfo {
    return this.holding;
  }

  /** Extend the lease, or throw LockedError ("lock lost: …") when the file no longer has our token. */
  async renew(): Promise<void> {
    const release = await acquireDirMutex(this.mutex, MUTEX_WAIT_MS);
    if (!release) throw new LockedError(`lock lost: ${this.file} is being taken over by another driver`, LOST_HINT);
    try {
      const current = await readLockFile(this.file);
      if (current.kind !== 'held' || current.info.token !== this.holding.token) {
        throw new LockedError(`lock lost: ${describeLoss(current, this.file)}`, LOST_HINT);
      }
      const now = this.clock();
      const renewed = { ...current.info, renewedAt: iso(now), leaseExpiresAt: iso(now + this.leaseMs) };
      await writeFileAtomic(this.file, serialize(renewed));
      this.holding = renewed;
    } finally {
      await release();
    }
  }

  /** Remove the lock file if it still has our token; otherwise leave the new holder alone. */
  async release(): Promise<void> {
    // A mutex still busy after the wait means our lease expired and is being taken over: not ours.
    const release = await acquireDirMutex(this.mutex, MUTEX_WAIT_MS);
    if (!release) return;
    try {
      const current = await readLockFile(this.file);
      if (current.kind !== 'held' || current.info.token !== this.holding.token) return;
      await unlink(this.file).catch((error: unknown) => {
        if (errorCode(error) !== 'ENOENT') throw error;
      });
      await fsyncDir(dirname(this.file));
    } finally {
      await release();
    }
  }
}

const LOST_HINT =
  'another driver now drives this rollout: stop here and run `deploy status` to see where it stands';

function describeLoss(current: LockFileState, file: string): string {
  if (current.kind === 'held') return `taken over by ${describeHolder(current.info)}`;
  if (current.kind === 'missing') return `${file} was removed`;
  return `${file} ${current.reason}`;
}
