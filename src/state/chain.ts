/**
 * The audit log's hash chain, shared by every state backend: each record carries the sha256 of
 * the one before over its canonical JSON, so an edited, deleted or reordered record is found by
 * `verifyChain`. Backends store records; this module alone decides what a valid chain is.
 */
import { createHash } from 'node:crypto';
import type { AuditRecord, AuditVerification } from './store.js';

/** The `prev` of the first record. */
export const GENESIS_HASH = '0'.repeat(64);

/**
 * What `append` takes: the record without its chain fields; `at` defaults to the clock; `sign`,
 * when a signing key is configured, signs the record's hash (it is never stored).
 */
export type AuditEntry = Omit<AuditRecord, 'seq' | 'prev' | 'hash' | 'at' | 'sig'> & { at?: string; sign?: (hash: string) => { key: string; value: string } };

/**
 * JSON with object keys sorted at every depth: the same record hashes the same whichever order its
 * keys were built in. The value is first passed through JSON, so the hash covers exactly what is
 * stored (undefined members dropped, dates as strings).
 */
export function canonicalJson(value: unknown): string {
  const canonical = (v: unknown): string => {
    if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
    if (v !== null && typeof v === 'object') {
      const entries = Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return `{${entries.map(([k, item]) => `${JSON.stringify(k)}:${canonical(item)}`).join(',')}}`;
    }
    return JSON.stringify(v);
  };
  return canonical(JSON.parse(JSON.stringify(value) ?? 'null'));
}

/** sha256 (hex) over the canonical JSON of `record` without its `hash` and its signature. */
export function hashRecord(record: Omit<AuditRecord, 'hash'> & { hash?: string }): string {
  const { hash: _ignored, sig: _signature, ...body } = record;
  return createHash('sha256').update(canonicalJson(body)).digest('hex');
}

/** Whether `value` has every field of an audit record (its hash is not checked). */
export function isRecordShape(value: unknown): value is AuditRecord {
  const r = value as Partial<AuditRecord> | null;
  return (
    typeof r === 'object' && r !== null && Number.isInteger(r.seq) && typeof r.at === 'string' &&
    typeof r.actor === 'string' && typeof r.action === 'string' && typeof r.prev === 'string' &&
    typeof r.hash === 'string'
  );
}

/** Where a chain starts: genesis, or the last record archived out of the log. */
export interface ChainAnchor {
  seq: number;
  hash: string;
}

/** The anchor of a log that was never archived. */
export const GENESIS: ChainAnchor = { seq: 0, hash: GENESIS_HASH };

/**
 * Check a chain, oldest first: each record's hash matches its content, seq counts up from
 * `from.seq + 1` and prev is the hash of the record before (`from.hash` for the first). `brokenAt`
 * is the seq the first record that fails should have had — its 1-based position in a log that
 * starts at genesis.
 */
export function verifyChain(records: readonly AuditRecord[], from: ChainAnchor = GENESIS): AuditVerification {
  let prev = from.hash;
  for (const [index, record] of records.entries()) {
    const at = from.seq + index + 1;
    const broken = (why: string): AuditVerification => ({ ok: false, records: records.length, brokenAt: at, reason: `record ${at}: ${why}` });
    if (!isRecordShape(record)) return broken('is not an audit record (seq, at, actor, action, prev and hash are required)');
    if (record.hash !== hashRecord(record)) return broken('its hash does not match its content: the record was edited');
    if (record.seq > at) return broken(`has seq ${record.seq} where ${at} was expected: records ${at}–${record.seq - 1} are missing`);
    if (record.seq < at) return broken(`has seq ${record.seq} where ${at} was expected: records are out of order or repeated`);
    if (record.prev !== prev) {
      if (index > 0) return broken(`its prev is not the hash of record ${at - 1}: a record before it was removed, inserted or replaced`);
      return broken(from.seq === 0 ? 'its prev is not the genesis hash: records before it were removed' : `its prev is not the hash of record ${from.seq}, the last one archived: records before it were removed`);
    }
    prev = record.hash;
  }
  return { ok: true, records: records.length };
}

/**
 * The record `entry` becomes when chained onto `last`. Passed through JSON first, so the hash
 * covers exactly what is stored (undefined members dropped).
 */
export function chainRecord(entry: AuditEntry, last: ChainAnchor, now: number): AuditRecord {
  const body = JSON.parse(JSON.stringify({
    seq: last.seq + 1,
    at: entry.at ?? new Date(now).toISOString(),
    actor: entry.actor,
    action: entry.action,
    rolloutId: entry.rolloutId,
    detail: entry.detail,
    prev: last.hash,
  })) as Omit<AuditRecord, 'hash'>;
  const hash = hashRecord(body);
  return { ...body, hash, ...(entry.sign ? { sig: entry.sign(hash) } : {}) };
}

