/**
 * The embedded default state backend: plain files in one directory per service.
 *
 *   state.json    the rollout state, replaced atomically, compare-and-swap against what this
 *                 process last read or wrote (the mutex directory state.mutex makes it one step)
 *   lock.json     the driver lock, under a lease (lock.ts)
 *   audit.jsonl   the hash-chained audit log (audit.ts)
 *   requests/     operator requests to the running driver, one file each
 *
 * Nothing here ever overwrites or deletes a file it cannot read: a corrupt state file is the
 * only record of where traffic was left, so the operator decides what to do with it.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, rename, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { LockedError, UsageError } from '../../errors.js';
import { ensureDir, errorCode, writeFileAtomic } from '../atomic.js';
import { JsonlAuditLog } from './audit.js';
import { acquireDirMutex, acquireLockFile, readLockHolder } from './lock.js';
import type { Actor, Lock, LockInfo, OperatorRequest, StateStore } from '../store.js';
import { parseRequest } from '../requests.js';

/** Options of the local backend. */
export interface LocalStateStoreOptions<S> {
  /** Milliseconds since the epoch; injected so lease expiry is testable without waiting. */
  clock?: () => number;
  /** Checks a loaded state and returns it typed; throwing marks the file as not a valid state. */
  validate?: (value: unknown) => S;
}

/**
 * Posts of this process so far. Part of each request's file name, so two requests posted in the
 * same millisecond still sort in the order they were posted.
 */
let postedRequests = 0;

/** A file that cannot be read as what it should hold: refused, explained, never overwritten. */
function corrupt(path: string, what: string): UsageError {
  return new UsageError(
    `state file ${path} ${what}; it was left untouched`,
    `restore it from a backup, or move it aside (mv ${path} ${path}.broken) and run \`deploy history\` to see the last recorded step`,
  );
}

/** The mutex directory that makes a state save's compare and swap one step. */
const STATE_MUTEX = 'state.mutex';

const digest = (text: string) => createHash('sha256').update(text).digest('hex');

/** State, lock, audit log and operator requests of one service, in the directory `dir`. */
export class LocalStateStore<S> implements StateStore<S> {
  /** The absolute path of the state directory. */
  readonly location: string;
  /** The audit log, `audit.jsonl` in the state directory. */
  readonly audit: JsonlAuditLog;
  private readonly clock: () => number;
  private readonly validate: (value: unknown) => S;
  /** Digest of state.json as this store last read or wrote it (null: absent; undefined: never looked). */
  private seenState: string | null | undefined;

  /** @param dir the state directory; created (mode 0700) on the first write. */
  constructor(dir: string, opts: LocalStateStoreOptions<S> = {}) {
    this.location = resolve(dir);
    this.clock = opts.clock ?? Date.now;
    this.validate = opts.validate ?? ((value) => value as S);
    this.audit = new JsonlAuditLog(join(this.location, 'audit.jsonl'), { clock: this.clock });
  }

  private get statePath(): string {
    return join(this.location, 'state.json');
  }

  private get requestsDir(): string {
    return join(this.location, 'requests');
  }

  /** The stored state; undefined when there is no state file; UsageError when it is corrupt. */
  async load(): Promise<S | undefined> {
    const raw = await this.readRaw(this.statePath);
    this.seenState = raw === undefined ? null : digest(raw);
    return raw === undefined ? undefined : this.parse(raw, this.statePath, this.validate, 'a valid rollout state');
  }

  /**
   * Replace the stored state atomically (a crash leaves the old state or the new, never a mix),
   * if it is still what this store last read or wrote: when another process wrote it since — a
   * driver that took over while this one was stalled — LockedError, and nothing is written.
   */
  async save(state: S): Promise<void> {
    await ensureDir(this.location);
    const release = await acquireDirMutex(join(this.location, STATE_MUTEX), 4_000);
    if (!release) throw new LockedError(`${this.statePath} is being written by another process right now`, 'run `deploy status` to see who drives this rollout');
    try {
      if (this.seenState !== undefined) {
        const raw = await this.readRaw(this.statePath);
        const now = raw === undefined ? null : digest(raw);
        if (now !== this.seenState) {
          throw new LockedError(
            `the rollout state in ${this.statePath} was written by another driver since this one read it; nothing was recorded over it`,
            'another driver now drives this rollout: run `deploy status` to see where it stands',
          );
        }
      }
      const text = `${JSON.stringify(state, null, 2)}\n`;
      await writeFileAtomic(this.statePath, text);
      this.seenState = digest(text);
    } finally {
      await release();
    }
  }

