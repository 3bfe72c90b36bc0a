/**
 * The pure parts of the kubernetes state backend: a chain verified from an archive anchor,
 * MicroTime, documents fitted into a ConfigMap, and Leases read back as lock holdings.
 */
import { describe, expect, it } from 'vitest';
import { chainRecord, GENESIS, verifyChain } from '../../src/state/chain.js';
import { holderOf, microTime } from '../../src/state/kubernetes/lock.js';
import { decodeDocument, encodeDocument, formatBytes } from '../../src/state/kubernetes/objects.js';
import type { AuditRecord } from '../../src/state/store.js';

function chain(count: number): AuditRecord[] {
  const records: AuditRecord[] = [];
  for (let i = 0; i < count; i++) {
    records.push(chainRecord({ actor: 'a@h', action: 'rollout.step', detail: { i } }, records.at(-1) ?? GENESIS, Date.UTC(2030, 0, 1, 0, 0, i)));
  }
  return records;
}

describe('verifying from an archive anchor', () => {
  const all = chain(10);
  const anchor = { seq: all[5]!.seq, hash: all[5]!.hash };
  const rest = all.slice(6);

  it('accepts the records after the anchor and counts only those', () => {
    expect(verifyChain(rest, anchor)).toEqual({ ok: true, records: 4 });
  });

  it('names records by seq, and says when the first no longer follows the archived one', () => {
    expect(verifyChain(rest.slice(1), anchor)).toMatchObject({ ok: false, brokenAt: 7, reason: 'record 7: has seq 8 where 7 was expected: records 7–7 are missing' });
    expect(verifyChain(rest, { seq: 6, hash: all[4]!.hash })).toMatchObject({ ok: false, brokenAt: 7, reason: 'record 7: its prev is not the hash of record 6, the last one archived: records before it were removed' });
    expect(verifyChain(rest)).toMatchObject({ ok: false, brokenAt: 1 });
  });
});

describe('microTime', () => {
  it('has the six fractional digits the API server writes', () => {
    expect(microTime(Date.parse('2026-11-22T06:15:42.123Z'))).toBe('2026-11-22T06:15:42.123000Z');
    expect(Date.parse(microTime(1_800_000_000_007))).toBe(1_800_000_000_007);
  });
});

describe('documents in a ConfigMap', () => {
  it('keeps small documents as readable JSON and gzips large ones', () => {
    const small = encodeDocument('state.json', { step: 1 }, 'the state');
    expect(small).toEqual({ data: { 'state.json': '{\n  "step": 1\n}\n' }, binaryData: {} });
    const large = { pins: Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`org-${i}`, { version: 'v2' }])) };
    const packed = encodeDocument('orgs.json', large, 'the orgs document');
    expect(Object.keys(packed.binaryData)).toEqual(['orgs.json.gz']);
    expect(JSON.parse(decodeDocument({ metadata: { name: 'x' }, ...packed }, 'orgs.json')!)).toEqual(large);
    expect(decodeDocument({ metadata: { name: 'x' } }, 'orgs.json')).toBeUndefined();
    expect(() => decodeDocument({ metadata: { name: 'x' }, binaryData: { 'orgs.json.gz': 'bm90IGd6aXA=' } }, 'orgs.json')).toThrow(/holds orgs.json.gz that does not unpack/);
  });

  it('formats sizes for messages', () => {
    expect(formatBytes(8 * 1024 * 1024)).toBe('8.0 MiB');
    expect(formatBytes(16_384)).toBe('16.0 KiB');
  });
});

describe('a Lease read as a holding', () => {
  const spec = { holderIdentity: 'alice@laptop/4242/t0k', leaseDurationSeconds: 30, acquireTime: '2026-11-22T06:15:42.123000Z', renewTime: '2026-11-22T06:15:52.000000Z' };

  it('computes the expiry from renewTime and the duration, with owner, pid and host from annotations and the fencing token from the transitions', () => {
    const annotations = { 'cutover.dev/owner': 'alice@laptop', 'cutover.dev/pid': '4242', 'cutover.dev/host': 'laptop', 'cutover.dev/token': 't0k' };
    expect(holderOf({ metadata: { name: 'l', annotations }, spec: { ...spec, leaseTransitions: 6 } })).toEqual({
      owner: 'alice@laptop', pid: 4242, host: 'laptop', token: 't0k',
      acquiredAt: '2026-11-22T06:15:42.123Z', renewedAt: '2026-11-22T06:15:52.000Z', leaseExpiresAt: '2026-11-22T06:16:22.000Z',
      fence: 7,
    });
  });

  it('names a holder that is not Cutover by its holderIdentity; a released Lease has none', () => {
    expect(holderOf({ metadata: { name: 'l' }, spec: { ...spec, holderIdentity: 'kube-controller-manager_abc' } })).toMatchObject({ owner: 'kube-controller-manager_abc', pid: 0 });
    expect(holderOf({ metadata: { name: 'l' }, spec: { leaseDurationSeconds: 30 } })).toBeUndefined();
  });
});
