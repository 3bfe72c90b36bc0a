/**
 * The audit log of the local backend: `audit.jsonl`, one record per line, each chained to the one
 * before (chain.ts), so an edited, deleted or reordered record is found by `verify`.
 *
 * A record is appended with one write of the whole line and flushed before `append` resolves. A
 * crash mid-write can still leave a torn last line; that is reported as such, and nothing is ever
 * chained onto it, because a record chained onto garbage could never verify again.
 */
import { open, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { OperationError, UsageError } from '../../errors.js';
import { ensureDir, errorCode, fsyncDir } from '../atomic.js';
import { chainRecord, GENESIS_HASH, isRecordShape, verifyChain, type AuditEntry } from '../chain.js';
import { acquireDirMutex, MUTEX_STALE_MS } from './lock.js';
import type { AuditLog, AuditRecord, AuditVerification } from '../store.js';

/** The last record as cached: valid while the file still has `size` bytes. */
interface Tail {
  size: number;
  seq: number;
  hash: string;
}

/** The audit log in a JSON-lines file, safe to append to from several processes. */
export class JsonlAuditLog implements AuditLog {
  private tail: Tail | undefined;
  /** Appends of this process, one at a time: each must chain onto the one before. */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly clock: () => number;

  /** @param file path of the `.jsonl` file; its directory is created on the first append. */
  constructor(readonly file: string, opts: { clock?: () => number } = {}) {
    this.clock = opts.clock ?? Date.now;
  }

  /** Append a record chained to the last one; it is on disk when the promise resolves. */
  append(entry: AuditEntry): Promise<AuditRecord> {
    const appended = this.queue.then(() => this.appendNow(entry));
    this.queue = appended.catch(() => undefined);
    return appended;
  }

  private async appendNow(entry: AuditEntry): Promise<AuditRecord> {
    await ensureDir(dirname(this.file));
    // Other processes (`deploy pause` beside a running driver) append too: two records chained
    // onto the same tail would fork the chain, so appends across processes take turns.
    const release = await acquireDirMutex(`${this.file}.append`, MUTEX_STALE_MS + 5_000);
    if (!release) throw new OperationError(`could not append to ${this.file}: another process kept it busy`, 'retry the command');
    try {
      const last = await this.readTail();
      const record = chainRecord(entry, last, this.clock());
      const line = Buffer.from(`${JSON.stringify(record)}\n`);
      const handle = await open(this.file, 'a', 0o600);
      let size: number;
      try {
        const { bytesWritten } = await handle.write(line);
        if (bytesWritten !== line.length) throw new OperationError(`short write to ${this.file} (${bytesWritten} of ${line.length} bytes)`, TORN_HINT(this.file));
        await handle.datasync();
        size = (await handle.stat()).size;
      } finally {
        await handle.close();
      }
      if (last.size === 0) await fsyncDir(dirname(this.file)); // the file may be new: make its name durable
      this.tail = { size, seq: record.seq, hash: record.hash };
      return record;
    } finally {
      await release();
    }
  }

  /** The record to chain onto; the cached one unless the file changed size since. */
  private async readTail(): Promise<Tail> {
    let size: number;
    try {
      size = (await stat(this.file)).size;
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return { size: 0, seq: 0, hash: GENESIS_HASH };
      throw error;
    }
    if (this.tail?.size === size) return this.tail;
    if (size === 0) return { size: 0, seq: 0, hash: GENESIS_HASH };
    const { text, complete } = await readLastLine(this.file, size);
    let last: unknown;
    try {
      last = complete ? JSON.parse(text) : undefined;
    } catch {
      last = undefined;
    }
    if (!isRecordShape(last)) {
      const why = complete ? 'is not a valid record' : 'has no trailing newline';
      throw new OperationError(`refusing to append to ${this.file}: its last line ${why}, a torn record left by an interrupted write`, TORN_HINT(this.file));
    }
    return { size, seq: last.seq, hash: last.hash };
  }

  /** All complete records, oldest first; a torn last line is left out (`verify` reports it). */
  async read(): Promise<AuditRecord[]> {
    const { records, bad } = await this.readAll();
    if (bad && !bad.final) throw new OperationError(`${this.file}: ${bad.reason}`, 'the records before that line are intact; restore the log from a backup to recover the rest');
    return records as AuditRecord[];
  }

  /** Recompute the chain; a torn last line is reported as "torn final record (incomplete write)". */
  async verify(): Promise<AuditVerification> {
    const { records, bad } = await this.readAll();
    const chain = verifyChain(records as AuditRecord[]);
    if (!chain.ok || !bad) return chain;
    const reason = bad.final
      ? `torn final record (incomplete write): ${bad.reason}; ${TORN_HINT(this.file)}`
      : `record ${bad.line}: ${bad.reason}`;
    return { ok: false, records: records.length, brokenAt: bad.line, reason };
  }

  /** Parse the file up to its first unparsable line. */
  private async readAll(): Promise<{ records: unknown[]; bad?: { line: number; final: boolean; reason: string } }> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return { records: [] };
      if (errorCode(error) === 'EISDIR') throw new UsageError(`audit log ${this.file} is a directory, not a file; it was left untouched`, `move it aside (mv ${this.file} ${this.file}.broken) if it is not the log`);
      throw error;
    }
    if (text === '') return { records: [] };
    const lines = text.split('\n');
    const terminated = text.endsWith('\n');
    if (terminated) lines.pop();
    const records: unknown[] = [];
    for (const [index, line] of lines.entries()) {
      const final = index === lines.length - 1;
      if (final && !terminated) return { records, bad: { line: index + 1, final, reason: `line ${index + 1} has no trailing newline` } };
      try {
        records.push(JSON.parse(line));
      } catch (error) {
        return { records, bad: { line: index + 1, final, reason: `line ${index + 1} is not valid JSON (${(error as Error).message})` } };
      }
    }
    return { records };
  }
}

/** How to repair a torn tail; the records before it are intact, so only the last line goes. */
const TORN_HINT = (file: string): string =>
  `the records before it are intact: back the log up, then delete its incomplete last line (cp ${file} ${file}.bak && sed -i '$ d' ${file}) and retry`;

/** The last line of a file of `size` bytes, read backwards so a long log is not read whole. */
async function readLastLine(file: string, size: number): Promise<{ text: string; complete: boolean }> {
  const handle = await open(file, 'r');
  try {
    let tail = Buffer.alloc(0);
    let chunk = 64 * 1024;
    for (let end = size; end > 0; chunk *= 2) {
      const start = Math.max(0, end - chunk);
      const buf = Buffer.alloc(end - start);
      const { bytesRead } = await handle.read(buf, 0, buf.length, start);
      tail = Buffer.concat([buf.subarray(0, bytesRead), tail]);
      end = start;
      // The newline that ends the line before; the final byte, if a newline, ends the last line.
      const cut = tail.length >= 2 ? tail.lastIndexOf(0x0a, tail.length - 2) : -1;
      if (cut >= 0) {
        tail = tail.subarray(cut + 1);
        break;
      }
    }
    const complete = tail.at(-1) === 0x0a;
    return { text: tail.toString('utf8', 0, complete ? tail.length - 1 : tail.length), complete };
  } finally {
    await handle.close();
  }
}
