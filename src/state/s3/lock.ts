/**
 * The driver lock of the s3 backend: one object, `<prefix>lock.json`, held under a lease.
 *
 *   held       { owner, pid, host, token, acquiredAt, renewedAt, leaseExpiresAt, started?, fence }
 *   released   { released: true, fence, releasedAt, releasedBy }
 *
 * Every change is a conditional put: creating the object with If-None-Match: *, and taking over,
 * renewing and releasing with If-Match on the ETag just read or last written. S3 settles each race:
 * of two drivers taking the same expired lease, or a renewal racing a takeover, one write lands and
 * the other is refused (412) — nobody ever believes they hold a lock they lost.
 *
 * The fencing token is a counter kept in the object itself: each acquisition writes the one it
 * read plus one, under the condition that nothing changed since the read. So the object is never
 * deleted, only marked released, and the counter survives every holder (as the Kubernetes Lease's
 * leaseTransitions do). Deleting lock.json by hand restarts it at 1.
 */
import { randomBytes } from 'node:crypto';
import { LockedError } from '../../errors.js';
import { holderGone, processStart } from '../liveness.js';
import { describeHolder } from '../local/lock.js';
import type { Actor, Lock, LockInfo } from '../store.js';
import { WriteConflict, type StateObjects } from './objects.js';

/** Where the lock object lives. */
export interface LockRef {
  objects: StateObjects;
  key: string;
}

/** What the lock object holds, as read. */
type LockObject =
  | { kind: 'missing' }
  | { kind: 'held'; info: LockInfo; etag: string }
  | { kind: 'released'; fence: number; etag: string }
  | { kind: 'corrupt'; reason: string; fence: number; etag: string; lastModified: number };

const LOCKED_HINT =
  'wait for that driver to finish, or run `deploy status`; the lock is taken over automatically once its lease expires';
const LOST_HINT =
  'another driver now drives this rollout: stop here and run `deploy status` to see where it stands';

const url = (ref: LockRef): string => `s3://${ref.objects.bucket}/${ref.key}`;
const iso = (ms: number): string => new Date(ms).toISOString();
const serialize = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;

/** The lock object, classified. */
async function readLock(ref: LockRef): Promise<LockObject> {
  const object = await ref.objects.get(ref.key);
  if (!object) return { kind: 'missing' };
  let value: unknown;
  try {
    value = JSON.parse(object.body);
  } catch (error) {
    return corrupt(`is not valid JSON (${(error as Error).message})`);
  }
  const v = (value ?? {}) as Partial<LockInfo> & { released?: unknown };
  const fence = Number.isSafeInteger(v.fence) && v.fence! > 0 ? v.fence! : 0;
  if (v.released === true) return { kind: 'released', fence, etag: object.etag };
  for (const key of ['owner', 'host', 'token', 'acquiredAt', 'renewedAt', 'leaseExpiresAt'] as const) {
    if (typeof v[key] !== 'string') return corrupt(`has no valid "${key}"`);
  }
  if (typeof v.pid !== 'number') return corrupt('has no valid "pid"');
  if (Number.isNaN(Date.parse(v.leaseExpiresAt!))) return corrupt('has an unparsable "leaseExpiresAt"');
  const { released: _r, ...info } = v;
  return { kind: 'held', info: { ...(info as LockInfo), fence }, etag: object.etag };

  function corrupt(reason: string): LockObject {
    // The counter is salvaged if it can be: a restart at 1 would make fencing routers refuse us.
    const salvaged = Number(/"fence"\s*:\s*(\d+)/.exec(object!.body)?.[1] ?? 0);
    return { kind: 'corrupt', reason, fence: Number.isSafeInteger(salvaged) ? salvaged : 0, etag: object!.etag, lastModified: object!.lastModified?.getTime() ?? Date.now() };
  }
}

function newHolding(actor: Actor, leaseMs: number, now: number, fence: number): LockInfo {
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
    fence,
  };
}

/**
 * Take the lock for `actor` for `leaseMs`, or throw LockedError naming the holder. An expired or
 * released lock, or one whose holder is provably gone from this host, is taken over; a lost race
 * (412) is answered by reading who won. A corrupt lock object counts as expired only once it has
 * not been modified for a whole lease, since a young one may be someone's write in progress.
 */
