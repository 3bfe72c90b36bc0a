/**
 * The audit log of the Kubernetes backend: the same hash-chained records as `audit.jsonl`, kept
 * in ConfigMaps, since one object holds at most 1 MiB.
 *
 *   <name>-audit-0001, -0002, …   segments: `audit.jsonl` holds the records, one per line; a
 *                                 full segment is sealed (annotation) and the chain continues
 *                                 in the next one, created with the first record that no
 *                                 longer fits
 *   <name>-audit-index            which segment is first (it moves on after an archive), and a
 *                                 hint of the last, so an append does not walk every segment
 *
 * Every write is compare-and-swap on the segment's resourceVersion: two processes appending at
 * once cannot both chain onto the same record; the loser re-reads and chains onto the winner's.
 * A record is durable once the API server has answered its PUT or POST. Then its seq and hash
 * are kept as the chain head on the lock Lease (head.ts), an object apart from the ConfigMaps,
 * so that a rewrite of the segments with every hash recomputed no longer matches it.
 *
 * The log is bounded (`auditMaxBytes`, 8 MiB by default). THE RULE AT THE BOUND: a
 * `rollout.started` record that would take the log past the bound is refused (UsageError), and
 * since the engine records it before touching anything, no new rollout starts; every other
 * record — the steps, gate verdicts and rollbacks of a rollout already running — is written past
 * the bound if it must, so no record is ever dropped. `deploy history --archive FILE` moves the
 * records to a file and frees the log.
 */
import type { KubeClient } from '../../kube/client.js';
import { OperationError, UsageError } from '../../errors.js';
import { currentActor } from '../actor.js';
import { chainRecord, GENESIS, verifyChain, type AuditEntry, type ChainAnchor } from '../chain.js';
import { checkHeads, headAgrees, readConsistently, withHead } from '../head.js';
import { LeaseHeadStore } from './head.js';
import { backoff, byteLength, formatBytes, isConflict, isNotFound, MAX_OBJECT_BYTES } from './objects.js';
import { SegmentStore, type Segment, type SegmentIndex } from './segments.js';
import type { ArchiveResult, AuditLog, AuditRecord, AuditVerification } from '../store.js';

/** Default bound of the log kept in the cluster. */
export const DEFAULT_AUDIT_MAX_BYTES = 8 * 1024 * 1024;

/** Default record text per segment: a quarter of the object limit, so an append PUTs little. */
export const DEFAULT_SEGMENT_BYTES = 256 * 1024;

/** Rounds of losing compare-and-swap to other appenders before giving up. */
const APPEND_ATTEMPTS = 40;

/** Options of the log. */
export interface KubeAuditLogOptions {
  /** The store's name: segments are `<name>-audit-NNNN`. */
  name: string;
  /** Stamps `at` of records appended without one. */
  clock: () => number;
  /** The bound (default DEFAULT_AUDIT_MAX_BYTES); see the rule at the bound above. */
  maxBytes?: number;
  /** Record text per segment before the next one starts (default DEFAULT_SEGMENT_BYTES). */
  segmentBytes?: number;
}

/** Where the next record goes: the open last segment, or a new one after a sealed one. */
interface Tail {
  index: SegmentIndex;
  /** The open segment to append to; absent when segment `number` is to be created. */
  open?: Segment;
  number: number;
  /** Bytes of record text before the end of the log, since the very first record. */
  end: number;
  last: ChainAnchor;
}

/** The hash-chained audit log in ConfigMaps, bounded, archivable. */
export class KubeAuditLog implements AuditLog {
  private readonly segments: SegmentStore;
  /** The chain head, kept on the lock Lease after every append. */
  private readonly head: LeaseHeadStore;
  private readonly clock: () => number;
  private readonly maxBytes: number;
  private readonly segmentBytes: number;
  /** Appends (and archives) of this process, one at a time: each must chain onto the one before. */
  private queue: Promise<unknown> = Promise.resolve();
  /** The last segment this process saw, where the next append starts looking. */
  private lastSeen = 0;

