/**
 * The `s3` state backend: a service's state in an S3 bucket, for teams on AWS whose drivers run
 * in CI or on several laptops and share no disk and no cluster.
 *
 *   <prefix>state.json           the rollout state
 *   <prefix><doc>.json           other documents (the org registry)
 *   <prefix>lock.json            the driver lock, under a lease, with its fencing counter (lock.ts)
 *   <prefix>requests/<n>.json    operator requests, one object each
 *   <prefix>audit/<seq>.json     the hash-chained audit log, one object per record (audit.ts)
 *   <prefix>audit-head.json      the log's chain head, a version per append with versioning on
 *
 * Every write is conditional on the ETag this store last read or wrote (If-Match), or on there
 * being nothing yet (If-None-Match: *). A driver whose lease expired and was taken over therefore
 * cannot overwrite the new driver's state: its next save is refused with 412 and stops with
 * LockedError, nothing written. As with local files, a state that cannot be read is refused and
 * never overwritten — it is the only record of where traffic was left.
 *
 * Operator requests are taken exactly once without relying on the lock: S3's DeleteObject is
 * idempotent (two takers both "succeed"), and conditional deletes are not available on every
 * bucket, so a delete cannot decide who took a request. A taker first claims the request by
 * overwriting it, If-Match on the ETag it read, with a claim carrying its own random id: of two
 * takers exactly one claim lands, the other gets 412 and leaves the request alone. Only then does
 * the winner delete the object. A claim left behind by a taker killed before its delete is
 * removed by the next taker and never acted on again. This holds whoever takes — the driver,
 * a second driver after a takeover, or `deploy abort` while a driver still runs.
 */
import { randomBytes } from 'node:crypto';
import { LockedError, UsageError } from '../../errors.js';
import type { Actor, Lock, LockInfo, OperatorRequest, StateStore } from '../store.js';
import { parseRequest } from '../requests.js';
import { S3AuditLog } from './audit.js';
import { acquireS3Lock, readS3LockHolder, type LockRef } from './lock.js';
import { backoff, WriteConflict, type StateObjects } from './objects.js';


/** A claim older than this was left by a taker that died acting on it. */
const CLAIM_STALE_MS = 60_000;
/** Options of the s3 backend. */
export interface S3StateStoreOptions<S> {
  /** Key prefix of every object, ending in '/'. */
  prefix: string;
  /** Milliseconds since the epoch; injected so lease expiry is testable without waiting. */
  clock?: () => number;
  /** Checks a loaded state and returns it typed; throwing marks it as not a valid state. */
  validate?: (value: unknown) => S;
}

/** Names of objects of the store itself, which no document may take. */
const RESERVED_DOCS = new Set(['state', 'lock', 'requests', 'audit', 'audit-head']);
/** Unreadable requests are kept under their key with this suffix: set aside, not lost. */
const SET_ASIDE = '.broken';

/** Posts of this process so far: part of each request's key, so same-millisecond posts keep their order. */
let postedRequests = 0;

/** A request object once a taker has claimed it. */
interface Claim {
  claimedBy: string;
  claimedAt: string;
  request: unknown;
}
const isClaim = (value: unknown): value is Claim => typeof (value as Claim | null)?.claimedBy === 'string';

/** State, lock, audit log and operator requests of one service, under one prefix of a bucket. */
export class S3StateStore<S> implements StateStore<S> {
  /** The audit log, one object per record under `<prefix>audit/`. */
  readonly audit: S3AuditLog;
  private readonly prefix: string;
  private readonly clock: () => number;
  private readonly validate: (value: unknown) => S;
  /**
   * The ETag of each object as this store last read or wrote it (null: seen absent). A write is
   * based on this version and nothing newer: what changed since is someone else's.
   */
  private readonly seen = new Map<string, string | null>();