export async function acquireS3Lock(ref: LockRef, actor: Actor, leaseMs: number, clock: () => number): Promise<Lock> {
  // A few rounds only, to absorb a holder releasing between our lost write and our read.
  for (let round = 0; round < 3; round++) {
    const current = await readLock(ref);
    const now = clock();
    if (current.kind === 'held' && Date.parse(current.info.leaseExpiresAt) > now && !holderGone(current.info)) {
      throw new LockedError(`locked by ${describeHolder(current.info)} (${url(ref)})`, LOCKED_HINT);
    }
    if (current.kind === 'corrupt' && Date.now() - current.lastModified <= leaseMs) {
      throw new LockedError(
        `lock object ${url(ref)} ${current.reason}, and it was modified ${Math.round((Date.now() - current.lastModified) / 1000)} s ago, within the lease of ${Math.round(leaseMs / 1000)} s`,
        `if no driver is running, remove it (aws s3 rm ${url(ref)}); otherwise it is taken over automatically once it is older than the lease`,
      );
    }
    const last = current.kind === 'missing' ? 0 : current.kind === 'held' ? (current.info.fence ?? 0) : current.fence;
    const holding = newHolding(actor, leaseMs, now, last + 1);
    try {
      const etag = await ref.objects.put(ref.key, serialize(holding), current.kind === 'missing' ? { ifNoneMatch: true } : { ifMatch: current.etag });
      return new S3Lock(ref, holding, etag, leaseMs, clock);
    } catch (e) {
      if (!(e instanceof WriteConflict)) throw e;
    }
  }
  throw new LockedError(`could not take the lock (${url(ref)}): other drivers kept taking and releasing it`, LOCKED_HINT);
}

/** The holding the lock object records, expired or not; undefined when released or never held. */
export async function readS3LockHolder(ref: LockRef): Promise<LockInfo | undefined> {
  const current = await readLock(ref);
  if (current.kind === 'corrupt') {
    throw new LockedError(
      `lock object ${url(ref)} ${current.reason}`,
      `if no driver is running, remove it (aws s3 rm ${url(ref)}); otherwise it is taken over automatically once it is older than the lease`,
    );
  }
  return current.kind === 'held' ? current.info : undefined;
}

/** A holding of the lock object; renew and release act only while it still carries our token. */
class S3Lock implements Lock {
  constructor(
    private readonly ref: LockRef,
    private holding: LockInfo,
    /** The ETag of our last write: a write conditioned on it lands only if nobody wrote since. */
    private etag: string,
    private readonly leaseMs: number,
    private readonly clock: () => number,
  ) {}

  /** The holding as last written by us: renew moves its lease forward. */
  get info(): LockInfo {
    return this.holding;
  }

  /** Extend the lease, or throw LockedError ("lock lost: …") once the object is no longer ours. */
  async renew(): Promise<void> {
    const now = this.clock();
    const renewed = { ...this.holding, renewedAt: iso(now), leaseExpiresAt: iso(now + this.leaseMs) };
    await this.replace(serialize(renewed), (current) => {
      throw new LockedError(`lock lost: ${this.describeLoss(current)}`, LOST_HINT);
    });
    this.holding = renewed;
  }

  /** Mark the lock released, fence kept, if it is still ours; otherwise leave the new holder alone. */
  async release(): Promise<void> {
    const released = { released: true, fence: this.holding.fence, releasedAt: iso(this.clock()), releasedBy: this.holding.owner, token: this.holding.token };
    await this.replace(serialize(released), () => undefined);
  }

  /**
   * Write `body` over our last write. Refused, the object is read: if it still carries our token
   * (our own write whose answer was lost, or a read-only touch), we write once more over what is
   * there; otherwise it is someone else's and `lost` decides (undefined: it kept changing).
   */
  private async replace(body: string, lost: (current: LockObject | undefined) => void): Promise<void> {
    let base = this.etag;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        this.etag = await this.ref.objects.put(this.ref.key, body, { ifMatch: base });
        return;
      } catch (e) {
        if (!(e instanceof WriteConflict)) throw e;
      }
      const current = await readLock(this.ref);
      if (current.kind !== 'held' || current.info.token !== this.holding.token) return lost(current);
      base = current.etag;
    }
    lost(undefined);
  }

  private describeLoss(current: LockObject | undefined): string {
    if (!current) return `${url(this.ref)} kept changing while this driver wrote it`;
    if (current.kind === 'held') return `taken over by ${describeHolder(current.info)} (${url(this.ref)})`;
    if (current.kind === 'missing') return `${url(this.ref)} was removed`;
    if (current.kind === 'released') return `${url(this.ref)} was released by someone else`;
    return `${url(this.ref)} ${current.reason}`;
  }
}
