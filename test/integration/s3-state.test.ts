/**
 * The s3 state backend against moto's S3 server, through the real AWS SDK: compare-and-swap on
 * the state with conditional writes, corrupt state refused and left alone, the lock raced by two
 * "machines", taken over only after expiry with a fencing token that only grows, operator requests
 * taken exactly once, concurrent audit appenders forming one chain, the chain head kept as a
 * versioned object that exposes a rewritten or cut log, drivers killed with SIGKILL mid-write, a
 * missing bucket, and the CLI end to end. moto is installed and started by the test.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  CreateBucketCommand, DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListBucketsCommand, ListObjectsV2Command, ListObjectVersionsCommand, PutBucketVersioningCommand,
  PutObjectCommand, S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LockedError, UsageError } from '../../src/errors.js';
import { startMoto, type MotoProcess } from '../../src/sandbox/moto-process.js';
import { startOneAtATime, type OneAtATime } from '../helpers/one-at-a-time.js';
import { currentActor } from '../../src/state/actor.js';
import { GENESIS_HASH, hashRecord, verifyChain } from '../../src/state/chain.js';
import { SdkStateObjects, type SendFn } from '../../src/state/s3/objects.js';
import { S3StateStore } from '../../src/state/s3/store.js';
import type { Actor, AuditRecord, Lock, OperatorRequest } from '../../src/state/store.js';
import { useEmulatorCredentials } from '../helpers/alb.js';
import { runCli } from '../helpers/cli.js';

const REGION = 'eu-west-1';
const BUCKET = 'cutover-state';
const PREFIX = 'cutover/patient-api/';
const ROOT = resolve(import.meta.dirname, '../..');

let moto: MotoProcess;
let atomic: OneAtATime;
let s3: S3Client;
const made: string[] = [];

beforeAll(async () => {
  useEmulatorCredentials();
  moto = await startMoto();
  atomic = await startOneAtATime(moto.url);
  s3 = new S3Client({ region: REGION, endpoint: moto.url, forcePathStyle: true });
});
afterAll(async () => {
  await atomic?.close();
  await moto?.stop();
  made.forEach((d) => rmSync(d, { recursive: true, force: true }));
});
beforeEach(async () => {
  await moto.reset();
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET, CreateBucketConfiguration: { LocationConstraint: REGION } }));
});

interface State {
  step: number;
  weights: Record<string, number>;
}
const validate = (value: unknown): State => {
  const s = value as Partial<State> | null;
  if (!s || typeof s.step !== 'number') throw new Error('expected { step, weights }');
  return s as State;
};

function store(opts: { clock?: () => number; bucket?: string } = {}): S3StateStore<State> {
  // Through the proxy that makes each request atomic, as S3's conditional writes are (see it).
  const objects = new SdkStateObjects({ bucket: opts.bucket ?? BUCKET, region: REGION, endpointUrl: atomic.url, leaseMs: 30_000, minDelayMs: 5, maxDelayMs: 50 });
  return new S3StateStore<State>(objects, { prefix: PREFIX, validate, ...(opts.clock ? { clock: opts.clock } : {}) });
}

const actor = (i: number): Actor => ({ owner: `driver${i}@host${i}`, pid: 4200 + i, host: `host${i}` });
const failure = (p: Promise<unknown>): Promise<Error> => p.then(() => { throw new Error('expected a failure'); }, (e: unknown) => e as Error);

async function rawObject(key: string): Promise<{ body: string; etag: string } | undefined> {
  try {
    const out = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    return { body: await out.Body!.transformToString(), etag: out.ETag! };
  } catch (e) {
    if ((e as Error).name === 'NoSuchKey') return undefined;
    throw e;
  }
}
async function keys(prefix = PREFIX): Promise<string[]> {
  const out = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
  return (out.Contents ?? []).map((c) => c.Key!).sort();
}
const putRaw = (key: string, body: string) => s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));

describe('state', () => {
  it('round-trips, and a save over a newer write is refused with LockedError, nothing written', async () => {
    const first = store();
    expect(await first.load()).toBeUndefined();
    await first.save({ step: 0, weights: { v1: 100 } });
    expect(await store().load()).toEqual({ step: 0, weights: { v1: 100 } });
    await first.save({ step: 1, weights: { v1: 90, v2: 10 } });

    const second = store();
    expect(await second.load()).toEqual({ step: 1, weights: { v1: 90, v2: 10 } });
    await second.save({ step: 2, weights: { v1: 50, v2: 50 } });
    const before = await rawObject(`${PREFIX}state.json`);

    const error = await failure(first.save({ step: 2, weights: { v1: 75, v2: 25 } }));
    expect(error).toBeInstanceOf(LockedError);
    expect((error as LockedError).exitCode).toBe(5);
    expect(error.message).toBe(`the rollout state in s3://${BUCKET}/${PREFIX}state.json was written by another driver since this one read it; nothing was recorded over it`);
    expect(await rawObject(`${PREFIX}state.json`)).toEqual(before);
    // Still refused until it reads again: it never retries over the newer write.
    await expect(first.save({ step: 3, weights: {} })).rejects.toBeInstanceOf(LockedError);
    expect(await first.load()).toEqual({ step: 2, weights: { v1: 50, v2: 50 } });
    await first.save({ step: 3, weights: { v2: 100 } });
    expect(await second.load()).toEqual({ step: 3, weights: { v2: 100 } });
    expect(store().location).toBe(`s3://${BUCKET}/${PREFIX}`);
  });

  it('of two stores that both saw no state, the second to create it gets LockedError', async () => {
    const [a, b] = [store(), store()];
    expect(await a.load()).toBeUndefined();
    expect(await b.load()).toBeUndefined();
    await a.save({ step: 0, weights: { v1: 100 } });
    await expect(b.save({ step: 7, weights: { v2: 100 } })).rejects.toBeInstanceOf(LockedError);
    expect(await store().load()).toEqual({ step: 0, weights: { v1: 100 } });
  });

  it('a corrupt state is refused with UsageError and left byte for byte', async () => {
    const text = '{"step": 3, "weights": {"v1": 90, "v2"';
    await putRaw(`${PREFIX}state.json`, text);
    const before = await rawObject(`${PREFIX}state.json`);
    const s = store();
    const error = await failure(s.load());
    expect(error).toBeInstanceOf(UsageError);
    expect(error.message).toMatch(new RegExp(`^state object s3://${BUCKET}/${PREFIX}state.json is not valid JSON .*; it was left untouched$`));
    // Neither this store after the refused load nor a fresh one overwrites it.
    await expect(s.save({ step: 0, weights: {} })).rejects.toBeInstanceOf(UsageError);
    await expect(store().save({ step: 0, weights: {} })).rejects.toBeInstanceOf(UsageError);
    expect(await rawObject(`${PREFIX}state.json`)).toEqual(before);

    await putRaw(`${PREFIX}state.json`, '{"steps": 1}');
    expect((await failure(store().load())).message).toMatch(/does not hold a valid rollout state \(expected \{ step, weights \}\); it was left untouched/);
  });

  it('keeps documents beside the state, compare-and-swap like it', async () => {
    const pins = Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`org-${String(i).padStart(5, '0')}`, { version: 'v2', generation: i }]));
    const registry = { schema: 1, pins };
    const a = store();
    await a.saveDoc('orgs', registry);
    expect(await store().loadDoc('orgs', (v) => v)).toEqual(registry);
    const b = store();
    await b.loadDoc('orgs', (v) => v);
    await b.saveDoc('orgs', { schema: 1, pins: {} });
    const error = await failure(a.saveDoc('orgs', { schema: 1, pins: { x: 1 } }));
    expect(error).toBeInstanceOf(LockedError);
    expect(error.message).toMatch(/^the orgs document in s3:\/\/cutover-state\/cutover\/patient-api\/orgs.json was written by another driver/);
    expect(await store().loadDoc('orgs', (v) => v)).toEqual({ schema: 1, pins: {} });
    expect(() => store().loadDoc('lock', (v) => v)).toThrow(/not a document name/);
  });
});

describe('lock', () => {
  type Outcome = PromiseSettledResult<Lock>;
  const won = (rs: Outcome[]) => rs.filter((r): r is PromiseFulfilledResult<Lock> => r.status === 'fulfilled').map((r) => r.value);
  const lost = (rs: Outcome[]) => rs.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as Error);

  it('two machines racing for it 30 times: exactly one wins each time, the other is told who (exit 5)', async () => {
    const machines = [store(), store()];
    const fences: number[] = [];
    for (let round = 0; round < 30; round++) {
      const results = await Promise.allSettled(machines.map((m, i) => m.acquireLock(actor(i + 1), 30_000)));
      const [winner] = won(results);
      expect(won(results), `round ${round}`).toHaveLength(1);
      const [reason] = lost(results);
      expect(reason).toBeInstanceOf(LockedError);
      expect((reason as LockedError).exitCode).toBe(5);
      const w = winner!.info;
      expect(reason!.message).toMatch(new RegExp(`^locked by ${w.owner} \\(pid ${w.pid} on ${w.host}\\) since ${w.acquiredAt}; lease renewed at ${w.renewedAt}, expires at ${w.leaseExpiresAt} \\(s3://${BUCKET}/${PREFIX}lock.json\\)$`));
      expect((await store().lockHolder())?.token).toBe(w.token);
      fences.push(w.fence!);
      await winner!.release();
    }
    expect(fences).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
  });

  it('of 10 stores acquiring at once exactly one wins', async () => {
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => store().acquireLock(actor(i), 30_000)));
    expect(won(results)).toHaveLength(1);
    for (const reason of lost(results)) expect(reason).toBeInstanceOf(LockedError);
  });

  it('is taken over only after expiry; the old holder then loses renew and its release leaves the new one', async () => {
    const start = Date.now();
    const old = await store({ clock: () => start }).acquireLock(actor(1), 30_000);
    await expect(store({ clock: () => start + 29_999 }).acquireLock(actor(2), 30_000)).rejects.toBeInstanceOf(LockedError);
    // The lease ends at leaseExpiresAt: from that instant on it is taken over, as with local files.
    const taker = await store({ clock: () => start + 30_000 }).acquireLock(actor(2), 30_000);
    expect(taker.info.owner).toBe('driver2@host2');
    expect([old.info.fence, taker.info.fence]).toEqual([1, 2]);

    const lostRenew = await failure(old.renew());
    expect(lostRenew).toBeInstanceOf(LockedError);
    expect(lostRenew.message).toMatch(/^lock lost: taken over by driver2@host2 \(pid 4202 on host2\) since /);
    await old.release();
    expect((await store().lockHolder())?.token).toBe(taker.info.token);
    const renewedBefore = Date.parse(taker.info.renewedAt);
    await taker.renew();
    expect(Date.parse(taker.info.renewedAt)).toBeGreaterThanOrEqual(renewedBefore);
    const holder = (await store().lockHolder())!;
    expect(Date.parse(holder.leaseExpiresAt) - Date.parse(holder.renewedAt)).toBe(30_000);
  });

  it('of 10 stores taking over the same expired lease at once exactly one wins', async () => {
    await store().acquireLock(actor(0), 30_000);
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => store({ clock: () => Date.now() + 60_000 }).acquireLock(actor(i + 1), 30_000)));
    expect(won(results)).toHaveLength(1);
    const winner = won(results)[0]!.info;
    for (const reason of lost(results)) expect(reason.message).toContain(`locked by ${winner.owner} (pid ${winner.pid}`);
    expect(winner.fence).toBe(2);
  });

  it('the fencing token grows across release, acquire and takeover; released, the object stays', async () => {
    const fences: number[] = [];
    const a = await store().acquireLock(actor(1), 30_000);
    fences.push(a.info.fence!);
    await a.release();
    expect(await store().lockHolder()).toBeUndefined();
    expect(JSON.parse((await rawObject(`${PREFIX}lock.json`))!.body)).toMatchObject({ released: true, fence: 1 });
    const b = await store().acquireLock(actor(2), 30_000);
    fences.push(b.info.fence!);
    const c = await store({ clock: () => Date.now() + 31_000 }).acquireLock(actor(3), 30_000);
    fences.push(c.info.fence!);
    await b.release(); // no longer b's: a no-op
    expect((await store().lockHolder())?.fence).toBe(3);
    await c.release();
    const d = await store().acquireLock(actor(4), 30_000);
    fences.push(d.info.fence!);
    expect(fences).toEqual([1, 2, 3, 4]);
  });

  it("a holder on this host whose process is gone is taken over at once, before its lease ends", async () => {
    const child = spawn(process.execPath, ['-e', '0']);
    const pid = child.pid!;
    await new Promise((r) => child.on('exit', r));
    const me = currentActor();
    await store().acquireLock({ owner: me.owner, pid, host: me.host }, 30_000);
    const next = await store().acquireLock(actor(2), 30_000);
    expect(next.info.fence).toBe(2);
  });

  it('measures the takeover: from lease expiry to acquired', async () => {
    const LEASE = 1_000;
    const POLL = 20;
    const samples: number[] = [];
    // One store per driver, as a driver keeps one (and its connections) while it waits.
    const [holder, taker] = [store(), store()];
    for (let i = 0; i < 10; i++) {
      const held = await holder.acquireLock(actor(1), LEASE);
      const expiresAt = Date.parse(held.info.leaseExpiresAt);
      let acquiredAt = 0;
      for (;;) {
        try {
          await taker.acquireLock(actor(2), LEASE).then((l) => l.release());
          acquiredAt = Date.now();
          break;
        } catch (e) {
          if (!(e instanceof LockedError)) throw e;
          await new Promise((r) => setTimeout(r, POLL));
        }
      }
      samples.push(acquiredAt - expiresAt);
    }
    // One acquisition alone (read + conditional write) on a free lock.
    const calls: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      const l = await taker.acquireLock(actor(3), LEASE);
      calls.push(performance.now() - t);
      await l.release();
    }
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
    console.log(`s3 lock takeover after expiry (lease ${LEASE} ms, polling every ${POLL} ms): ${samples.join(', ')} ms (median ${median(samples)} ms); one acquisition: median ${median(calls).toFixed(1)} ms, max ${Math.max(...calls).toFixed(1)} ms`);
    for (const s of samples) {
      expect(s).toBeGreaterThanOrEqual(0);
      expect(s).toBeLessThan(500);
    }
  });
});

describe('operator requests', () => {
  const request = (id: string, kind: OperatorRequest['kind']): OperatorRequest => ({ id, kind, by: actor(9), at: new Date().toISOString() });

  it('are taken once, oldest first; unreadable ones are set aside; a leftover claim is never acted on', async () => {
    const s = store();
    expect(await s.hasRequests()).toBe(false);
    expect(await s.takeRequests()).toEqual([]);
    for (const [id, kind] of [['r1', 'pause'], ['r2', 'resume'], ['r3', 'abort']] as const) await s.postRequest(request(id, kind));
    expect(await store().hasRequests()).toBe(true);
    expect((await store().takeRequests()).map((r) => `${r.id}:${r.kind}`)).toEqual(['r1:pause', 'r2:resume', 'r3:abort']);
    expect(await s.hasRequests()).toBe(false);
    expect(await keys(`${PREFIX}requests/`)).toEqual([]);

    await putRaw(`${PREFIX}requests/000000000000001-x.json`, 'not json');
    // A taker killed between its claim and its delete leaves this behind; a claim of a minute ago
    // is another taker's at work, left to it.
    await putRaw(`${PREFIX}requests/000000000000002-y.json`, JSON.stringify({ claimedBy: 'gone', claimedAt: new Date(Date.now() - 120_000).toISOString(), request: request('y', 'abort') }));
    await putRaw(`${PREFIX}requests/000000000000003-z.json`, JSON.stringify({ claimedBy: 'busy', claimedAt: new Date().toISOString(), request: request('z', 'abort') }));
    expect(await s.hasRequests()).toBe(true);
    expect(await s.takeRequests()).toEqual([]);
    expect(await keys(`${PREFIX}requests/`)).toEqual([`${PREFIX}requests/000000000000001-x.json.broken`, `${PREFIX}requests/000000000000003-z.json`]);
  });

  it('two takers at once, 10 rounds of 12 requests: every request taken exactly once', async () => {
    for (let round = 0; round < 10; round++) {
      const ids = Array.from({ length: 12 }, (_, i) => `r${round}-${i}`);
      await Promise.all(ids.map((id) => store().postRequest(request(id, 'pause'))));
      const [a, b] = await Promise.all([store().takeRequests(), store().takeRequests()]);
      const taken = [...a!, ...b!].map((r) => r.id);
      expect(taken.sort(), `round ${round}: a took ${a!.length}, b took ${b!.length}`).toEqual([...ids].sort());
      expect(await store().hasRequests()).toBe(false);
    }
  });
});

describe('audit log', () => {
  it('four appenders at once form one chain holding every record', async () => {
    const appenders = Array.from({ length: 4 }, () => store());
    await Promise.all(appenders.map(async (s, a) => {
      for (let i = 0; i < 15; i++) await s.audit.append({ actor: `driver${a}`, action: 'rollout.step', rolloutId: 'r1', detail: { a, i } });
    }));
    const records = await store().audit.read();
    expect(records.map((r) => r.seq)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    expect(await store().audit.verify()).toMatchObject({ ok: true, records: 60, head: { ok: true } });
    const seen = records.map((r) => `${(r.detail as { a: number }).a}/${(r.detail as { i: number }).i}`).sort();
    expect(new Set(seen).size).toBe(60);
    expect(await keys(`${PREFIX}audit/`)).toHaveLength(60);
    expect((await keys(`${PREFIX}audit/`))[41]).toBe(`${PREFIX}audit/000000000042.json`);
    // Each appender's own records keep their order in the chain.
    for (let a = 0; a < 4; a++) {
      const mine = records.filter((r) => (r.detail as { a: number }).a === a).map((r) => (r.detail as { i: number }).i);
      expect(mine).toEqual(Array.from({ length: 15 }, (_, i) => i));
    }
  });

  it('verify names an edited record and a removed one; nothing is chained onto a record that is not one', async () => {
    const s = store();
    for (let i = 0; i < 5; i++) await s.audit.append({ actor: 'driver1', action: 'rollout.step', detail: { i } });
    const key3 = `${PREFIX}audit/000000000003.json`;
    const original = (await rawObject(key3))!.body;
    await putRaw(key3, original.replace('"i":2', '"i":9'));
    expect(await store().audit.verify()).toMatchObject({ ok: false, brokenAt: 3, reason: expect.stringContaining('the record was edited') });
    await putRaw(key3, original);
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}audit/000000000005.json`, Body: '{"torn":' }));
    expect(await store().audit.verify()).toMatchObject({ ok: false, brokenAt: 5, reason: expect.stringContaining('is not valid JSON') });
    await expect(store().audit.append({ actor: 'x', action: 'y' })).rejects.toThrow(/refusing to append to the audit log/);
  });
});

describe('audit head', () => {
  const HEAD = `${PREFIX}audit-head.json`;
  const WHERE = `s3://${BUCKET}/${HEAD}`;
  const recordKey = (seq: number) => `${PREFIX}audit/${String(seq).padStart(12, '0')}.json`;
  const versioning = () => s3.send(new PutBucketVersioningCommand({ Bucket: BUCKET, VersioningConfiguration: { Status: 'Enabled' } }));
  const headVersions = async () => ((await s3.send(new ListObjectVersionsCommand({ Bucket: BUCKET, Prefix: HEAD }))).Versions ?? []).filter((v) => v.Key === HEAD);
  async function appendSome(n: number): Promise<AuditRecord[]> {
    const s = store();
    for (let i = 1; i <= n; i++) await s.audit.append({ actor: 'driver1@host1', action: 'rollout.step', rolloutId: 'r1', detail: { i } });
    return store().audit.read();
  }
  /** What whoever may write the prefix does: record `seq` changed, every hash from it on recomputed and written, and the head made to match. */
  async function rewrite(records: AuditRecord[], seq: number): Promise<AuditRecord[]> {
    const out = records.map((r) => ({ ...r }));
    for (let i = seq - 1; i < out.length; i++) {
      const body = { ...out[i]!, ...(i === seq - 1 ? { actor: 'someone-else@host' } : {}), prev: i === 0 ? GENESIS_HASH : out[i - 1]!.hash };
      out[i] = { ...body, hash: hashRecord(body) };
      await putRaw(recordKey(out[i]!.seq), `${JSON.stringify(out[i])}\n`);
    }
    await putRaw(HEAD, JSON.stringify({ seq: out.at(-1)!.seq, hash: out.at(-1)!.hash }));
    expect(verifyChain(await store().audit.read())).toEqual({ ok: true, records: out.length });
    return out;
  }
  function project(): string {
    const dir = mkdtempSync(join(tmpdir(), 'cutover-s3-head-'));
    made.push(dir);
    const file = join(dir, 'deploy.yaml');
    writeFileSync(file, `service: patient-api\nstable: v1\nversions:\n  v1: {}\n  v2: {}\nrouter: { type: none }\naws: { endpointUrl: ${moto.url}, region: ${REGION} }\nstate: { type: s3, bucket: ${BUCKET} }\n`);
    return file;
  }
  const lastJson = (stdout: string) => JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;

  it('with versioning, every append leaves a version of the head, and a clean log verifies against each', async () => {
    await versioning();
    const records = await appendSome(6);
    expect(JSON.parse((await rawObject(HEAD))!.body)).toEqual({ seq: 6, hash: records[5]!.hash });
    expect(await headVersions()).toHaveLength(6);
    expect(await store().audit.verify()).toEqual({
      ok: true,
      records: 6,
      head: { where: WHERE, ok: true, compared: 6, seq: 6, uncovered: 0, notes: [], proves: expect.stringContaining('not even with the credentials that write the log, unless they may also delete object versions (s3:DeleteObjectVersion') },
    });
    const run = await runCli(['history', '--verify', '-f', project()]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`chain verified: 6 records\nall 6 heads kept in ${WHERE} are on the chain, the latest at record 6\n`);
  });

  it('with versioning, a record rewritten with every hash recomputed and the head overwritten to match is named by history --verify (exit 1, plain and JSON)', async () => {
    await versioning();
    const records = await appendSome(6);
    await rewrite(records, 3);
    const file = project();
    const plain = await runCli(['history', '--verify', '-f', file]);
    expect(plain.code).toBe(1);
    expect(plain.stdout).toMatch(new RegExp(`the log disagrees with its kept head at record 3: record 3: its hash is not the one the head kept in ${WHERE.replace(/[.]/g, '\\.')} \\(version \\S+ of \\S+\\) kept for it: it was changed and the hashes after it recomputed\\n`));
    const json = await runCli(['history', '--verify', '-f', file, '-o', 'json']);
    expect(json.code).toBe(1);
    expect(lastJson(json.stdout)).toMatchObject({ event: 'verify', ok: false, brokenAt: 3, signed: false, head: { ok: false, brokenAt: 3 } });
    // Rewritten once more at the last record, then at the first: the first record changed is named.
    for (const seq of [6, 1]) {
      await rewrite(await store().audit.read(), seq);
      expect(await store().audit.verify()).toMatchObject({ ok: false, brokenAt: Math.min(seq, 3) });
    }
  });

  it('a log cut short is named at its first missing record, with versioning or without', async () => {
    await appendSome(5);
    for (const seq of [4, 5]) await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: recordKey(seq) }));
    const run = await runCli(['history', '--verify', '-f', project(), '-o', 'json']);
    expect(run.code).toBe(1);
    expect(lastJson(run.stdout)).toMatchObject({ ok: false, brokenAt: 4, reason: `record 4: missing: the log ends at record 3, but the head kept in ${WHERE} (the current version) names record 5: records 4–5 were removed` });

    await moto.reset();
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET, CreateBucketConfiguration: { LocationConstraint: REGION } }));
    await versioning();
    const records = await appendSome(5);
    // Cut, and the head put back to the new end: its earlier versions still name records 4 and 5.
    for (const seq of [4, 5]) await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: recordKey(seq) }));
    await putRaw(HEAD, JSON.stringify({ seq: 3, hash: records[2]!.hash }));
    expect(await store().audit.verify()).toMatchObject({ ok: false, brokenAt: 4, reason: expect.stringMatching(/^record 4: missing: the log ends at record 3, but the head kept in .* \(version \S+ of \S+\) names record 4: record 4 was removed$/) });
  });

  it('without versioning, history says what the head cannot prove; a rewrite that leaves the head is still caught', async () => {
    const records = await appendSome(5);
    const file = project();
    const clean = await runCli(['history', '-f', file]);
    expect(clean.code).toBe(0);
    expect(clean.stdout).toContain(`the head kept in ${WHERE} is on the chain: record 5\nversioning is off on bucket ${BUCKET}: only the latest head is kept, and whoever may write the log may overwrite it too`);
    expect(lastJson((await runCli(['history', '-f', file, '-o', 'json'])).stdout)).toMatchObject({ ok: true, head: { ok: true, compared: 1, notes: [expect.stringMatching(/^versioning is off on bucket/)] } });

    // Rewritten by someone who did not (or could not) touch the head: caught at the head.
    const original = await rawObject(HEAD);
    await rewrite(records, 2);
    await putRaw(HEAD, original!.body);
    expect(await store().audit.verify()).toMatchObject({ ok: false, brokenAt: 5, reason: expect.stringContaining('one of records 1–5 was changed') });
    // The next append does not move the head onto the rewritten chain.
    await store().audit.append({ actor: 'driver1@host1', action: 'rollout.step' });
    expect((await rawObject(HEAD))!.body).toBe(original!.body);
    // Rewritten with the head overwritten too: nothing shows, and the output has said why.
    await rewrite(await store().audit.read(), 2);
    expect(await store().audit.verify()).toMatchObject({ ok: true, head: { ok: true, notes: [expect.stringMatching(/^versioning is off/)] } });
  });
});

