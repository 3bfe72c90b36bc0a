import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OperationError } from '../../src/errors.js';
import { canonicalJson, GENESIS_HASH, hashRecord, verifyChain } from '../../src/state/chain.js';
import { JsonlAuditLog } from '../../src/state/local/audit.js';
import type { AuditRecord } from '../../src/state/store.js';

let dir: string;
let file: string;
let now: number;
const clock = (): number => now;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cutover-audit-'));
  file = join(dir, 'svc', 'audit.jsonl');
  now = Date.parse('2030-03-01T09:00:00.000Z');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function writeChain(count: number): Promise<JsonlAuditLog> {
  const log = new JsonlAuditLog(file, { clock });
  for (let i = 1; i <= count; i++) {
    now += 1_000;
    await log.append({ actor: 'alice@ws1', action: 'step', rolloutId: 'r-1', detail: { step: i, weights: { v1: 100 - i, v2: i } } });
  }
  return log;
}

async function lines(): Promise<string[]> {
  return (await readFile(file, 'utf8')).split('\n').slice(0, -1);
}

describe('hashing', () => {
  it('does not depend on key order, and ignores the hash field itself', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: undefined } })).toBe('{"a":{"d":[1,{"y":2,"z":1}]},"b":1}');
    const record = { seq: 1, at: 'x', actor: 'a', action: 'b', prev: GENESIS_HASH };
    const reordered = { prev: GENESIS_HASH, action: 'b', actor: 'a', at: 'x', seq: 1 };
    expect(hashRecord(record)).toBe(hashRecord(reordered));
    expect(hashRecord({ ...record, hash: 'anything' })).toBe(hashRecord(record));
    expect(hashRecord(record)).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('JSON-lines audit log', () => {
  it('chains 50 records that verify', async () => {
    const log = await writeChain(50);
    const records = await log.read();
    expect(records).toHaveLength(50);
    expect(records[0]).toMatchObject({ seq: 1, prev: GENESIS_HASH, at: '2030-03-01T09:00:01.000Z' });
    expect(records[1]!.prev).toBe(records[0]!.hash);
    expect(await log.verify()).toEqual({ ok: true, records: 50 });
    // A fresh instance (another process) chains onto the same tail.
    const next = await new JsonlAuditLog(file, { clock }).append({ actor: 'bob@ci7', action: 'pause' });
    expect(next).toMatchObject({ seq: 51, prev: records[49]!.hash });
    expect(await log.verify()).toEqual({ ok: true, records: 51 });
  });

  it('chains correctly when another process appended since the last append', async () => {
    const driver = await writeChain(3);
    await new JsonlAuditLog(file).append({ actor: 'bob@ci7', action: 'pause' });
    expect((await driver.append({ actor: 'alice@ws1', action: 'hold' })).seq).toBe(5);
    expect((await driver.verify()).ok).toBe(true);
  });

  it('keeps concurrent appends of one process in one chain', async () => {
    const log = new JsonlAuditLog(file, { clock });
    await Promise.all(Array.from({ length: 20 }, (_, i) => log.append({ actor: 'a', action: `a${i}` })));
    expect(await log.verify()).toEqual({ ok: true, records: 20 });
  });

  it('finds an edited field at the record that was edited', async () => {
    const log = await writeChain(50);
    const all = await lines();
    const edited = JSON.parse(all[16]!) as AuditRecord;
    expect(edited.seq).toBe(17);
    edited.detail = { ...edited.detail, weights: { v1: 0, v2: 100 } };
    all[16] = JSON.stringify(edited);
    await writeFile(file, `${all.join('\n')}\n`);
    const result = await log.verify();
    expect(result).toMatchObject({ ok: false, brokenAt: 17 });
    expect(result.ok || result.reason).toContain('edited');
  });

  it('finds a deleted record, and a reordered one', async () => {
    const log = await writeChain(50);
    const all = await lines();
    await writeFile(file, `${all.filter((_, i) => i !== 29).join('\n')}\n`);
    const deleted = await log.verify();
    expect(deleted).toMatchObject({ ok: false, brokenAt: 30 });
    expect(deleted.ok || deleted.reason).toContain('missing');

    const swapped = [...all];
    [swapped[9], swapped[10]] = [all[10]!, all[9]!];
    await writeFile(file, `${swapped.join('\n')}\n`);
    expect(await log.verify()).toMatchObject({ ok: false, brokenAt: 10 });

    // A truncated tail still verifies: only a hash kept outside the log could tell.
    expect(verifyChain(all.slice(0, 49).map((l) => JSON.parse(l) as AuditRecord))).toEqual({ ok: true, records: 49 });
  });

  it('reports a torn last line as torn, and refuses to chain onto it', async () => {
    const log = await writeChain(5);
    await appendFile(file, '{"seq":6,"at":"2030-03-01T09:00:06.000Z","act');
    const result = await log.verify();
    expect(result).toMatchObject({ ok: false, records: 5, brokenAt: 6 });
    expect(result.ok || result.reason).toMatch(/^torn final record \(incomplete write\): /);
    expect(await log.read()).toHaveLength(5);

    const refused = await new JsonlAuditLog(file).append({ actor: 'a', action: 'b' }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OperationError);
    expect((refused as OperationError).hint).toContain(`sed -i '$ d' ${file}`);
    // The same instance, whose cached tail is now stale, refuses too.
    await expect(log.append({ actor: 'a', action: 'b' })).rejects.toBeInstanceOf(OperationError);

    // The repair the hint names makes the log appendable again.
    await writeFile(file, `${(await lines()).join('\n')}\n`);
    expect((await log.append({ actor: 'a', action: 'b' })).seq).toBe(6);
    expect(await log.verify()).toEqual({ ok: true, records: 6 });
  });

  it('treats a last line that is complete JSON without its newline as torn too', async () => {
    const log = await writeChain(2);
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.slice(0, -1));
    expect(await log.verify()).toMatchObject({ ok: false, brokenAt: 2, reason: expect.stringMatching(/^torn final record/) });
  });
});
