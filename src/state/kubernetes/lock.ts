/**
 * The driver lock of the Kubernetes backend: a `coordination.k8s.io/v1` Lease, the object
 * Kubernetes' own leader election uses, so `kubectl get lease` shows who drives.
 *
 *   spec.holderIdentity        `owner/pid/token` of the holding (empty once released)
 *   spec.renewTime             the last renewal (MicroTime); the lease ends leaseDurationSeconds later
 *   annotations cutover.dev/*  owner, pid, host and token, for messages and `deploy status`
 *   cutover.dev/audit-head     the audit log's chain head (head.ts), kept whoever holds the lock
 *
 * Every change is a PUT carrying the resourceVersion read just before, so the API server settles
 * each race: of two drivers taking the same expired lease, or a renewal racing a takeover, one
 * write lands and the other gets a 409 — nobody ever believes they hold a lock they lost.
 */
import { randomBytes } from 'node:crypto';
import type { KubeClient, KubeObject } from '../../kube/client.js';
import { LockedError } from '../../errors.js';
import { backoff, isConflict, kubeCall, managedLabels } from './objects.js';
import { holderGone, processStart } from '../liveness.js';
import { describeHolder } from '../local/lock.js';
import type { Actor, Lock, LockInfo } from '../store.js';

/** A Lease as read and written here (and by head.ts, which keeps the audit log's head on it). */
export interface Lease extends KubeObject {
  spec?: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

/** Annotations carrying the holder's identity, since holderIdentity is one opaque string. */
const ANNOTATIONS = {
  owner: 'cutover.dev/owner',
  pid: 'cutover.dev/pid',
  host: 'cutover.dev/host',
  started: 'cutover.dev/started',
  token: 'cutover.dev/token',
} as const;

const LOCKED_HINT =
  'wait for that driver to finish, or run `deploy status`; the lock is taken over automatically once its lease expires';
const LOST_HINT =
  'another driver now drives this rollout: stop here and run `deploy status` to see where it stands';

/** Where the Lease lives and how to reach it. */
export interface LeaseRef {
  kube: KubeClient;
  namespace: string;
  name: string;
  /** The store's name, for labels. */
  store: string;
}

/** The Lease collection of the namespace, or the Lease `name`. */
export const leasePath = (ref: Pick<LeaseRef, 'namespace'>, name?: string): string =>
  `/apis/coordination.k8s.io/v1/namespaces/${ref.namespace}/leases${name ? `/${name}` : ''}`;
/** `Lease <namespace>/<name>`, for messages. */
export const leaseName = (ref: Pick<LeaseRef, 'namespace' | 'name'>): string => `Lease ${ref.namespace}/${ref.name}`;

/**
 * Rounds of a renewal or release losing to other writers of the Lease while it is still ours:
 * the audit log's head is kept on it too (head.ts), written after every append.
 */
const LEASE_WRITE_ATTEMPTS = 6;

/** Kubernetes' MicroTime: RFC 3339 with six fractional digits, as the API server writes it. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

const iso = (ms: number): string => new Date(Number.isFinite(ms) ? ms : 0).toISOString();

/**
 * The holding a Lease records, expired or not; undefined when released or never held. A Lease
 * written by something other than Cutover has no annotations: its holderIdentity stands in.
 */
export function holderOf(lease: Lease | undefined): LockInfo | undefined {
  const spec = lease?.spec;
  if (!lease || !spec?.holderIdentity) return undefined;
  const notes = lease.metadata.annotations ?? {};
  const token = notes[ANNOTATIONS.token];
  const annotated = token !== undefined && spec.holderIdentity.endsWith(`/${token}`);
  const renewed = Date.parse(spec.renewTime ?? spec.acquireTime ?? '');
  const acquired = Date.parse(spec.acquireTime ?? '');
  return {
    owner: annotated ? (notes[ANNOTATIONS.owner] ?? spec.holderIdentity) : spec.holderIdentity,
    pid: annotated ? Number(notes[ANNOTATIONS.pid] ?? 0) : 0,
    host: annotated ? (notes[ANNOTATIONS.host] ?? 'unknown') : 'unknown',
    token: token ?? spec.holderIdentity,
    ...(annotated && notes[ANNOTATIONS.started] ? { started: notes[ANNOTATIONS.started] } : {}),
    acquiredAt: iso(Number.isNaN(acquired) ? renewed : acquired),
    renewedAt: iso(renewed),
    leaseExpiresAt: iso(renewed + (spec.leaseDurationSeconds ?? 0) * 1000),
    // Every acquisition counts a transition, under the Lease's resourceVersion: a fencing token.
    fence: (spec.leaseTransitions ?? 0) + 1,
  };
}

/** The Lease with our holding in it, based on `current` (its transitions counted on). */
function leaseFor(ref: LeaseRef, current: Lease | undefined, actor: Actor, token: string, leaseMs: number, now: number): Lease {
  const notes = { ...current?.metadata.annotations };
  notes[ANNOTATIONS.owner] = actor.owner;
  notes[ANNOTATIONS.pid] = String(actor.pid);
  notes[ANNOTATIONS.host] = actor.host;
  notes[ANNOTATIONS.token] = token;
  const started = actor.pid === process.pid ? processStart(process.pid) : undefined;
  if (started) notes[ANNOTATIONS.started] = started;
  else delete notes[ANNOTATIONS.started];
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: current
      ? { ...current.metadata, annotations: notes }
      : { name: ref.name, labels: managedLabels(ref.store), annotations: notes },
    spec: {
      holderIdentity: `${actor.owner}/${actor.pid}/${token}`,
      leaseDurationSeconds: Math.ceil(leaseMs / 1000),
      acquireTime: microTime(now),
      renewTime: microTime(now),
      // A Lease made by the audit log's head (head.ts) before anyone held it has counted none.
      leaseTransitions: current?.spec?.leaseTransitions !== undefined ? current.spec.leaseTransitions + 1 : 0,
    },
  };
}