describe('a put whose answer was lost', () => {
  /** The SDK's send, with the answer of the first `times` PutObject calls lost after they landed. */
  function losingSend(times: number, log: string[]): SendFn {
    const sdk = new S3Client({ region: REGION, endpoint: moto.url, forcePathStyle: true, maxAttempts: 1 });
    return async (command) => {
      const operation = command.constructor.name.replace(/Command$/, '');
      log.push(operation);
      const answer = await sdk.send(command as never);
      if (operation === 'PutObject' && times-- > 0) throw Object.assign(new Error('socket hang up'), { name: 'TimeoutError' });
      return answer;
    };
  }
  const faulty = (times: number, log: string[], retries: string[]) =>
    new S3StateStore<State>(new SdkStateObjects({ bucket: BUCKET, minDelayMs: 5, maxDelayMs: 20 }, (op) => retries.push(op), losingSend(times, log)), { prefix: PREFIX, validate });

  it('is retried, meets its own write, and counts it as written: no LockedError, no second record', async () => {
    const log: string[] = [];
    const retries: string[] = [];
    const s = faulty(1, log, retries);
    expect(await s.load()).toBeUndefined();
    await s.save({ step: 0, weights: { v1: 100 } });
    expect(log).toEqual(['GetObject', 'PutObject', 'PutObject', 'HeadObject']);
    expect(retries).toEqual([`PutObject ${PREFIX}state.json`]);
    await s.save({ step: 1, weights: { v1: 90, v2: 10 } });
    expect(await store().load()).toEqual({ step: 1, weights: { v1: 90, v2: 10 } });

    const a = faulty(1, [], []);
    await a.audit.append({ actor: 'driver1', action: 'rollout.started' });
    await a.audit.append({ actor: 'driver1', action: 'rollout.step' });
    expect((await store().audit.read()).map((r) => r.action)).toEqual(['rollout.started', 'rollout.step']);

    const lock = await faulty(1, [], []).acquireLock(actor(1), 30_000);
    expect((await store().lockHolder())?.token).toBe(lock.info.token);
    const l = faulty(1, [], []);
    await expect(l.acquireLock(actor(2), 30_000)).rejects.toBeInstanceOf(LockedError);
  });

  it('a conditional write refused at the first attempt is a conflict, never checked against the object', async () => {
    const log: string[] = [];
    const s = faulty(0, log, []);
    await store().save({ step: 0, weights: { v1: 100 } });
    await store().acquireLock(actor(1), 30_000);
    await expect(s.acquireLock(actor(2), 30_000)).rejects.toBeInstanceOf(LockedError);
    expect(log).not.toContain('HeadObject');
  });
});

