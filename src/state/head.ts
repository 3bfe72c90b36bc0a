/**
 * The chain head kept outside the audit log. The hash chain (chain.ts) shows a changed record only
 * to someone who cannot recompute it: whoever can write the log can change a record and every hash
 * after it. So the Kubernetes and S3 backends also keep, after each append, the seq and hash of
 * the last record in an object of its own — an annotation of the lock Lease, a versioned S3
 * object — that a writer of the log's objects need not be able to write. A log rewritten from
 * some record on, or cut short, then no longer holds the record a kept head names.
 *
 * The backends keep and read the heads; this module alone decides what they show. An appender
 * moves the head only onto a chain that agrees with it (`headAgrees`), so a rewrite is never
 * blessed by the next append: the disagreement stays for `deploy history` to name.
 */
import type { ChainAnchor } from './chain.js';
import type { AuditRecord, AuditVerification, HeadReport } from './store.js';

/** One head as kept: the last record's seq and hash when it was written. */
export interface ChainHead extends ChainAnchor {
  /** Which copy this is, for messages (an S3 object version and its time). */
  from?: string;
}

/** The heads a backend kept, and what a match with them proves. */
export interface KeptHeads {
  /** Where they are kept, for messages. */
  where: string;
  /** Every head kept, in any order; empty when none is kept yet. */
  heads: ChainHead[];
  /** What a match proves, and to whom. */
  proves: string;
  /** What it does not prove here (versioning off, an unreadable copy, …). */
  notes: string[];
  /**
   * The last archived record as the head keeps it (Kubernetes, whose log can be archived): the
   * log may start after this record, never later, or records were removed rather than archived.
   */
  archived?: ChainAnchor;
}

/** A head read from its stored form (`{"seq":…,"hash":"…"}`), or a reason it is not one. */
export function parseHead(text: string): { head: ChainHead & { archived?: ChainAnchor } } | { bad: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { bad: `is not valid JSON (${(error as Error).message})` };
  }
  const isAnchor = (v: unknown): v is ChainAnchor =>
    typeof v === 'object' && v !== null && Number.isSafeInteger((v as ChainAnchor).seq) && (v as ChainAnchor).seq >= 0 && /^[0-9a-f]{64}$/.test(String((v as ChainAnchor).hash));
  if (!isAnchor(value)) return { bad: 'is not a chain head (a seq and a 64-digit hash)' };
  const archived = (value as { archived?: unknown }).archived;
  if (archived !== undefined && !isAnchor(archived)) return { bad: 'has a malformed archived anchor' };
  return { head: { seq: value.seq, hash: value.hash, ...(archived ? { archived: { seq: archived.seq, hash: archived.hash } } : {}) } };
}

/**
 * Whether a head may move from `head` onto `record`: the chain `record` was appended to passes
 * through the head. `recordAt` reads the record of another seq (only asked when records were
 * appended after the head without moving it: a writer stopped between the two, or another one
 * is moving it right now).
 */
export async function headAgrees(head: ChainAnchor, record: AuditRecord, recordAt: (seq: number) => Promise<ChainAnchor | undefined>): Promise<boolean> {
  if (head.seq === 0) return true;
  if (head.seq === record.seq - 1) return head.hash === record.prev;
  if (head.seq >= record.seq) return false;
  return (await recordAt(head.seq))?.hash === head.hash;
}

/**
 * Compare the log — `records`, which follow `anchor` (genesis, or the last archived record) —
 * with the kept heads. Every head must name a record of the log with the hash it kept; the first
 * that does not is reported as the first record that disagrees. With a head kept for every
 * append (S3 versioning), that is the changed record itself; with only the latest kept, the
 * change is at or before it.
 */