/**
 * Take the Lease for `actor` for `leaseMs`, or throw LockedError naming the holder. An expired or
 * released Lease is taken over; a lost race (409) is answered by reading who won.
 */
export async function acquireLease(ref: LeaseRef, actor: Actor, leaseMs: number, clock: () => number): Promise<Lock> {
  const path = leasePath(ref, ref.name);
  // A few rounds only to absorb a holder releasing, or an audit head written, between our read
  // and our write.
  for (let round = 0; round < LEASE_WRITE_ATTEMPTS; round++) {
    const current = await kubeCall(`reading ${leaseName(ref)}`, () => ref.kube.get<Lease>(path));
    const now = clock();
    const holder = holderOf(current);
    // A holder whose process is gone from this host cannot renew: its lease need not be waited out.
    if (holder && Date.parse(holder.leaseExpiresAt) > now && !holderGone(holder)) {
      throw new LockedError(`locked by ${describeHolder(holder)} (${leaseName(ref)})`, LOCKED_HINT);
    }
    const token = randomBytes(16).toString('hex');
    const wanted = leaseFor(ref, current, actor, token, leaseMs, now);
    try {
      const written = current
        ? await kubeCall(`taking over ${leaseName(ref)}`, () => ref.kube.replace<Lease>(path, wanted))
        : await kubeCall(`creating ${leaseName(ref)}`, () => ref.kube.create<Lease>(leasePath(ref), wanted));
      return new LeaseLock(ref, written, leaseMs, clock);
    } catch (e) {
      if (!isConflict(e)) throw e;
    }
  }
  throw new LockedError(`could not take the lock (${leaseName(ref)}): other drivers kept taking and releasing it`, LOCKED_HINT);
}

/** The holding recorded in the Lease, expired or not; undefined when nobody holds it. */
export async function readLeaseHolder(ref: LeaseRef): Promise<LockInfo | undefined> {
  return holderOf(await kubeCall(`reading ${leaseName(ref)}`, () => ref.kube.get<Lease>(leasePath(ref, ref.name))));
}

/** A holding of the Lease; renew and release act only while holderIdentity is still ours. */
class LeaseLock implements Lock {
  private holding: LockInfo;
  private readonly identity: string;
  private readonly path: string;

  constructor(
    private readonly ref: LeaseRef,
    written: Lease,
    private readonly leaseMs: number,
    private readonly clock: () => number,
  ) {
    this.holding = holderOf(written)!;
    this.identity = written.spec!.holderIdentity!;
    this.path = leasePath(ref, ref.name);
  }

  /** The holding as last written by us: renew moves its lease forward. */
  get info(): LockInfo {
    return this.holding;
  }

  /** Extend the lease, or throw LockedError ("lock lost: …") once another driver holds it. */
  async renew(): Promise<void> {
    // A 409 may be only our own earlier renewal's echo, an audit head written beside the holding,
    // or a read by kubectl edit: look again while the holding is still ours.
    for (let attempt = 0; attempt < LEASE_WRITE_ATTEMPTS; attempt++) {
      const current = await this.read();
      if (current?.spec?.holderIdentity !== this.identity) throw new LockedError(`lock lost: ${this.describeLoss(current)}`, LOST_HINT);
      const renewed: Lease = {
        ...current,
        spec: { ...current.spec, renewTime: microTime(this.clock()), leaseDurationSeconds: Math.ceil(this.leaseMs / 1000) },
      };
      try {
        const written = await kubeCall(`renewing ${leaseName(this.ref)}`, () => this.ref.kube.replace<Lease>(this.path, renewed));
        this.holding = holderOf(written)!;
        return;
      } catch (e) {
        if (!isConflict(e)) throw e;
        await backoff(attempt);
      }
    }
    throw new LockedError(`lock lost: ${leaseName(this.ref)} kept changing while this driver renewed it`, LOST_HINT);
  }

  /** Clear holderIdentity if it is still ours; otherwise leave the new holder alone. */
  async release(): Promise<void> {
    for (let attempt = 0; attempt < LEASE_WRITE_ATTEMPTS; attempt++) {
      const current = await this.read();
      if (current?.spec?.holderIdentity !== this.identity) return;
      const notes = { ...current.metadata.annotations };
      for (const key of Object.values(ANNOTATIONS)) delete notes[key];
      // The Lease stays, released, so leaseTransitions keeps counting across holders.
      const released: Lease = {
        ...current,
        metadata: { ...current.metadata, annotations: notes },
        spec: { leaseDurationSeconds: current.spec.leaseDurationSeconds, leaseTransitions: current.spec.leaseTransitions ?? 0 },
      };
      try {
        await kubeCall(`releasing ${leaseName(this.ref)}`, () => this.ref.kube.replace<Lease>(this.path, released));
        return;
      } catch (e) {
        if (!isConflict(e)) throw e;
        await backoff(attempt);
      }
    }
  }

  private read(): Promise<Lease | undefined> {
    return kubeCall(`reading ${leaseName(this.ref)}`, () => this.ref.kube.get<Lease>(this.path));
  }

  private describeLoss(current: Lease | undefined): string {
    if (!current) return `${leaseName(this.ref)} was deleted`;
    const holder = holderOf(current);
    return holder ? `taken over by ${describeHolder(holder)}` : `${leaseName(this.ref)} was released by someone else`;
  }
}