describe('SIGKILL mid-write', () => {
  const CHILD = `
import { SdkStateObjects } from ${JSON.stringify(pathToFileURL(join(ROOT, 'dist/src/state/s3/objects.js')).href)};
import { S3StateStore } from ${JSON.stringify(pathToFileURL(join(ROOT, 'dist/src/state/s3/store.js')).href)};
import { currentActor } from ${JSON.stringify(pathToFileURL(join(ROOT, 'dist/src/state/actor.js')).href)};
const [endpoint, bucket, prefix] = process.argv.slice(2);
const validate = (v) => { if (typeof v?.n !== 'number' || v.pad.length !== 200000 + (v.n % 7)) throw new Error('torn state'); return v; };
const store = new S3StateStore(new SdkStateObjects({ bucket, region: 'eu-west-1', endpointUrl: endpoint, leaseMs: 30000 }), { prefix, validate });
const lock = await store.acquireLock(currentActor(), 30000);
let state = (await store.load()) ?? { n: 0 };
process.stdout.write('locked ' + lock.info.fence + ' at ' + state.n + '\\n');
for (;;) {
  const n = state.n + 1;
  await store.audit.append({ actor: 'child', action: 'tick', detail: { n, fence: lock.info.fence } });
  // Large, so that a kill often lands while the body is on the wire.
  state = { n, fence: lock.info.fence, pad: 'x'.repeat(200000 + (n % 7)) };
  process.stdout.write('saving ' + n + '\\n');
  await store.save(state);
  process.stdout.write('saved ' + n + '\\n');
  if (n % 3 === 0) await store.saveDoc('orgs', { n, pins: Object.fromEntries(Array.from({ length: 3000 }, (_, i) => ['org-' + i, n])) });
  if (n % 4 === 0) await store.postRequest({ id: 'p' + n, kind: 'pause', by: currentActor(), at: new Date().toISOString() });
  if (n % 5 === 0) await store.takeRequests();
  await lock.renew();
}
`;

  it('12 kills at moments spread over the loop: each time the store reads whole and the next driver resumes', { timeout: 240_000 }, async () => {
    const built = join(ROOT, 'dist/src/state/s3/store.js');
    expect(existsSync(built) && statSync(built).mtimeMs >= statSync(join(ROOT, 'src/state/s3/store.ts')).mtimeMs, 'dist/ is older than src/state/s3: run `npm run build`').toBe(true);
    const dir = mkdtempSync(join(tmpdir(), 'cutover-s3-kill-'));
    made.push(dir);
    const script = join(dir, 'child.mjs');
    writeFileSync(script, CHILD);
    const childValidate = (v: unknown) => {
      const s = v as { n?: unknown; pad?: string };
      if (typeof s?.n !== 'number' || s.pad?.length !== 200_000 + (s.n % 7)) throw new Error('torn state');
      return s as { n: number; fence: number };
    };
    const fresh = () => new S3StateStore(new SdkStateObjects({ bucket: BUCKET, region: REGION, endpointUrl: moto.url }), { prefix: PREFIX, validate: childValidate });

    let lastN = 0;
    let lastFence = 0;
    const resumedAt: number[] = [];
    let inFlight = 0;
    for (let kill = 0; kill < 12; kill++) {
      const child = spawn(process.execPath, [script, moto.url, BUCKET, PREFIX], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (err += c.toString()));
      const exited = new Promise<void>((r) => child.on('exit', () => r()));
      const started = Date.now();
      while (!/locked \d+ at \d+/.test(out)) {
        if (child.exitCode !== null || Date.now() - started > 20_000) throw new Error(`child ${kill} did not take the lock: ${out}${err}`);
        await new Promise((r) => setTimeout(r, 5));
      }
      const [, fence, at] = /locked (\d+) at (\d+)/.exec(out)!;
      // The previous driver's process is gone from this host: its lease need not run out.
      expect(Date.now() - started, `kill ${kill}: took the lock of a dead driver`).toBeLessThan(20_000);
      expect(Number(fence), `kill ${kill}: fence`).toBeGreaterThan(lastFence);
      expect(Number(at), `kill ${kill}: resumed from the recorded state`).toBe(lastN);
      resumedAt.push(Number(at));
      lastFence = Number(fence);
      if (kill % 2 === 0) await new Promise((r) => setTimeout(r, 40 + ((kill * 97) % 400)));
      else {
        // Aimed: the moment a save of the 200 kB state starts.
        const target = Number(at) + 1 + (kill % 3);
        while (!out.includes(`saving ${target}\n`)) {
          if (child.exitCode !== null) throw new Error(`child ${kill} exited: ${err}`);
          await new Promise((r) => setImmediate(r));
        }
      }
      child.kill('SIGKILL');
      await exited;
      if (/saving \d+\n$/.test(out)) inFlight++;

      const s = fresh();
      // Undefined only when the first driver died before its first save.
      const state = (await s.load()) ?? { n: 0 };
      expect(state.n, `kill ${kill}: ${err}`).toBeGreaterThanOrEqual(lastN);
      const verified = await s.audit.verify();
      expect(verified, `kill ${kill}`).toMatchObject({ ok: true });
      const records = await s.audit.read();
      const ticks = records.map((r) => (r.detail as { n: number }).n);
      // The record of a tick is appended before its state is saved: at most one ahead.
      expect([state.n, state.n + 1], `kill ${kill}`).toContain(ticks.at(-1) ?? 0);
      // The registry, when written, is whole and belongs to a tick whose state was saved first.
      const registry = await s.loadDoc('orgs', (v) => v as { n: number; pins: Record<string, number> });
      if (registry) {
        expect(Object.keys(registry.pins)).toHaveLength(3000);
        expect(registry.n % 3).toBe(0);
        expect(registry.n).toBeLessThanOrEqual(state.n);
      }
      await s.takeRequests();
      lastN = state.n;
    }
    console.log(`s3 SIGKILL: 12 drivers killed, ${inFlight} of them with a state save in flight; resumed from ticks ${resumedAt.join(', ')}; reached ${lastN}`);
    expect(inFlight, 'kills landed while a save was on the wire').toBeGreaterThanOrEqual(3);
    expect(lastN, 'the drivers made progress across the kills').toBeGreaterThan(12);
    const holder = await fresh().lockHolder();
    expect(holder?.fence).toBe(12);
  });
});

