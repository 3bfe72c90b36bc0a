/**
 * The chain head kept outside the log: what comparing a log with its kept heads shows — a clean
 * log, a rewrite with every hash recomputed (named exactly when a head was kept per append, at
 * the head when only the latest is), a log cut short, records after the head, an archive — and
 * when an appender may move the head.
 */
import { describe, expect, it } from 'vitest';
import { chainRecord, GENESIS, hashRecord, verifyChain, type ChainAnchor } from '../../src/state/chain.js';
import { checkHeads, headAgrees, parseHead, readConsistently, withHead, type KeptHeads } from '../../src/state/head.js';
import type { AuditRecord } from '../../src/state/store.js';

/** A chain of `n` records after `from`. */
function chain(n: number, from: ChainAnchor = GENESIS): AuditRecord[] {
  const records: AuditRecord[] = [];
  let last = from;
  for (let i = 0; i < n; i++) {
    const r = chainRecord({ actor: 'driver@host', action: 'rollout.step', detail: { i } }, last, 1.7e12 + i * 1000);
    records.push(r);
    last = { seq: r.seq, hash: r.hash };
  }
  return records;
}

/** `records` with record `seq` changed and every hash from it on recomputed: the chain still verifies. */
function rewritten(records: AuditRecord[], seq: number): AuditRecord[] {
  const out = records.map((r) => ({ ...r }));
  const i = out.findIndex((r) => r.seq === seq);
  out[i] = { ...out[i]!, actor: 'someone-else@host' };
  for (let k = i; k < out.length; k++) {
    const body = { ...out[k]!, prev: k === 0 ? GENESIS.hash : out[k - 1]!.hash };
    out[k] = { ...body, hash: hashRecord(body) };
  }
  return out;
}

const kept = (heads: ChainAnchor[], extra: Partial<KeptHeads> = {}): KeptHeads => ({ where: 'the test store', heads, proves: 'what it proves', notes: [], ...extra });
const headsOf = (records: AuditRecord[]) => records.map((r) => ({ seq: r.seq, hash: r.hash }));

describe('checkHeads', () => {
  it('passes a clean log against every head, or against the latest only', () => {
    const log = chain(6);
    expect(checkHeads(log, GENESIS, kept(headsOf(log)))).toEqual({ where: 'the test store', ok: true, compared: 6, seq: 6, uncovered: 0, proves: 'what it proves', notes: [] });
    expect(checkHeads(log, GENESIS, kept(headsOf(log).slice(-1)))).toMatchObject({ ok: true, compared: 1, seq: 6 });
  });

  it('names the rewritten record itself when a head was kept for every append', () => {
    const log = chain(6);
    const changed = rewritten(log, 3);
    expect(verifyChain(changed)).toEqual({ ok: true, records: 6 });
    const report = checkHeads(changed, GENESIS, kept(headsOf(log)));
    expect(report).toMatchObject({ ok: false, brokenAt: 3 });
    expect(report.reason).toBe('record 3: its hash is not the one the head kept in the test store kept for it: it was changed and the hashes after it recomputed');
  });

  it('with only the latest head, the disagreement shows at it, and says the change is at or before it', () => {
    const log = chain(6);
    const report = checkHeads(rewritten(log, 2), GENESIS, kept(headsOf(log).slice(-1)));
    expect(report).toMatchObject({ ok: false, brokenAt: 6 });
    expect(report.reason).toMatch(/^record 6: its hash is not the one the head kept in the test store kept for it: one of records 1–6 was changed/);
  });

  it('names the first missing record of a log cut short', () => {
    const log = chain(6);
    expect(checkHeads(log.slice(0, 4), GENESIS, kept(headsOf(log).slice(-1)))).toMatchObject({
      ok: false,
      brokenAt: 5,
      reason: 'record 5: missing: the log ends at record 4, but the head kept in the test store names record 6: records 5–6 were removed',
    });
    expect(checkHeads([], GENESIS, kept(headsOf(log)))).toMatchObject({ ok: false, brokenAt: 1 });
  });

  it('reports records after the latest head as not covered, without failing', () => {
    const log = chain(6);
    const report = checkHeads(log, GENESIS, kept(headsOf(log.slice(0, 4)).slice(-1)));
    expect(report).toMatchObject({ ok: true, seq: 4, uncovered: 2 });
    expect(report.notes).toEqual([expect.stringMatching(/^records 5–6 come after the latest head \(record 4\) and are not covered by it/)]);
  });

  it('says nothing is proven beyond the chain when no head is kept yet', () => {
    const report = checkHeads(chain(3), GENESIS, kept([]));
    expect(report).toMatchObject({ ok: true, compared: 0, seq: 0 });
    expect(report.proves).toBeUndefined();
    expect(report.notes).toEqual([expect.stringMatching(/^no chain head is kept in the test store yet/)]);
  });

  it('after an archive: records removed without one are found, an archive kept in the head is not', () => {
    const log = chain(10);
    const anchor = { seq: 4, hash: log[3]!.hash };
    const rest = log.slice(4);
    expect(checkHeads(rest, anchor, kept(headsOf(log).slice(-1), { archived: anchor }))).toMatchObject({ ok: true, compared: 1 });
    // The head knows of an archive through record 2 only: records 3–4 were removed, not archived.
    expect(checkHeads(rest, anchor, kept(headsOf(log).slice(-1), { archived: { seq: 2, hash: log[1]!.hash } }))).toMatchObject({
      ok: false,
      brokenAt: 3,
      reason: expect.stringMatching(/^record 3: records 3–4 are gone from the log, but the test store records an archive only through record 2/),
    });
    // An archive that stopped before removing anything leaves the archived record where it was.
    expect(checkHeads(log, GENESIS, kept(headsOf(log).slice(-1), { archived: anchor }))).toMatchObject({ ok: true });
  });
});

