/**
 * The audit log of the s3 backend: one object per record, `<prefix>audit/000000000042.json`,
 * named by its zero-padded seq so a listing is the log in order. Records are chained by hash as
 * in every backend (chain.ts).
 *
 * A record is created with If-None-Match: *, so two appenders can never both write one seq: the
 * loser's put is refused, it reads the new tail and chains onto it once more. Nothing is ever
 * overwritten or dropped, and a put is atomic in S3, so there is no torn record: a killed writer
 * leaves its record whole or not at all. The log has no size bound, hence no archive.
 */
import { OperationError } from '../../errors.js';
import { chainRecord, GENESIS, isRecordShape, verifyChain, type AuditEntry, type ChainAnchor } from '../chain.js';
import type { AuditLog, AuditRecord, AuditVerification } from '../store.js';
import { backoff, WriteConflict, type StateObjects } from './objects.js';

/** Digits of the seq in a record's key: room for 10^12 records, and lexical order is seq order. */
const SEQ_DIGITS = 12;
/** Rounds of losing the race for the next seq before giving up: each round, some appender won. */
const APPEND_ATTEMPTS = 200;
/** Records read at once. */
const READ_CONCURRENCY = 16;

/** The audit log as objects under `<prefix>audit/`. */
export class S3AuditLog implements AuditLog {
  /** The last record as this log last saw it; a listing after its key tells whether it still is. */
  private tail: ChainAnchor | undefined;
  /** Appends of this process, one at a time: each must chain onto the one before. */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly clock: () => number;

  /** @param folder the key prefix of the records, ending in `audit/` */
  constructor(
    private readonly objects: StateObjects,
    private readonly folder: string,
    opts: { clock?: () => number } = {},
  ) {
    this.clock = opts.clock ?? Date.now;
  }

  /** The key of record `seq`. */
  keyOf(seq: number): string {
    return `${this.folder}${String(seq).padStart(SEQ_DIGITS, '0')}.json`;
  }

  /** Append a record chained to the last one; it is stored when the promise resolves. */
  append(entry: AuditEntry): Promise<AuditRecord> {
    const appended = this.queue.then(() => this.appendNow(entry));
    this.queue = appended.catch(() => undefined);
    return appended;
  }

  private async appendNow(entry: AuditEntry): Promise<AuditRecord> {
    for (let attempt = 0; attempt < APPEND_ATTEMPTS; attempt++) {
      const last = await this.readTail();
      const record = chainRecord(entry, last, this.clock());
      try {
        await this.objects.put(this.keyOf(record.seq), `${JSON.stringify(record)}\n`, { ifNoneMatch: true });
        this.tail = { seq: record.seq, hash: record.hash };
        return record;
      } catch (e) {
        if (!(e instanceof WriteConflict)) throw e;
        // Another appender took this seq: chain onto its record instead.
        this.tail = undefined;
        await backoff(attempt);
      }
    }
    throw new OperationError(`could not append to the audit log in s3://${this.objects.bucket}/${this.folder}: other appenders kept taking the next record`, 'retry the command');
  }

  /** The record to chain onto: the cached tail unless a record was added after it. */
  private async readTail(): Promise<ChainAnchor> {
    const after = this.tail ? await this.objects.list(this.folder, this.keyOf(this.tail.seq)) : await this.objects.list(this.folder);
    const keys = after.filter((key) => this.seqOf(key) !== undefined);
    if (keys.length === 0) return this.tail ?? GENESIS;
    const key = keys.at(-1)!;
    const object = await this.objects.get(key);
    // Removed between the listing and the read: only a hand could do that; read it all again.
    if (!object) throw new OperationError(`audit record s3://${this.objects.bucket}/${key} vanished while it was read`, 'retry the command; `deploy history` shows whether the chain still verifies');
    let last: unknown;
    try {
      last = JSON.parse(object.body);
    } catch {
      last = undefined;
    }
    if (!isRecordShape(last) || last.seq !== this.seqOf(key)) {
      throw new OperationError(
        `refusing to append to the audit log: s3://${this.objects.bucket}/${key} is not the audit record its name says, and a record chained onto it could never verify`,
        `\`deploy history\` shows where the chain breaks; restore ${key} from a backup or an earlier object version`,
      );
    }
    this.tail = { seq: last.seq, hash: last.hash };
    return this.tail;
  }

  /** All records, oldest first; an object that is not a record stops the read with OperationError. */
  async read(): Promise<AuditRecord[]> {
    const { records, bad } = await this.readAll();
    if (bad) throw new OperationError(`audit log in s3://${this.objects.bucket}/${this.folder}: ${bad.reason}`, 'the records before it are intact; restore it from a backup or an earlier object version');
    return records as AuditRecord[];
  }

  /** Recompute the chain; names the first record that does not verify. */
  async verify(): Promise<AuditVerification> {
    const { records, bad } = await this.readAll();
    const chain = verifyChain(records as AuditRecord[]);
    if (!chain.ok || !bad) return chain;
    return { ok: false, records: records.length, brokenAt: bad.at, reason: `record ${bad.at}: ${bad.reason}` };
  }

  /** Every record object parsed, up to the first that is not JSON. */
  private async readAll(): Promise<{ records: unknown[]; bad?: { at: number; reason: string } }> {
    const keys = (await this.objects.list(this.folder)).filter((key) => this.seqOf(key) !== undefined);
    const bodies: (string | undefined)[] = new Array(keys.length);
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < keys.length; i = next++) bodies[i] = (await this.objects.get(keys[i]!))?.body;
    };
    await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, keys.length) }, worker));
    const records: unknown[] = [];
    for (const [index, body] of bodies.entries()) {
      const where = `s3://${this.objects.bucket}/${keys[index]}`;
      if (body === undefined) return { records, bad: { at: index + 1, reason: `${where} was removed while the log was read` } };
      try {
        records.push(JSON.parse(body));
      } catch (error) {
        return { records, bad: { at: index + 1, reason: `${where} is not valid JSON (${(error as Error).message})` } };
      }
    }
    return { records };
  }

  /** The seq a record key names, or undefined for any other key under the folder. */
  private seqOf(key: string): number | undefined {
    const name = key.slice(this.folder.length);
    return new RegExp(`^\\d{${SEQ_DIGITS}}\\.json$`).test(name) ? Number(name.slice(0, SEQ_DIGITS)) : undefined;
  }
}