export function checkHeads(records: readonly AuditRecord[], anchor: ChainAnchor, kept: KeptHeads): HeadReport {
  const heads = [...kept.heads].sort((a, b) => a.seq - b.seq);
  const last = anchor.seq + records.length;
  const latest = heads.at(-1);
  const notes = [...kept.notes];
  const report: HeadReport = { where: kept.where, ok: true, compared: 0, seq: latest?.seq ?? 0, uncovered: 0, notes };
  const fail = (seq: number, why: string): HeadReport => ({ ...report, ok: false, brokenAt: seq, reason: `record ${seq}: ${why}` });
  const named = (h: ChainHead) => `the head kept in ${kept.where}${h.from ? ` (${h.from})` : ''}`;
  const at = (seq: number): AuditRecord | undefined => {
    const record = records[seq - anchor.seq - 1];
    return record?.seq === seq ? record : undefined;
  };

  if (kept.archived) {
    const archived = kept.archived;
    if (anchor.seq > archived.seq) {
      const archive = archived.seq === 0 ? 'no archive' : `an archive only through record ${archived.seq}`;
      return fail(archived.seq + 1, `records ${archived.seq + 1}–${anchor.seq} are gone from the log, but ${kept.where} records ${archive}: they were removed, not archived`);
    }
    if (anchor.seq === archived.seq && anchor.hash !== archived.hash) {
      return fail(anchor.seq + 1, `the log resumes after an archived record ${anchor.seq} whose hash is not the one ${kept.where} kept for it: records before it were replaced`);
    }
    // An archive stopped before it removed anything leaves the archived record in the log.
    if (anchor.seq < archived.seq && archived.seq <= last && at(archived.seq)?.hash !== archived.hash) {
      return fail(archived.seq, `its hash is not the one ${kept.where} kept when it was archived: one of records ${anchor.seq + 1}–${archived.seq} was changed`);
    }
  } else if (anchor.seq > 0 && latest) {
    notes.push(`records 1–${anchor.seq} were archived before ${kept.where} kept archives: that they were archived rather than removed is not proven`);
  }

  let agreed = Math.max(anchor.seq, kept.archived?.seq ?? 0);
  for (const head of heads) {
    if (head.seq <= anchor.seq) {
      // An archived record: the archive check above covers it, except the last one archived.
      if (head.seq === anchor.seq && head.seq > 0 && head.hash !== anchor.hash) {
        return fail(anchor.seq + 1, `the log resumes after a record ${anchor.seq} whose hash is not the one ${named(head)} kept for it`);
      }
      continue;
    }
    if (head.seq > last) {
      const removed = head.seq === last + 1 ? `record ${head.seq} was removed` : `records ${last + 1}–${head.seq} were removed`;
      return fail(last + 1, `missing: the log ends at record ${last}, but ${named(head)} names record ${head.seq}: ${removed}`);
    }
    report.compared++;
    if (at(head.seq)?.hash !== head.hash) {
      const which = agreed + 1 === head.seq ? 'it' : `one of records ${agreed + 1}–${head.seq}`;
      return fail(head.seq, `its hash is not the one ${named(head)} kept for it: ${which} was changed and the hashes after it recomputed`);
    }
    agreed = head.seq;
  }
  if (!latest) {
    if (records.length > 0) notes.push(`no chain head is kept in ${kept.where} yet: nothing beyond the chain is proven until the next record is appended`);
    return report;
  }
  report.uncovered = Math.max(0, last - Math.max(latest.seq, anchor.seq));
  if (report.uncovered > 0) {
    notes.push(`record${report.uncovered > 1 ? `s ${last - report.uncovered + 1}–${last} come` : ` ${last} comes`} after the latest head (record ${latest.seq}) and ${report.uncovered > 1 ? 'are' : 'is'} not covered by it: its writer stopped before keeping the head, or someone added ${report.uncovered > 1 ? 'them' : 'it'} without keeping one`);
  }
  return report.compared > 0 ? { ...report, proves: kept.proves } : report;
}

/**
 * The verification of the chain with the head's verdict joined: the first record that disagrees
 * with either is the one reported.
 */
export function withHead(chain: AuditVerification, head: HeadReport): AuditVerification {
  if (head.ok || head.brokenAt === undefined) return { ...chain, head };
  if (chain.ok || head.brokenAt < chain.brokenAt) return { ok: false, records: chain.records, brokenAt: head.brokenAt, reason: head.reason!, head };
  return { ...chain, head };
}

/**
 * The log and the heads as of one moment, for a check while others may append. An appender writes
 * its record and then moves the head, so a log read before a head that moved meanwhile lacks the
 * record that head names: the heads are read before and after the log, and the read is taken
 * again until they agree (a few times; then the heads read before it, which an append cannot
 * make disagree with the log read after them).
 */
export async function readConsistently<T>(readLog: () => Promise<T>, readHeads: () => Promise<KeptHeads>, attempts = 5): Promise<{ log: T; kept: KeptHeads }> {
  const same = (a: KeptHeads, b: KeptHeads) => JSON.stringify([a.heads, a.archived]) === JSON.stringify([b.heads, b.archived]);
  let before = await readHeads();
  for (let attempt = 1; ; attempt++) {
    const log = await readLog();
    const after = await readHeads();
    if (same(before, after) || attempt >= attempts) return { log, kept: before };
    before = after;
  }
}