describe('headAgrees', () => {
  const log = chain(5);
  const never = async () => undefined;
  it('moves the head onto a record chained to it', async () => {
    expect(await headAgrees({ seq: 4, hash: log[3]!.hash }, log[4]!, never)).toBe(true);
    expect(await headAgrees({ seq: 4, hash: 'f'.repeat(64) }, log[4]!, never)).toBe(false);
  });
  it('across records appended after the head, only when the head is still the record it names', async () => {
    const at = async (seq: number) => ({ seq, hash: log[seq - 1]!.hash });
    expect(await headAgrees({ seq: 2, hash: log[1]!.hash }, log[4]!, at)).toBe(true);
    expect(await headAgrees({ seq: 2, hash: log[2]!.hash }, log[4]!, at)).toBe(false);
  });
  it('never backwards', async () => {
    expect(await headAgrees({ seq: 5, hash: log[4]!.hash }, log[4]!, never)).toBe(false);
  });
});

describe('parseHead and withHead', () => {
  it('reads a head and refuses what is not one', () => {
    const hash = 'a'.repeat(64);
    expect(parseHead(JSON.stringify({ seq: 3, hash }))).toEqual({ head: { seq: 3, hash } });
    expect(parseHead(JSON.stringify({ seq: 3, hash, archived: { seq: 1, hash } }))).toEqual({ head: { seq: 3, hash, archived: { seq: 1, hash } } });
    expect(parseHead('{')).toMatchObject({ bad: expect.stringMatching(/^is not valid JSON/) });
    expect(parseHead(JSON.stringify({ seq: -1, hash }))).toEqual({ bad: 'is not a chain head (a seq and a 64-digit hash)' });
    expect(parseHead(JSON.stringify({ seq: 3, hash: 'xyz' }))).toEqual({ bad: 'is not a chain head (a seq and a 64-digit hash)' });
  });

  it('reports whichever of the chain and the head fails first', () => {
    const head = { where: 'w', ok: false, compared: 1, seq: 6, uncovered: 0, notes: [], brokenAt: 6, reason: 'record 6: head' };
    expect(withHead({ ok: true, records: 6 }, head)).toEqual({ ok: false, records: 6, brokenAt: 6, reason: 'record 6: head', head });
    expect(withHead({ ok: false, records: 6, brokenAt: 3, reason: 'record 3: chain' }, head)).toMatchObject({ brokenAt: 3, reason: 'record 3: chain' });
    expect(withHead({ ok: true, records: 6 }, { ...head, ok: true, brokenAt: undefined, reason: undefined })).toMatchObject({ ok: true });
  });
});

describe('reading the log and its heads while others append', () => {
  it('reads again when the head moved during the log read, so an append in between is never taken for a removed record', async () => {
    // The appender writes record 3 and then moves the head, between our log read and our head read.
    const log = [[1, 2], [1, 2, 3]];
    const heads = [{ seq: 2 }, { seq: 3 }, { seq: 3 }, { seq: 3 }];
    let logReads = 0;
    let headReads = 0;
    const kept = (seq: number): KeptHeads => ({ where: 'test', heads: [{ seq, hash: String(seq).repeat(64).slice(0, 64) }], proves: '', notes: [] });
    const read = await readConsistently(async () => log[Math.min(logReads++, 1)]!, async () => kept(heads[Math.min(headReads++, 3)]!.seq));
    expect(read.log).toEqual([1, 2, 3]);
    expect(read.kept.heads[0]!.seq).toBe(3);
    expect(logReads).toBe(2);
  });
});