  /** @param connect the cluster connection, opened on first use */
  constructor(connect: () => Promise<KubeClient>, private readonly opts: KubeAuditLogOptions) {
    this.segments = new SegmentStore(connect, opts.name);
    this.head = new LeaseHeadStore(connect, opts.name);
    this.clock = opts.clock;
    this.maxBytes = opts.maxBytes ?? DEFAULT_AUDIT_MAX_BYTES;
    this.segmentBytes = opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
  }

  /** `ConfigMaps <name>-audit-*`, for messages. */
  get location(): string {
    return `ConfigMaps ${this.opts.name}-audit-*`;
  }

  /**
   * Append a record chained to the last; in the cluster when the promise resolves. At the bound
   * a `rollout.started` record is refused with UsageError; any other record is written anyway.
   */
  append(entry: AuditEntry): Promise<AuditRecord> {
    return this.serially(() => this.appendNow(entry));
  }

  private serially<T>(run: () => Promise<T>): Promise<T> {
    const result = this.queue.then(run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async appendNow(entry: AuditEntry): Promise<AuditRecord> {
    let indexFresh = false;
    for (let attempt = 0; attempt < APPEND_ATTEMPTS; attempt++) {
      const tail = await this.findTail(!indexFresh);
      const record = chainRecord(entry, tail.last, this.clock());
      const line = `${JSON.stringify(record)}\n`;
      const size = byteLength(line);
      if (size > MAX_OBJECT_BYTES) {
        throw new OperationError(`audit record ${record.action} is ${formatBytes(size)}, more than one ConfigMap holds; it was not written`, 'this is a bug: report it with the command that was run');
      }
      const used = tail.end - tail.index.firstOffset;
      if (entry.action === 'rollout.started' && used + size > this.maxBytes) {
        // Another process may have archived since the index was read: judge by a fresh one.
        if (!indexFresh) {
          indexFresh = true;
          this.segments.forgetIndex();
          continue;
        }
        throw new UsageError(
          `audit log in ${this.location} is full (${formatBytes(used)} of ${formatBytes(this.maxBytes)}): nothing was started`,
          'archive it: deploy history --archive FILE',
        );
      }
      let written = false;
      try {
        if (tail.open) {
          const text = tail.open.text;
          if (text !== '' && byteLength(text) + size > this.segmentBytes) {
            // Sealed first, so nobody appends a smaller record here after the chain moved on.
            await this.segments.seal(tail.open);
            continue;
          }
          await this.segments.write(tail.open, text + line);
          this.lastSeen = tail.number;
        } else {
          const created = await this.segments.create(tail.number, { offset: tail.end }, line);
          // An archive may have removed this number between our read and our create: the new
          // segment would sit below the first one, unread. Then it goes, and the record is retried.
          const index = await this.segments.index({ fresh: true });
          if (tail.number < index.first) {
            await this.segments.remove(created);
            continue;
          }
          this.lastSeen = tail.number;
          await this.segments.hintLast(tail.number);
        }
        written = true;
      } catch (e) {
        if (!isConflict(e) && !isNotFound(e)) throw e;
        if (isNotFound(e)) this.segments.forgetIndex();
        await backoff(attempt);
      }
      if (written) {
        // Outside the retries above: whatever keeping the head meets, the record is never written twice.
        await this.keepHead(record);
        return record;
      }
    }
    throw new OperationError(`could not append to the audit log in ${this.location}: other processes kept appending`, 'retry the command');
  }

  /** Find the end of the log: the open last segment, or the number of the next one. */
  private async findTail(useCache: boolean): Promise<Tail> {
    let index = await this.segments.index({ create: true, fresh: !useCache });
    let segment = await this.segments.get(Math.max(this.lastSeen, index.lastHint, index.first));
    if (!segment) {
      // An archive removed what we knew as last, or the log is new: look again from a fresh index.
      index = await this.segments.index({ create: true, fresh: true });
      const start = Math.max(index.lastHint, index.first);
      segment = await this.segments.get(start);
      if (!segment && start !== index.first) segment = await this.segments.get(index.first);
    }
    if (!segment) {
      if (index.first !== 1) throw this.missingFirst(index.first);
      return { index, number: 1, end: index.firstOffset, last: GENESIS };
    }
    while (segment.sealed) {
      const next = await this.segments.get(segment.number + 1);
      if (!next) return { index, number: segment.number + 1, end: segment.offset + byteLength(segment.text), last: await this.endOf(segment, index) };
      segment = next;
    }
    return { index, open: segment, number: segment.number, end: segment.offset + byteLength(segment.text), last: await this.endOf(segment, index) };
  }

  /** The chain point a segment ends at: its last record, else its anchor, else the one before's. */
  private async endOf(segment: Segment, index: SegmentIndex): Promise<ChainAnchor> {
    for (let current: Segment | undefined = segment; current; ) {
      const last = current.lastRecord();
      if (last) return { seq: last.seq, hash: last.hash };
      if (current.anchor) return current.anchor;
      if (current.number <= index.first) {
        if (current.number === 1) return GENESIS;
        throw this.missingFirst(current.number, 'carries no archive anchor');
      }
      current = await this.segments.get(current.number - 1);
    }
    throw this.missingFirst(index.first);
  }

  private missingFirst(number: number, why = 'is missing'): OperationError {
    return new OperationError(
      `audit log in ${this.location}: ${this.segments.nameOf(number)}, its first segment, ${why}; nothing was appended`,
      '`deploy history` shows what remains; restore the ConfigMap from a backup',
    );
  }

  /**
   * Move the head on the Lease to `record`, if the chain it was appended to passes through the
   * head kept now. A head already at or past it was moved by a later appender and stays; one the
   * chain does not pass through stays too, so the disagreement remains for `deploy history`.
   */
  private async keepHead(record: AuditRecord): Promise<void> {
    await this.head.update(async ({ head }) => {
      if (head && head.seq >= record.seq) return undefined;
      if (head && !(await headAgrees(head, record, (seq) => this.recordAt(seq)))) return undefined;
      // The first head takes where the log starts as it finds it (genesis, or the archive anchor);
      // only an archive moves that on, so records removed from the start are found.
      const archived = head ? head.archived : await this.startAnchor();
      return { seq: record.seq, hash: record.hash, ...(archived ? { archived } : {}) };
    });
  }

  /** The seq and hash of record `seq` as the cluster holds it now (the anchor for the last archived). */
  private async recordAt(seq: number): Promise<ChainAnchor | undefined> {
    const found = await this.collect();
    if (seq === found.anchor.seq) return found.anchor;
    const record = found.records.find((r) => r.seq === seq);
    return record ? { seq: record.seq, hash: record.hash } : undefined;
  }

  /** Where the log starts: genesis, or the anchor of its last archive. */
  private async startAnchor(): Promise<ChainAnchor | undefined> {
    const index = await this.segments.index({ fresh: true });
    if (index.first === 1) return GENESIS;
    return (await this.segments.get(index.first))?.anchor;
  }

  /** The records still in the cluster, oldest first. */
  async read(): Promise<AuditRecord[]> {
    const found = await this.collect();
    if (found.bad) throw new OperationError(`audit log in ${this.location}: ${found.bad.reason}`, 'the records before it are intact; restore the ConfigMap from a backup to recover the rest');
    return found.records;
  }

  /**
   * Recompute the chain from the archive anchor (or genesis), and compare it with the head kept on
   * the Lease; names the first record that fails either.
   */
  async verify(): Promise<AuditVerification> {
    const { log: found, kept } = await readConsistently(() => this.collect(), () => this.head.kept());
    const verified = verifyChain(found.records, found.anchor);
    const chain: AuditVerification = verified.ok && found.bad
      ? { ok: false, records: found.records.length, brokenAt: found.bad.seq, reason: `record ${found.bad.seq}: ${found.bad.reason}` }
      : verified;
    return withHead(chain, checkHeads(found.records, found.anchor, kept));
  }

  /** Every record from the first segment on, up to the first thing that cannot be read. */
  private async collect(until?: number): Promise<{ records: AuditRecord[]; anchor: ChainAnchor; bad?: { seq: number; reason: string } }> {
    const index = await this.segments.index({ fresh: true });
    const records: AuditRecord[] = [];
    let anchor = GENESIS;
    const bad = (reason: string) => ({ records, anchor, bad: { seq: anchor.seq + records.length + 1, reason } });
    for (let number = index.first; until === undefined || number <= until; number++) {
      const segment = await this.segments.get(number);
      if (!segment) {
        if (number === index.first && number !== 1) return bad(`${this.segments.nameOf(number)}, the first segment, is missing`);
        if (number < index.lastHint) return bad(`${this.segments.nameOf(number)} is missing, though later segments exist`);
        break;
      }
      if (number === index.first) {
        if (segment.anchorError) return bad(`${segment.name} ${segment.anchorError}`);
        if (segment.anchor) anchor = segment.anchor;
        else if (number !== 1) return bad(`${segment.name}, the first segment, carries no archive anchor`);
      }
      const parsed = segment.records();
      records.push(...parsed.records);
      if (parsed.bad) return bad(`${segment.name}: ${parsed.bad}`);
    }
    return { records, anchor };
  }

  /**
   * Hand every record to `to`, then remove them from the cluster. The last segment is sealed first,
   * so records appended meanwhile go to a new segment and stay; that segment carries the anchor
   * (seq and hash of the last archived record) the remaining chain verifies from. Nothing is
   * removed before `to` resolves, nor when the chain does not verify: the archive would hide it.
   */
  archive(to: (records: AuditRecord[]) => Promise<void>): Promise<ArchiveResult> {
    return this.serially(async () => {
      const through = await this.sealLast();
      const found = await this.collect(through);
      const chain = verifyChain(found.records, found.anchor);
      // The whole log against the head: removing rewritten records would remove the evidence.
      const { log: whole, kept } = await readConsistently(() => this.collect(), () => this.head.kept());
      const head = checkHeads(whole.records, whole.anchor, kept);
      const problem = !chain.ok ? chain.reason : found.bad ? `record ${found.bad.seq}: ${found.bad.reason}` : !head.ok ? head.reason : undefined;
      if (problem) {
        throw new OperationError(`refusing to archive the audit log in ${this.location}: its chain does not verify (${problem}); nothing was removed`, '`deploy history` shows the records; keep them as evidence and repair or remove the ConfigMaps by hand');
      }
      if (found.records.length === 0) return { records: 0, lastSeq: found.anchor.seq, lastHash: found.anchor.hash };
      const last = found.records.at(-1)!;
      await to(found.records);
      const sealed = (await this.segments.get(through))!;
      const anchor = { seq: last.seq, hash: last.hash };
      // Kept before anything is removed: a log that starts later than the head's archive was cut.
      // A head behind the anchor moves up to it, since the record it names leaves the cluster
      // (the chain up to the anchor was verified against the head just above).
      await this.head.update(async ({ head }) => {
        if (head?.archived && head.archived.seq >= anchor.seq) return undefined;
        return head && head.seq >= anchor.seq ? { seq: head.seq, hash: head.hash, archived: anchor } : { ...anchor, archived: anchor };
      });
      const firstBefore = await this.segments.moveFirst(through + 1, anchor, sealed.offset + byteLength(sealed.text));
      for (let number = firstBefore; number <= through; number++) await this.segments.removeNumber(number);
      this.lastSeen = Math.max(this.lastSeen, through + 1);
      const result = { records: found.records.length, lastSeq: last.seq, lastHash: last.hash };
      await this.appendNow({ actor: currentActor().owner, action: 'audit.archived', detail: { ...result } });
      return result;
    });
  }

  /** Seal the last segment (the tail, if open) and return its number: everything to archive. */
  private async sealLast(): Promise<number> {
    for (let attempt = 0; attempt < APPEND_ATTEMPTS; attempt++) {
      const tail = await this.findTail(false);
      if (!tail.open) return tail.number - 1;
      try {
        await this.segments.seal(tail.open);
        return tail.number;
      } catch (e) {
        if (!isConflict(e) && !isNotFound(e)) throw e;
        await backoff(attempt);
      }
    }
    throw new OperationError(`could not archive the audit log in ${this.location}: other processes kept appending`, 'retry the command');
  }
}