  /** Another document kept beside the state (`<name>.json`), read like the state. */
  loadDoc<T>(name: string, validate: (value: unknown) => T): Promise<T | undefined> {
    return this.readJson(this.docPath(name), validate, `a valid ${name} document`);
  }

  /** Replace a document atomically. */
  async saveDoc<T>(name: string, value: T): Promise<void> {
    await this.writeJson(this.docPath(name), value);
  }

  private docPath(name: string): string {
    if (!/^[a-z][a-z0-9-]*$/.test(name) || name === 'state' || name === 'lock') throw new Error(`not a document name: ${name}`);
    return join(this.location, `${name}.json`);
  }

  private async readJson<T>(path: string, validate: (value: unknown) => T, what: string): Promise<T | undefined> {
    const raw = await this.readRaw(path);
    return raw === undefined ? undefined : this.parse(raw, path, validate, what);
  }

  private async readRaw(path: string): Promise<string | undefined> {
    try {
      return await readFile(path, 'utf8');
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return undefined;
      if (errorCode(error) === 'EISDIR') throw corrupt(path, 'is a directory, not a file');
      throw error;
    }
  }

  private parse<T>(raw: string, path: string, validate: (value: unknown) => T, what: string): T {
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (error) {
      throw corrupt(path, `is not valid JSON (${(error as Error).message})`);
    }
    try {
      return validate(value);
    } catch (error) {
      throw corrupt(path, `does not hold ${what} (${(error as Error).message})`);
    }
  }

  private async writeJson(path: string, value: unknown): Promise<void> {
    await ensureDir(this.location);
    await writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
  }

  /** Take the driver lock for `leaseMs`, or throw LockedError naming the holder. */
  async acquireLock(actor: Actor, leaseMs: number): Promise<Lock> {
    if (!(leaseMs > 0)) throw new UsageError(`lock lease must be a positive number of milliseconds, got ${leaseMs}`);
    return acquireLockFile(this.location, actor, leaseMs, this.clock);
  }

  /** The recorded lock holding, expired or not; undefined when there is none. */
  lockHolder(): Promise<LockInfo | undefined> {
    return readLockHolder(this.location);
  }

  /** Leave a request for the running driver, complete or not at all. */
  async postRequest(request: OperatorRequest): Promise<void> {
    await ensureDir(this.requestsDir);
    // Lexical order of names is arrival order: the zero-padded time, then this process's count.
    const name = [
      String(this.clock()).padStart(15, '0'),
      String(postedRequests++).padStart(9, '0'),
      request.id.replace(/[^A-Za-z0-9_-]/g, '_'),
    ].join('-');
    await writeFileAtomic(join(this.requestsDir, `${name}.json`), `${JSON.stringify(request)}\n`);
  }

  /** Whether a request is waiting: one directory listing, cheap enough to poll during a hold. */
  async hasRequests(): Promise<boolean> {
    return (await this.pendingRequestNames()).length > 0;
  }

  /**
   * Take the pending requests, oldest first, removing each. A request is returned only when this
   * call removed its file, so two takers never both act on one request.
   */
  async takeRequests(): Promise<OperatorRequest[]> {
    const taken: OperatorRequest[] = [];
    for (const name of await this.pendingRequestNames()) {
      const path = join(this.requestsDir, name);
      let request: OperatorRequest | undefined;
      try {
        request = parseRequest(await readFile(path, 'utf8'));
      } catch (error) {
        if (errorCode(error) === 'ENOENT') continue; // taken by another process since the listing
        throw error;
      }
      if (!request) {
        // Set aside rather than deleted (someone asked for something) or retried on every tick.
        await rename(path, `${path}.broken`).catch(() => undefined);
        continue;
      }
      try {
        await unlink(path);
      } catch (error) {
        if (errorCode(error) === 'ENOENT') continue;
        throw error;
      }
      taken.push(request);
    }
    return taken;
  }

  /** Names of the request files, oldest first. */
  private async pendingRequestNames(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.requestsDir);
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return [];
      throw error;
    }
    // Dot-files are atomic writes still in progress; `.broken` ones were set aside.
    return names.filter((name) => name.endsWith('.json') && !name.startsWith('.')).sort();
  }
}