  constructor(
    private readonly objects: StateObjects,
    opts: S3StateStoreOptions<S>,
  ) {
    if (!opts.prefix.endsWith('/')) throw new Error(`an s3 state prefix ends in '/': ${opts.prefix}`);
    this.prefix = opts.prefix;
    this.clock = opts.clock ?? Date.now;
    this.validate = opts.validate ?? ((value) => value as S);
    this.audit = new S3AuditLog(objects, `${this.prefix}audit/`, { clock: this.clock, headKey: `${this.prefix}audit-head.json` });
  }

  /** `s3://bucket/prefix/`, for messages. */
  get location(): string {
    return this.url(this.prefix);
  }

  private url(key: string): string {
    return `s3://${this.objects.bucket}/${key}`;
  }

  /** The stored state; undefined when there is none; UsageError when it is corrupt. */
  load(): Promise<S | undefined> {
    return this.readDocument(`${this.prefix}state.json`, this.validate, 'a valid rollout state');
  }

  /**
   * Replace the stored state (S3 puts are atomic: readers see the old or the new), if it is still
   * the version this store last read or wrote; when another driver wrote it since, LockedError
   * and nothing is written.
   */
  save(state: S): Promise<void> {
    return this.writeDocument(`${this.prefix}state.json`, state, 'the rollout state', this.validate);
  }

  /** Another document (`<prefix><name>.json`), read and refused like the state. */
  loadDoc<T>(name: string, validate: (value: unknown) => T): Promise<T | undefined> {
    return this.readDocument(this.docKey(name), validate, `a valid ${name} document`);
  }

  /** Replace a document, compare-and-swap like the state. */
  saveDoc<T>(name: string, value: T): Promise<void> {
    return this.writeDocument(this.docKey(name), value, `the ${name} document`);
  }

  private docKey(name: string): string {
    if (!/^[a-z][a-z0-9-]*$/.test(name) || RESERVED_DOCS.has(name)) throw new Error(`not a document name: ${name}`);
    return `${this.prefix}${name}.json`;
  }

  private async readDocument<T>(key: string, validate: (value: unknown) => T, what: string): Promise<T | undefined> {
    const object = await this.objects.get(key);
    // Forgotten until it parses: a save must never be based on a version that was refused.
    this.seen.delete(key);
    if (!object) {
      this.seen.set(key, null);
      return undefined;
    }
    const value = this.parse(object.body, key, validate, what);
    this.seen.set(key, object.etag);
    return value;
  }

  private parse<T>(body: string, key: string, validate: (value: unknown) => T, what: string): T {
    const corrupt = (why: string) =>
      new UsageError(
        `state object ${this.url(key)} ${why}; it was left untouched`,
        `restore it from a backup or an earlier object version, or move it aside (aws s3 mv ${this.url(key)} ${this.url(key)}.broken) and run \`deploy history\` to see the last recorded step`,
      );
    let value: unknown;
    try {
      value = JSON.parse(body);
    } catch (error) {
      throw corrupt(`is not valid JSON (${(error as Error).message})`);
    }
    try {
      return validate(value);
    } catch (error) {
      throw corrupt(`does not hold ${what} (${(error as Error).message})`);
    }
  }

  private async writeDocument(key: string, value: unknown, what: string, validate: (value: unknown) => unknown = (v) => v): Promise<void> {
    if (!this.seen.has(key)) {
      // Never read by this store: based on what is there now, unless that cannot be read.
      const current = await this.objects.get(key);
      if (current) this.parse(current.body, key, validate, what.replace(/^the /, 'a valid '));
      this.seen.set(key, current?.etag ?? null);
    }
    const base = this.seen.get(key);
    try {
      const etag = await this.objects.put(key, `${JSON.stringify(value, null, 2)}\n`, base ? { ifMatch: base } : { ifNoneMatch: true });
      this.seen.set(key, etag);
    } catch (e) {
      if (!(e instanceof WriteConflict)) throw e;
      throw new LockedError(
        `${what} in ${this.url(key)} was written by another driver since this one read it; nothing was recorded over it`,
        'another driver now drives this rollout: run `deploy status` to see where it stands',
      );
    }
  }