describe('a bucket that does not exist', () => {
  it('is named in a UsageError (exit 2), and nothing is written', async () => {
    const s = store({ bucket: 'no-such-bucket-here' });
    const calls = [() => s.load(), () => s.save({ step: 0, weights: {} }), () => s.acquireLock(actor(1), 30_000), () => s.postRequest({ id: 'x', kind: 'pause', by: actor(1), at: 'now' }), () => s.audit.append({ actor: 'a', action: 'b' }), () => s.hasRequests(), () => s.lockHolder()];
    for (const call of calls) {
      const error = await failure(call());
      expect(error).toBeInstanceOf(UsageError);
      expect((error as UsageError).exitCode).toBe(2);
      expect(error.message).toMatch(/^the state bucket no-such-bucket-here does not exist \(S3 \w+ on s3:\/\/no-such-bucket-here\/cutover\/patient-api\/.*\); nothing was written$/);
    }
    expect((await s3.send(new ListBucketsCommand({}))).Buckets?.map((b) => b.Name)).toEqual([BUCKET]);
    expect(await keys('')).toEqual([]);
  });
});

describe('the CLI on s3 state', () => {
  function project(bucket = BUCKET): string {
    const dir = mkdtempSync(join(tmpdir(), 'cutover-s3-cli-'));
    made.push(dir);
    const file = join(dir, 'deploy.yaml');
    writeFileSync(file, `service: patient-api
stable: v1
versions:
  v1: { endpoints: ["127.0.0.1:9001"] }
  v2: { endpoints: ["127.0.0.1:9002"] }
router: { type: none }
aws: { endpointUrl: ${moto.url}, region: ${REGION} }
state: { type: s3, bucket: ${bucket} }
strategy:
  canary:
    steps:
      - { weight: 10, hold: 300ms }
      - { weight: 50, hold: 300ms }
      - { weight: 100 }
`);
    return file;
  }

  it('deploy promote, status and history keep their record in the bucket', async () => {
    const file = project();
    const promote = await runCli(['promote', '--to', 'v2', '-f', file, '-o', 'json']);
    expect(promote.code, promote.stderr).toBe(0);
    expect(promote.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string }).at(-1)).toMatchObject({ event: 'done', phase: 'promoted' });

    const status = await runCli(['status', '-f', file, '-o', 'json']);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout.trim().split('\n')[0]!)).toMatchObject({ phase: 'promoted', weights: { v2: 100 } });

    const history = await runCli(['history', '-f', file]);
    expect(history.code, history.stderr).toBe(0);
    expect(history.stdout).toMatch(/chain verified: \d+ records/);

    const stored = await keys();
    expect(stored).toContain(`${PREFIX}state.json`);
    expect(stored).toContain(`${PREFIX}lock.json`);
    expect(stored).toContain(`${PREFIX}audit/000000000001.json`);
    expect(JSON.parse((await rawObject(`${PREFIX}lock.json`))!.body)).toMatchObject({ released: true, fence: 1 });
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}state.json` }));
    expect(head.ContentType).toBe('application/json');
  });

  it('deploy iam-policy prints the least-privilege statements for the bucket and prefix', async () => {
    const run = await runCli(['iam-policy', '-f', project()]);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({
      Version: '2012-10-17',
      Statement: [
        { Sid: 'StateObjects', Effect: 'Allow', Action: ['s3:GetObject', 's3:GetObjectVersion', 's3:PutObject', 's3:DeleteObject'], Resource: [`arn:aws:s3:::${BUCKET}/${PREFIX}*`] },
        { Sid: 'ListStateObjects', Effect: 'Allow', Action: ['s3:ListBucket', 's3:ListBucketVersions'], Resource: [`arn:aws:s3:::${BUCKET}`], Condition: { StringLike: { 's3:prefix': [`${PREFIX}*`] } } },
        { Sid: 'StateBucketVersioning', Effect: 'Allow', Action: ['s3:GetBucketVersioning'], Resource: [`arn:aws:s3:::${BUCKET}`] },
      ],
    });
  });

  it('a bucket that does not exist: exit 2 naming it, nothing written', async () => {
    const run = await runCli(['promote', '--to', 'v2', '-f', project('no-such-bucket-here')]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('the state bucket no-such-bucket-here does not exist');
    expect((await s3.send(new ListBucketsCommand({}))).Buckets?.map((b) => b.Name)).toEqual([BUCKET]);
    expect(await keys('')).toEqual([]);
  });
});
