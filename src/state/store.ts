/**
 * The state backend interface: where a rollout's state, its driver lock, its operator requests
 * and its audit log live. The embedded default is local files (`local.ts`); a Kubernetes backend
 * implements the same interface.
 */

/** The driver lock's lease when deploy.yaml gives none. */
export const DEFAULT_LEASE_MS = 30_000;

/** Who drives (or asks): recorded in the lock and in every audit record. */
export interface Actor {
  /** `user@host`. */
  owner: string;
  pid: number;
  host: string;
}

/** What the lock file holds. */
export interface LockInfo extends Actor {
  /** Random id of this holding; renew and release check it so a taken-over lock is never touched. */
  token: string;
  acquiredAt: string;
  renewedAt: string;
  leaseExpiresAt: string;
  /** When the holder's process started (`processStart`), so a reused pid is not taken for it. */
  started?: string;
  /**
   * Fencing token: greater for every acquisition than for any before it on this backend. Routers
   * that can carry it refuse a write made under an older one, so a driver that lost its lock
   * while a write was in flight can never undo what the newer holder did.
   */
  fence?: number;
}

/** A held lock. */
export interface Lock {
  readonly info: LockInfo;
  /** Extend the lease; throws LockedError when the lock was lost (taken over after expiry). */
  renew(): Promise<void>;
  /** Give the lock up; a no-op when it is no longer ours. */
  release(): Promise<void>;
}

/** An operator request to the running driver (`deploy pause` while `deploy promote` drives). */
export interface OperatorRequest {
  id: string;
  kind: 'pause' | 'resume' | 'abort' | 'promote';
  /** Free text, recorded in the audit log. */
  reason?: string;
  /** For `promote`: skip all remaining steps, not just the current hold. */
  full?: boolean;
  by: Actor;
  at: string;
}

/** One audit record, chained to the one before by hash. */
export interface AuditRecord {
  seq: number;
  at: string;
  actor: string;
  action: string;
  rolloutId?: string;
  detail?: Record<string, unknown>;
  /** Hash of the previous record (64 zeros for the first). */
  prev: string;
  /** sha256 over the canonical JSON of this record without `hash` and `sig`. */
  hash: string;
  /** With a signing key configured: an Ed25519 signature over `hash`, and which key made it. */
  sig?: { key: string; value: string };
}

/**
 * What comparing the log with the chain heads kept outside it showed (the Kubernetes and S3
 * backends keep one after every append; see head.ts).
 */
export interface HeadReport {
  /** Where the heads are kept, for messages. */
  where: string;
  /** Whether every kept head is a record of the log, with the hash the head kept for it. */
  ok: boolean;
  /** How many kept heads were compared with the log's records. */
  compared: number;
  /** Seq of the latest kept head; 0 when none is kept yet. */
  seq: number;
  /** Records after the latest head: appended, their head not kept yet. */
  uncovered: number;
  /** What the match proves, and to whom; absent when no head was compared. */
  proves?: string;
  /** What it does not prove here (versioning off, no head kept yet, …). */
  notes: string[];
  /** When not ok: the first record that disagrees, and why (as in AuditVerification). */
  brokenAt?: number;
  reason?: string;
}

/** Result of verifying the audit chain, and of comparing it with the kept head where there is one. */
export type AuditVerification =
  | { ok: true; records: number; head?: HeadReport }
  | { ok: false; records: number; brokenAt: number; reason: string; head?: HeadReport };

/** The audit log of one service. */
export interface AuditLog {
  /** Append a record chained to the last; durable (fsync) before it resolves. */
  append(entry: Omit<AuditRecord, 'seq' | 'prev' | 'hash' | 'at' | 'sig'> & { at?: string; sign?: (hash: string) => { key: string; value: string } }): Promise<AuditRecord>;
  /** All records, oldest first. */
  read(): Promise<AuditRecord[]>;
  /** Recompute the chain; names the first record that does not verify. */
  verify(): Promise<AuditVerification>;
  /**
   * For a log kept under a size bound: hand every record to `to` (which must make them durable
   * before it resolves), then remove them, keeping the last one's seq and hash as the anchor
   * the remaining chain verifies from. Absent when the log has no bound (local files).
   */
  archive?(to: (records: AuditRecord[]) => Promise<void>): Promise<ArchiveResult>;
}

/** What an archive moved out of the log. */
export interface ArchiveResult {
  records: number;
  /** Seq and hash of the last archived record: the anchor of what remains. */
  lastSeq: number;
  lastHash: string;
}

/**
 * The rollout's documents: its state, compare-and-swap against what this store last read or
 * wrote (a save over another driver's write is refused with LockedError, nothing written), and
 * other documents kept beside it (the org registry).
 */
export interface StateDocuments<S> {
  /** Human description (a path, a ConfigMap name, a bucket and prefix) for messages. */
  readonly location: string;
  /** The stored state, or undefined when there is none; a corrupt store throws UsageError (never overwritten). */
  load(): Promise<S | undefined>;
  /** Replace the stored state atomically (readers see the old or the new, never a mix), if unchanged since this store's last load or save. */
  save(state: S): Promise<void>;
  /** Another document kept with the state (the org registry), read and refused like the state. */
  loadDoc<T>(name: string, validate: (value: unknown) => T): Promise<T | undefined>;
  /** Replace a document atomically. */
  saveDoc<T>(name: string, value: T): Promise<void>;
}

/** The driver lock: one holder at a time, under a lease, with a fencing token per acquisition. */
export interface DriverLock {
  /** Take the driver lock or throw LockedError naming the holder and since when. */
  acquireLock(actor: Actor, leaseMs: number): Promise<Lock>;
  /** Who holds the lock now, if anyone (expired leases included, marked by their time). */
  lockHolder(): Promise<LockInfo | undefined>;
}

/** Operator requests to the running driver (`deploy pause` while `deploy promote` drives). */
export interface RequestQueue {
  /** Leave a request for the running driver. */
  postRequest(request: OperatorRequest): Promise<void>;
  /** Whether any request is waiting (cheap: drivers poll it while they hold). */
  hasRequests(): Promise<boolean>;
  /** Take (read and remove) pending requests, oldest first; each is taken by one caller only. */
  takeRequests(): Promise<OperatorRequest[]>;
}

/**
 * A state backend: the four parts a backend implements. `S` is the stored rollout state, opaque
 * to the backend. The audit log's hash chain is the same for every backend (chain.ts).
 */
export interface StateStore<S> extends StateDocuments<S>, DriverLock, RequestQueue {
  readonly audit: AuditLog;
}
