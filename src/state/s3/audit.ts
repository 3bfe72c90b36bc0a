/**
 * The audit log of the s3 backend: one object per record, `<prefix>audit/000000000042.json`,
 * named by its zero-padded seq so a listing is the log in order. Records are chained by hash as
 * in every backend (chain.ts).
 *
 * A record is created with If-None-Match: *, so two appenders can never both write one seq: the
 * loser's put is refused, it reads the new tail and chains onto it once more. Nothing is ever
 * overwritten or dropped, and a put is atomic in S3, so there is no torn record: a killed writer
 * leaves its record whole or not at all. The log has no size bound, hence no archive.
 *
 * After each record its seq and hash are kept as the chain head (../head.ts) in an object of its
 * own, `<prefix>audit-head.json`, moved only forward (If-Match on its ETag). In a bucket with
 * versioning every head written stays as a version: a record later changed, with every hash
 * after it recomputed, no longer has the hash its head kept, and `deploy history` names it —
 * whoever wrote the change, unless they may also delete object versions. Without versioning only
 * the latest head is kept, and the prefix's writers may overwrite it: `deploy history` says so.
 */
import { OperationError } from '../../errors.js';
import { chainRecord, GENESIS, isRecordShape, verifyChain, type AuditEntry, type ChainAnchor } from '../chain.js';
import { checkHeads, headAgrees, parseHead, readConsistently, withHead, type ChainHead, type KeptHeads } from '../head.js';
import type { AuditLog, AuditRecord, AuditVerification } from '../store.js';
import { backoff, S3AccessDenied, WriteConflict, type ObjectVersion, type StateObjects, type Versioning } from './objects.js';

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
  /** The key of the chain head. */
  private readonly headKey: string;

  /**
   * @param folder the key prefix of the records, ending in `audit/`
   * @param opts.headKey the key of the chain head (default: `audit-head.json` beside the folder)
   */
  constructor(
    private readonly objects: StateObjects,
    private readonly folder: string,
    opts: { clock?: () => number; headKey?: string } = {},
  ) {
    this.clock = opts.clock ?? Date.now;
    this.headKey = opts.headKey ?? `${folder.replace(/audit\/$/, '')}audit-head.json`;
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
      } catch (e) {
        if (!(e instanceof WriteConflict)) throw e;
        // Another appender took this seq: chain onto its record instead.
        this.tail = undefined;
        await backoff(attempt);
        continue;
      }
      this.tail = { seq: record.seq, hash: record.hash };
      await this.keepHead(record);
      return record;
    }
    throw new OperationError(`could not append to the audit log in s3://${this.objects.bucket}/${this.folder}: other appenders kept taking the next record`, 'retry the command');
  }

  /**
   * Move the head to `record`, if the chain it was appended to passes through the head kept now.
   * A head at or past it was moved by a later appender and stays; one the chain does not pass
   * through stays too, so the disagreement remains for `deploy history` to name.
   */
  private async keepHead(record: AuditRecord): Promise<void> {
    for (let attempt = 0; attempt < APPEND_ATTEMPTS; attempt++) {
      const object = await this.objects.get(this.headKey);
      const parsed = object ? parseHead(object.body) : undefined;
      const head = parsed && 'head' in parsed ? parsed.head : undefined;
      if (head && head.seq >= record.seq) return;
      if (head && !(await headAgrees(head, record, (seq) => this.recordAt(seq)))) return;
      try {
        await this.objects.put(this.headKey, `${JSON.stringify({ seq: record.seq, hash: record.hash })}\n`, object ? { ifMatch: object.etag } : { ifNoneMatch: true });
        return;
      } catch (e) {
        if (!(e instanceof WriteConflict)) throw e;
        await backoff(attempt);
      }
    }
    throw new OperationError(`could not keep the audit log's head in ${this.headUrl}: other appenders kept moving it`, 'the record was written; `deploy history` shows it as not covered by the head until the next append keeps one');
  }

  /** The seq and hash of record `seq` as stored now. */
  private async recordAt(seq: number): Promise<ChainAnchor | undefined> {
    const object = await this.objects.get(this.keyOf(seq));
    let record: unknown;
    try {
      record = object ? JSON.parse(object.body) : undefined;
    } catch {
      return undefined;
    }
    return isRecordShape(record) && record.seq === seq ? { seq, hash: record.hash } : undefined;
  }

  private get headUrl(): string {
    return `s3://${this.objects.bucket}/${this.headKey}`;
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

  /**
   * Recompute the chain and compare it with every head kept (each version of the head object);
   * names the first record that fails either.
   */
  async verify(): Promise<AuditVerification> {
    const { log, kept } = await readConsistently(() => this.readAll(), () => this.keptHeads());
    const { records, bad } = log;
    const verified = verifyChain(records as AuditRecord[]);
    const chain: AuditVerification = verified.ok && bad ? { ok: false, records: records.length, brokenAt: bad.at, reason: `record ${bad.at}: ${bad.reason}` } : verified;
    return withHead(chain, checkHeads(records as AuditRecord[], GENESIS, kept));
  }

  /**
   * The heads kept: every version of the head object when the bucket keeps versions, else the
   * current one. Permissions missing for the versions are a note: the latest is compared still.
   */
  private async keptHeads(): Promise<KeptHeads> {
    const bucket = this.objects.bucket;
    const notes: string[] = [];
    let versioning: Versioning;
    let versions: ObjectVersion[] | undefined;
    try {
      versioning = await this.objects.versioning();
      if (versioning) versions = await this.objects.versions(this.headKey);
    } catch (error) {
      if (!(error instanceof S3AccessDenied)) throw error;
      notes.push(`the head's versions could not be read (${error.message}): only the latest head was compared`);
    }
    const heads: ChainHead[] = [];
    const take = (body: string | undefined, from: string) => {
      if (body === undefined) return;
      const parsed = parseHead(body);
      if ('bad' in parsed) notes.push(`${from} of ${this.headUrl} ${parsed.bad}`);
      else heads.push({ seq: parsed.head.seq, hash: parsed.head.hash, from });
    };
    if (versions) {
      const stored = versions.filter((v) => !v.deleteMarker);
      const bodies = await inParallel(stored, async (v) => (await this.objects.get(this.headKey, v.versionId))?.body);
      stored.forEach((v, i) => take(bodies[i], `version ${v.versionId}${v.lastModified ? ` of ${v.lastModified.toISOString()}` : ''}`));
      const current = versions.find((v) => v.latest);
      if (current?.deleteMarker) notes.push(`${this.headUrl} was deleted${current.lastModified ? ` at ${current.lastModified.toISOString()}` : ''}; its ${stored.length} earlier versions were compared`);
      if (versioning === 'Suspended') notes.push(`versioning is suspended on bucket ${bucket}: heads written since replace each other, so whoever may write the log may also replace the latest one`);
    } else {
      take((await this.objects.get(this.headKey))?.body, 'the current version');
      if (notes.length === 0) notes.push(`versioning is off on bucket ${bucket}: only the latest head is kept, and whoever may write the log may overwrite it too, so it proves no more than the chain to them; turn versioning on to keep every head`);
    }
    const proves = versions
      ? `every head kept as a version of ${this.headUrl} is on the chain: no record up to the latest head was changed, removed or reordered since its head was kept — not even with the credentials that write the log, unless they may also delete object versions (s3:DeleteObjectVersion, which \`deploy iam-policy\` does not grant) or change the bucket's versioning or lifecycle rules`
      : `the log up to the latest head is the one its last appender saw: nobody who may write the records but not ${this.headUrl} changed or removed a record before it`;
    return { where: this.headUrl, heads, proves, notes };
  }

  /** Every record object parsed, up to the first that is not JSON. */
  private async readAll(): Promise<{ records: unknown[]; bad?: { at: number; reason: string } }> {
    const keys = (await this.objects.list(this.folder)).filter((key) => this.seqOf(key) !== undefined);
    const bodies = await inParallel(keys, async (key) => (await this.objects.get(key))?.body);
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

/** `read` of every item, READ_CONCURRENCY at a time, in the items' order. */
async function inParallel<T, R>(items: readonly T[], read: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) results[i] = await read(items[i]!);
  };
  await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, items.length) }, worker));
  return results;
}