  /** Take the driver lock for `leaseMs`, or throw LockedError naming the holder. */
  acquireLock(actor: Actor, leaseMs: number): Promise<Lock> {
    if (!(leaseMs > 0)) throw new UsageError(`lock lease must be a positive number of milliseconds, got ${leaseMs}`);
    return acquireS3Lock(this.lockRef, actor, leaseMs, this.clock);
  }

  /** The recorded holding, expired or not; undefined when nobody holds the lock. */
  lockHolder(): Promise<LockInfo | undefined> {
    return readS3LockHolder(this.lockRef);
  }

  private get lockRef(): LockRef {
    return { objects: this.objects, key: `${this.prefix}lock.json` };
  }

  private get requestsFolder(): string {
    return `${this.prefix}requests/`;
  }

  /** Leave a request for the running driver: one new object, never written over another. */
  async postRequest(request: OperatorRequest): Promise<void> {
    const body = `${JSON.stringify(request)}\n`;
    for (let attempt = 0; ; attempt++) {
      // Lexical order of keys is arrival order: the zero-padded time, then this process's count.
      const name = [String(this.clock()).padStart(15, '0'), String(postedRequests++).padStart(9, '0'), request.id.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 100)].join('-');
      try {
        await this.objects.put(`${this.requestsFolder}${name}.json`, body, { ifNoneMatch: true });
        return;
      } catch (e) {
        // Another process posted the same id in the same millisecond with the same count.
        if (!(e instanceof WriteConflict) || attempt >= 5) throw e;
        await backoff(attempt);
      }
    }
  }

  /** Whether a request is waiting: one listing, cheap enough to poll during a hold. */
  async hasRequests(): Promise<boolean> {
    return (await this.pendingRequestKeys()).length > 0;
  }

  /**
   * Take the pending requests, oldest first. Each is claimed by a conditional write before it is
   * removed (see the header), so two takers never both act on one request.
   */
  async takeRequests(): Promise<OperatorRequest[]> {
    const taken: OperatorRequest[] = [];
    const me = randomBytes(12).toString('hex');
    for (const key of await this.pendingRequestKeys()) {
      const object = await this.objects.get(key);
      if (!object) continue; // taken by another process since the listing
      let value: unknown;
      try {
        value = JSON.parse(object.body);
      } catch {
        value = undefined;
      }
      if (isClaim(value)) {
        // Claimed by another taker, who removes it once it acts; one left for long was claimed
        // by a taker that died acting on it, and is cleared (never acted on twice).
        if (this.clock() - Date.parse(value.claimedAt) > CLAIM_STALE_MS) await this.objects.delete(key);
        continue;
      }
      const request = parseRequest(object.body);
      if (!request) {
        // Set aside rather than deleted (someone asked for something) or retried on every tick.
        await this.objects.put(`${key}${SET_ASIDE}`, object.body);
        await this.objects.delete(key);
        continue;
      }
      const claim: Claim = { claimedBy: me, claimedAt: new Date(this.clock()).toISOString(), request };
      try {
        await this.objects.put(key, `${JSON.stringify(claim)}\n`, { ifMatch: object.etag });
      } catch (e) {
        if (e instanceof WriteConflict) continue; // claimed by another taker first
        throw e;
      }
      // Read the claim back: a store whose conditional write is not one atomic step (moto's is
      // not) can let two claims through, and then only the one that stayed is the taker.
      const back = await this.objects.get(key);
      if (!back || !back.body.includes(`"claimedBy":"${me}"`)) continue;
      await this.objects.delete(key);
      taken.push(request);
    }
    return taken;
  }

  /** Keys of the request objects, oldest first. */
  private async pendingRequestKeys(): Promise<string[]> {
    return (await this.objects.list(this.requestsFolder)).filter((key) => key.endsWith('.json'));
  }
}
