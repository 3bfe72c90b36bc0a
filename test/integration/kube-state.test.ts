/**
 * The kubernetes state backend against the real control plane: compare-and-swap on the state,
 * corrupt state refused and left alone, the Lease lock under contention and takeover, operator
 * requests, the segmented, bounded, archivable audit log, and its chain head kept on the Lease:
 * a log rewritten or cut by someone who may write ConfigMaps but not the Lease is caught.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LockedError, OperationError, UsageError } from '../../src/errors.js';
import type { KubeClient, KubeObject } from '../../src/kube/client.js';
import { connectKube } from '../../src/kube/connect.js';
import { GENESIS_HASH, hashRecord, verifyChain } from '../../src/state/chain.js';
import { KubeStateStore, type KubeStateStoreOptions } from '../../src/state/kubernetes/store.js';
import type { Actor, AuditRecord, OperatorRequest } from '../../src/state/store.js';
import { runCli } from '../helpers/cli.js';
import { testCluster, type TestCluster } from '../helpers/cluster.js';

let cluster: TestCluster;
const NAME = 'cutover-patient-api';
const made: string[] = [];

beforeAll(async () => {
  cluster = await testCluster();
}, 240_000);
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

interface State {
  step: number;
  weights: Record<string, number>;
}

const validate = (value: unknown): State => {
  const s = value as Partial<State> | null;
  if (!s || typeof s.step !== 'number') throw new Error('expected { step, weights }');
  return s as State;
};

function store(ns: string, opts: Partial<KubeStateStoreOptions<State>> = {}, kubeconfig = cluster.kubeconfig): KubeStateStore<State> {
  return new KubeStateStore<State>(() => connectKube({ kubeconfig, namespace: ns }), { name: NAME, validate, ...opts });
}

const actor = (i: number): Actor => ({ owner: `driver${i}@host${i}`, pid: 4200 + i, host: `host${i}` });
const entry = (action: string, i = 0, pad = 0) => ({ actor: 'driver1@host1', action, rolloutId: 'r1', detail: { i, pad: 'x'.repeat(pad) } });
const failure = (p: Promise<unknown>): Promise<Error> => p.then(() => { throw new Error('expected a failure'); }, (e: unknown) => e as Error);

interface RawConfigMap {
  metadata: { resourceVersion: string; annotations?: Record<string, string> };
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}
async function maybeConfigMap(ns: string, name: string): Promise<RawConfigMap | undefined> {
  const { status, body } = await cluster.api<RawConfigMap>('GET', `/api/v1/namespaces/${ns}/configmaps/${name}`, undefined, { allow: [404] });
  return status === 404 ? undefined : body;
}
const configMap = async (ns: string, name: string): Promise<RawConfigMap> => (await cluster.api<RawConfigMap>('GET', `/api/v1/namespaces/${ns}/configmaps/${name}`)).body;
const segmentName = (n: number) => `${NAME}-audit-${String(n).padStart(4, '0')}`;
/** The head the store keeps on its Lease, as stored. */
async function keptHead(ns: string): Promise<{ seq: number; hash: string; archived?: { seq: number; hash: string } } | undefined> {
  const lease = (await cluster.api<{ metadata: { annotations?: Record<string, string> } }>('GET', `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/${NAME}`)).body;
  const text = lease.metadata.annotations?.['cutover.dev/audit-head'];
  return text === undefined ? undefined : JSON.parse(text);
}

/** A deploy.yaml for the CLI on the cluster, in its own folder. */
function project(ns: string, state: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'cutover-kstate-'));
  made.push(dir);
  const file = join(dir, 'deploy.yaml');
  writeFileSync(file, `service: patient-api
stable: v1
versions:
  v1: { endpoints: ["127.0.0.1:9001"] }
  v2: { endpoints: ["127.0.0.1:9002"] }
router: { type: none }
kubernetes: { kubeconfig: ${cluster.kubeconfig}, namespace: ${ns} }
state: ${state}
`);
  return file;
}
const lastJson = (stdout: string) => JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;

describe('state', () => {
  it('round-trips, and a save over a newer write is refused with LockedError', async () => {
    const ns = await cluster.namespace('state');
    const first = store(ns);
    expect(await first.load()).toBeUndefined();
    await first.save({ step: 0, weights: { v1: 100 } });
    expect(await store(ns).load()).toEqual({ step: 0, weights: { v1: 100 } });
    await first.save({ step: 1, weights: { v1: 90, v2: 10 } });

    const second = store(ns);
    expect(await second.load()).toEqual({ step: 1, weights: { v1: 90, v2: 10 } });
    await second.save({ step: 2, weights: { v1: 50, v2: 50 } });

    const error = await failure(first.save({ step: 2, weights: { v1: 75, v2: 25 } }));
    expect(error).toBeInstanceOf(LockedError);
    expect(error.message).toMatch(new RegExp(`the rollout state in ConfigMap ${ns}/${NAME} changed since this process read it`));
    expect(await store(ns).load()).toEqual({ step: 2, weights: { v1: 50, v2: 50 } });
    // Still refused until it reads again: it never retries over the newer write.
    await expect(first.save({ step: 3, weights: {} })).rejects.toBeInstanceOf(LockedError);
    expect(await first.load()).toEqual({ step: 2, weights: { v1: 50, v2: 50 } });
    await first.save({ step: 3, weights: { v2: 100 } });
    expect(await second.load()).toEqual({ step: 3, weights: { v2: 100 } });
  });

  it('of two stores that both saw no state, the second to create it gets LockedError', async () => {
    const ns = await cluster.namespace('state');
    const [a, b] = [store(ns), store(ns)];
    expect(await a.load()).toBeUndefined();
    expect(await b.load()).toBeUndefined();
    await a.save({ step: 0, weights: { v1: 100 } });
    await expect(b.save({ step: 0, weights: { v1: 100 } })).rejects.toBeInstanceOf(LockedError);
  });

  it('a corrupt state is refused with UsageError and left byte for byte', async () => {
    const ns = await cluster.namespace('corrupt');
    const text = '{"step": 3, "weights": {"v1": 90, "v2"';
    await cluster.api('POST', `/api/v1/namespaces/${ns}/configmaps`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: NAME }, data: { 'state.json': text } });
    const before = await configMap(ns, NAME);
    const s = store(ns);
    const error = await failure(s.load());
    expect(error).toBeInstanceOf(UsageError);
    expect(error.message).toMatch(new RegExp(`^state.json in ConfigMap ${ns}/${NAME} is not valid JSON .*; it was left untouched$`));
    // Neither this store after the refused load nor a fresh one overwrites it.
    await expect(s.save({ step: 0, weights: {} })).rejects.toBeInstanceOf(UsageError);
    await expect(store(ns).save({ step: 0, weights: {} })).rejects.toBeInstanceOf(UsageError);
    const after = await configMap(ns, NAME);
    expect(after.data).toEqual({ 'state.json': text });
    expect(after.metadata.resourceVersion).toBe(before.metadata.resourceVersion);

    await cluster.api('PUT', `/api/v1/namespaces/${ns}/configmaps/${NAME}`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: NAME }, data: { 'state.json': '{"steps": 1}' } });
    expect((await failure(store(ns).load())).message).toMatch(/does not hold a valid rollout state \(expected \{ step, weights \}\); it was left untouched/);
  });

  it('keeps an org registry of 10,000 pins (gzipped) and refuses a document too large with OperationError', async () => {
    const ns = await cluster.namespace('docs');
    const pins = Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`org-${String(i).padStart(5, '0')}`, { version: 'v2', since: new Date(1.7e12 + i).toISOString(), by: 'alice@laptop', generation: i }]));
    const registry = { schema: 1, pins };
    await store(ns).saveDoc('orgs', registry);
    expect(await store(ns).loadDoc('orgs', (v) => v)).toEqual(registry);
    const object = await configMap(ns, `${NAME}-orgs`);
    expect(Object.keys(object.binaryData ?? {})).toEqual(['orgs.json.gz']);
    // A small document stays plain JSON, readable with kubectl.
    await store(ns).saveDoc('notes', { hello: 'world' });
    expect((await configMap(ns, `${NAME}-notes`)).data).toEqual({ 'notes.json': '{\n  "hello": "world"\n}\n' });

    const noise = { blob: randomBytes(1_200_000).toString('base64') };
    const error = await failure(store(ns).saveDoc('orgs', noise));
    expect(error).toBeInstanceOf(OperationError);
    expect(error.message).toMatch(new RegExp(`^the orgs document \\(ConfigMap ${ns}/${NAME}-orgs\\) is too large for a ConfigMap: .* MiB even gzipped, over the 900.0 KiB one object can hold; nothing was written$`));
    expect(await store(ns).loadDoc('orgs', (v) => v)).toEqual(registry);
  });
});

describe('lock', () => {
  it('of 10 stores acquiring at once exactly one wins; the nine others are told who holds it', async () => {
    const ns = await cluster.namespace('lock');
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => store(ns).acquireLock(actor(i), 30_000)));
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(9);
    const winner = (won[0] as PromiseFulfilledResult<Awaited<ReturnType<KubeStateStore<State>['acquireLock']>>>).value.info;
    for (const { reason } of lost) {
      expect(reason).toBeInstanceOf(LockedError);
      expect((reason as Error).message).toMatch(new RegExp(`^locked by ${winner.owner} \\(pid ${winner.pid} on ${winner.host}\\) since .*; lease renewed at .*, expires at .* \\(Lease ${ns}/${NAME}\\)$`));
    }
    expect(await store(ns).lockHolder()).toEqual(winner);
  });

  it('an expired lease is taken over; the old holder then loses renew and its release leaves the new one', async () => {
    const ns = await cluster.namespace('lock');
    const old = await store(ns).acquireLock(actor(1), 30_000);
    await expect(store(ns).acquireLock(actor(2), 30_000)).rejects.toBeInstanceOf(LockedError);
    // A store whose clock is a minute ahead sees the 30 s lease as expired.
    const later = store(ns, { clock: () => Date.now() + 60_000 });
    const taker = await later.acquireLock(actor(2), 30_000);
    expect(taker.info.owner).toBe('driver2@host2');
    // The fencing token is the Lease's transitions counted from 1: the taker's is greater.
    expect([old.info.fence, taker.info.fence]).toEqual([1, 2]);

    const lease = (await cluster.api<{ spec: Record<string, unknown>; metadata: { annotations: Record<string, string> } }>('GET', `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/${NAME}`)).body;
    expect(lease.spec).toMatchObject({ holderIdentity: `driver2@host2/4202/${taker.info.token}`, leaseDurationSeconds: 30, leaseTransitions: 1 });
    expect(lease.spec.renewTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(lease.metadata.annotations).toMatchObject({ 'cutover.dev/owner': 'driver2@host2', 'cutover.dev/pid': '4202', 'cutover.dev/host': 'host2' });

    const lost = await failure(old.renew());
    expect(lost).toBeInstanceOf(LockedError);
    expect(lost.message).toMatch(/^lock lost: taken over by driver2@host2 \(pid 4202 on host2\) since /);
    await old.release();
    expect((await store(ns).lockHolder())?.token).toBe(taker.info.token);

    const holder = (await store(ns).lockHolder())!;
    expect(Date.parse(holder.leaseExpiresAt) - Date.parse(holder.renewedAt)).toBe(30_000);
    const renewedBefore = Date.parse(taker.info.renewedAt);
    await taker.renew();
    expect(Date.parse(taker.info.renewedAt)).toBeGreaterThanOrEqual(renewedBefore);
  });

  it('of 10 stores taking over the same expired lease at once exactly one wins', async () => {
    const ns = await cluster.namespace('lock');
    await store(ns).acquireLock(actor(0), 30_000);
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => store(ns, { clock: () => Date.now() + 60_000 }).acquireLock(actor(i + 1), 30_000)));
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    const winner = (won[0] as PromiseFulfilledResult<Awaited<ReturnType<KubeStateStore<State>['acquireLock']>>>).value.info;
    for (const r of results) if (r.status === 'rejected') expect(String(r.reason)).toContain(`locked by ${winner.owner} (pid ${winner.pid}`);
    expect((await store(ns).lockHolder())?.token).toBe(winner.token);
  });

  it('a short lease expires on its own: 1 s later the next driver takes it', async () => {
    const ns = await cluster.namespace('lock');
    await store(ns).acquireLock(actor(1), 1_000);
    await expect(store(ns).acquireLock(actor(2), 1_000)).rejects.toBeInstanceOf(LockedError);
    await new Promise((r) => setTimeout(r, 1_100));
    expect((await store(ns).acquireLock(actor(2), 1_000)).info.owner).toBe('driver2@host2');
  });

  it('release lets the next driver in at once', async () => {
    const ns = await cluster.namespace('lock');
    const held = await store(ns).acquireLock(actor(1), 30_000);
    await expect(store(ns).acquireLock(actor(2), 30_000)).rejects.toBeInstanceOf(LockedError);
    await held.release();
    expect(await store(ns).lockHolder()).toBeUndefined();
    const next = await store(ns).acquireLock(actor(2), 30_000);
    expect((await store(ns).lockHolder())?.owner).toBe('driver2@host2');
    await held.release(); // no longer ours: a no-op
    expect((await store(ns).lockHolder())?.token).toBe(next.info.token);
  });
});

describe('operator requests', () => {
  const request = (id: string, kind: OperatorRequest['kind']): OperatorRequest => ({ id, kind, by: actor(9), at: new Date().toISOString() });

  it('are taken once, oldest first; unreadable ones are set aside', async () => {
    const ns = await cluster.namespace('requests');
    const s = store(ns);
    expect(await s.hasRequests()).toBe(false);
    expect(await s.takeRequests()).toEqual([]);
    for (const [id, kind] of [['r1', 'pause'], ['r2', 'resume'], ['r3', 'abort']] as const) await s.postRequest(request(id, kind));
    expect(await store(ns).hasRequests()).toBe(true);
    expect((await store(ns).takeRequests()).map((r) => `${r.id}:${r.kind}`)).toEqual(['r1:pause', 'r2:resume', 'r3:abort']);
    expect(await s.hasRequests()).toBe(false);
    expect(await s.takeRequests()).toEqual([]);

    const cm = await configMap(ns, `${NAME}-requests`);
    await cluster.api('PUT', `/api/v1/namespaces/${ns}/configmaps/${NAME}-requests`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `${NAME}-requests`, resourceVersion: cm.metadata.resourceVersion }, data: { '000000000000001-x': 'not json' } });
    expect(await s.hasRequests()).toBe(true);
    expect(await s.takeRequests()).toEqual([]);
    expect(await s.hasRequests()).toBe(false);
    expect((await configMap(ns, `${NAME}-requests`)).data).toEqual({ '000000000000001-x.broken': 'not json' });
  });

  it('posted by many at once, none is lost and none is taken twice', async () => {
    const ns = await cluster.namespace('requests');
    await Promise.all(Array.from({ length: 12 }, (_, i) => store(ns).postRequest(request(`p${i}`, 'pause'))));
    const takers = await Promise.all([store(ns).takeRequests(), store(ns).takeRequests(), store(ns).takeRequests()]);
    expect(takers.flat().map((r) => r.id).sort()).toEqual(Array.from({ length: 12 }, (_, i) => `p${i}`).sort());
  });
});

describe('audit log', () => {
  it('chains records across segments, from several appenders at once, and verifies', async () => {
    const ns = await cluster.namespace('audit');
    const stores = [0, 1, 2].map(() => store(ns, { auditSegmentBytes: 2048 }));
    await stores[0]!.audit.append(entry('rollout.started'));
    await Promise.all(stores.map(async (s, k) => {
      for (let i = 0; i < 10; i++) await s.audit.append(entry('rollout.step', k * 100 + i, 100));
    }));
    const records = await store(ns).audit.read();
    expect(records.map((r) => r.seq)).toEqual(Array.from({ length: 31 }, (_, i) => i + 1));
    expect(records.filter((r) => r.action === 'rollout.step')).toHaveLength(30);
    expect(await store(ns).audit.verify()).toMatchObject({ ok: true, records: 31, head: { ok: true, seq: 31 } });
    expect(await configMap(ns, `${NAME}-audit-0002`)).toMatchObject({ metadata: { annotations: { 'cutover.dev/sealed': 'true' } } });
    expect(await configMap(ns, `${NAME}-audit-0003`)).toBeDefined();
  });

  it('verify names a record edited in its ConfigMap', async () => {
    const ns = await cluster.namespace('audit');
    const s = store(ns, { auditSegmentBytes: 1024 });
    for (let i = 1; i <= 12; i++) await s.audit.append(entry('rollout.step', i, 50));
    const records = await s.audit.read();
    const target = records[7]!;
    let segment = 0;
    for (let n = 1; ; n++) {
      if ((await configMap(ns, `${NAME}-audit-${String(n).padStart(4, '0')}`)).data?.['audit.jsonl']?.includes(`"hash":"${target.hash}"`)) {
        segment = n;
        break;
      }
    }
    expect(segment).toBeGreaterThan(1);
    const name = `${NAME}-audit-${String(segment).padStart(4, '0')}`;
    const cm = await configMap(ns, name);
    const edited = cm.data!['audit.jsonl']!.replace(`"i":8,`, `"i":80,`);
    expect(edited).not.toBe(cm.data!['audit.jsonl']);
    await cluster.api('PUT', `/api/v1/namespaces/${ns}/configmaps/${name}`, { ...cm, data: { 'audit.jsonl': edited } });
    expect(await store(ns).audit.verify()).toMatchObject({ ok: false, records: 12, brokenAt: 8, reason: 'record 8: its hash does not match its content: the record was edited' });
  });

  it('at the bound refuses rollout.started and still writes every other record', async () => {
    const ns = await cluster.namespace('bound');
    const s = store(ns, { auditMaxBytes: 16_384, auditSegmentBytes: 4096 });
    await s.audit.append(entry('rollout.started'));
    for (let i = 0; i < 20; i++) await s.audit.append(entry('rollout.step', i, 900));
    const error = await failure(store(ns, { auditMaxBytes: 16_384 }).audit.append(entry('rollout.started')));
    expect(error).toBeInstanceOf(UsageError);
    expect(error.message).toMatch(new RegExp(`^audit log in ConfigMaps ${NAME}-audit-\\* is full \\(\\d+\\.\\d KiB of 16\\.0 KiB\\): nothing was started$`));
    expect((error as UsageError).hint).toBe('archive it: deploy history --archive FILE');
    // A rollout already running keeps its records: written past the bound.
    await s.audit.append({ actor: 'driver1@host1', action: 'rollout.rolled_back', rolloutId: 'r1' });
    const records = await s.audit.read();
    expect(records).toHaveLength(22);
    expect(records.at(-1)?.action).toBe('rollout.rolled_back');
    expect(await s.audit.verify()).toMatchObject({ ok: true, records: 22, head: { ok: true, seq: 22 } });
  });

  it('archives every record, verifies what remains from the anchor, and lifts the bound', async () => {
    const ns = await cluster.namespace('archive');
    const s = store(ns, { auditMaxBytes: 16_384, auditSegmentBytes: 4096 });
    for (let i = 0; i < 24; i++) await s.audit.append(entry(i === 0 ? 'rollout.started' : 'rollout.step', i, 900));
    await expect(s.audit.append(entry('rollout.started'))).rejects.toBeInstanceOf(UsageError);
    const before = await s.audit.read();

    // Another process keeps appending while the archive runs; none of its records may be lost.
    const appender = store(ns, { auditSegmentBytes: 4096 });
    const appending = (async () => {
      for (let i = 0; i < 8; i++) await appender.audit.append(entry('gate.verdict', i, 200));
    })();
    let archived: AuditRecord[] = [];
    const result = await s.audit.archive!(async (records) => {
      archived = records;
    });
    await appending;
    expect(result).toEqual({ records: archived.length, lastSeq: archived.at(-1)!.seq, lastHash: archived.at(-1)!.hash });
    expect(archived.slice(0, 24)).toEqual(before);
    expect(verifyChain(archived)).toEqual({ ok: true, records: archived.length });

    const remaining = await store(ns).audit.read();
    expect(remaining[0]?.seq).toBe(result.lastSeq + 1);
    expect(remaining[0]?.prev).toBe(result.lastHash);
    expect([...archived, ...remaining].map((r) => r.seq)).toEqual(Array.from({ length: 24 + 8 + 1 }, (_, i) => i + 1));
    expect([...archived, ...remaining].filter((r) => r.action === 'gate.verdict')).toHaveLength(8);
    expect(remaining.find((r) => r.action === 'audit.archived')?.detail).toEqual(result);
    expect(await store(ns).audit.verify()).toMatchObject({ ok: true, records: remaining.length, head: { ok: true, seq: remaining.at(-1)!.seq } });
    expect(await maybeConfigMap(ns, `${NAME}-audit-0001`)).toBeUndefined();
    // The head on the Lease knows where the archive ended: the log may start there, not later.
    expect((await keptHead(ns))?.archived).toEqual({ seq: result.lastSeq, hash: result.lastHash });

    await store(ns, { auditMaxBytes: 16_384 }).audit.append(entry('rollout.started'));
    expect(await store(ns).audit.verify()).toMatchObject({ ok: true });
  });
});

describe('audit head on the lock Lease', () => {
  /** Every record in the segments, by segment. */
  async function segments(ns: string): Promise<{ name: string; records: AuditRecord[] }[]> {
    const out: { name: string; records: AuditRecord[] }[] = [];
    for (let n = 1; ; n++) {
      const cm = await maybeConfigMap(ns, segmentName(n));
      if (!cm) return out;
      out.push({ name: segmentName(n), records: (cm.data?.['audit.jsonl'] ?? '').split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditRecord) });
    }
  }

  /** Put `records` back into the segments they came from, each segment keeping its count, as `kube` (through its own identity). */
  async function writeBack(kube: KubeClient, ns: string, layout: { name: string; records: AuditRecord[] }[], records: AuditRecord[]): Promise<void> {
    let next = 0;
    for (const segment of layout) {
      const mine = records.slice(next, next + segment.records.length);
      next += segment.records.length;
      const path = `/api/v1/namespaces/${ns}/configmaps/${segment.name}`;
      const current = (await kube.get<KubeObject>(path))!;
      await kube.replace(path, { ...current, data: { 'audit.jsonl': mine.map((r) => `${JSON.stringify(r)}\n`).join('') } });
    }
  }

  /** Record `seq` changed, and every hash from it on recomputed: the chain alone still verifies. */
  function rewrite(records: AuditRecord[], seq: number): AuditRecord[] {
    const out = records.map((r) => ({ ...r }));
    const at = out.findIndex((r) => r.seq === seq);
    out[at] = { ...out[at]!, actor: 'someone-else@host', detail: { ...out[at]!.detail, note: 'rewritten' } };
    for (let i = at; i < out.length; i++) {
      const body = { ...out[i]!, prev: i === 0 ? GENESIS_HASH : out[i - 1]!.hash };
      out[i] = { ...body, hash: hashRecord(body) };
    }
    return out;
  }

  it('is kept beside a holding after every append: renewals and appends at once lose nothing, and a clean log verifies against it', async () => {
    const ns = await cluster.namespace('head');
    const s = store(ns, { auditSegmentBytes: 1024 });
    const lock = await s.acquireLock(actor(1), 30_000);
    await Promise.all([
      (async () => {
        for (let i = 1; i <= 12; i++) await s.audit.append(entry('rollout.step', i, 50));
      })(),
      (async () => {
        for (let i = 0; i < 12; i++) await lock.renew();
      })(),
    ]);
    const records = await s.audit.read();
    expect(await keptHead(ns)).toEqual({ seq: 12, hash: records.at(-1)!.hash, archived: { seq: 0, hash: GENESIS_HASH } });
    expect((await store(ns).lockHolder())?.token).toBe(lock.info.token);
    expect(await store(ns).audit.verify()).toEqual({
      ok: true,
      records: 12,
      head: { where: `Lease ${ns}/${NAME} (annotation cutover.dev/audit-head)`, ok: true, compared: 1, seq: 12, uncovered: 0, proves: expect.stringContaining('nobody who may write ConfigMaps in the namespace but not that Lease'), notes: [] },
    });
    await lock.release();
    expect((await keptHead(ns))?.seq).toBe(12);
    expect(await store(ns).lockHolder()).toBeUndefined();
    // The Lease the head lives on counts the next holder's fence on from the first.
    expect((await store(ns).acquireLock(actor(2), 30_000)).info.fence).toBe(2);

    const file = project(ns, '{ type: kubernetes }');
    const run = await runCli(['history', '--verify', '-f', file]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`chain verified: 12 records\nthe head kept in Lease ${ns}/${NAME} (annotation cutover.dev/audit-head) is on the chain: record 12\n`);
    expect(run.stdout).toMatch(/Whoever may also update the Lease — the Role `deploy rbac` prints, the default edit and admin roles — could have rewritten both\n$/);

    // An auditor who may read ConfigMaps but not Leases (as the default view role) sees the chain, and why no more.
    const auditor = await cluster.restrictedKubeconfig(ns, 'auditor', [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }]);
    const read = await runCli(['history', '-f', file, '--kubeconfig', auditor]);
    expect(read.code, read.stderr).toBe(0);
    expect(read.stdout).toContain(`chain verified: 12 records\nthe head could not be read (reading Lease ${ns}/${NAME}: forbidden: `);
    expect(read.stdout).toContain('): nothing beyond the chain is proven\n');
  });

  it('a log rewritten by a ConfigMap writer, every hash recomputed, fails history --verify at the head (exit 1, plain and JSON); the next append leaves the head', async () => {
    const ns = await cluster.namespace('head');
    const s = store(ns, { auditSegmentBytes: 1024 });
    for (let i = 1; i <= 8; i++) await s.audit.append(entry('rollout.step', i, 50));
    const file = project(ns, '{ type: kubernetes }');
    expect((await runCli(['history', '--verify', '-f', file])).code).toBe(0);

    // Someone who may write ConfigMaps in the namespace, but not the Lease.
    const writer = await connectKube({ kubeconfig: await cluster.restrictedKubeconfig(ns, 'configmap-writer', [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'update'] }]), namespace: ns });
    const layout = await segments(ns);
    expect(layout.length).toBeGreaterThan(2);
    const changed = rewrite(layout.flatMap((l) => l.records), 3);
    await writeBack(writer, ns, layout, changed);
    const leasePath = `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/${NAME}`;
    await expect(writer.get(leasePath)).rejects.toMatchObject({ status: 403 });
    expect(await store(ns).audit.read()).toEqual(changed);
    expect(verifyChain(changed)).toEqual({ ok: true, records: 8 });

    const plain = await runCli(['history', '--verify', '-f', file]);
    expect(plain.code).toBe(1);
    expect(plain.stdout).toContain(
      `the log disagrees with its kept head at record 8: record 8: its hash is not the one the head kept in Lease ${ns}/${NAME} (annotation cutover.dev/audit-head) kept for it: one of records 1–8 was changed and the hashes after it recomputed\n`,
    );
    const json = await runCli(['history', '--verify', '-f', file, '-o', 'json']);
    expect(json.code).toBe(1);
    expect(lastJson(json.stdout)).toMatchObject({ event: 'verify', ok: false, brokenAt: 8, head: { ok: false, seq: 8, brokenAt: 8 } });

    // The driver's next append does not move the head onto the rewritten chain: the evidence stays,
    // and no new rollout is recorded onto it.
    await store(ns).audit.append(entry('rollout.step', 9));
    expect((await keptHead(ns))?.hash).toBe(layout.at(-1)!.records.at(-1)!.hash);
    expect(await store(ns).audit.verify()).toMatchObject({ ok: false, brokenAt: 8 });
    const promote = await runCli(['promote', '--to', 'v2', '-y', '-f', file]);
    expect([promote.code, promote.stderr]).toEqual([1, expect.stringContaining('the audit log does not verify (record 8: ')]);
  });

  it('a log cut short fails at its first missing record; records removed from its start as if archived are found', async () => {
    const ns = await cluster.namespace('head');
    const s = store(ns, { auditSegmentBytes: 1024 });
    for (let i = 1; i <= 10; i++) await s.audit.append(entry('rollout.step', i, 50));
    // The head made the Lease before anyone held it: the first holder's fence is still 1.
    const held = await store(ns).acquireLock(actor(1), 30_000);
    expect(held.info.fence).toBe(1);
    await held.release();
    const layout = await segments(ns);
    const all = layout.flatMap((l) => l.records);
    // The last two records removed, from whichever segments hold them.
    const admin = await connectKube({ kubeconfig: cluster.kubeconfig, namespace: ns });
    await writeBack(admin, ns, layout, all.slice(0, -2));
    expect(verifyChain(await store(ns).audit.read())).toEqual({ ok: true, records: 8 });
    const file = project(ns, '{ type: kubernetes }');
    for (const format of [[], ['-o', 'json']]) {
      const run = await runCli(['history', '--verify', '-f', file, ...format]);
      expect(run.code).toBe(1);
      const reason = `record 9: missing: the log ends at record 8, but the head kept in Lease ${ns}/${NAME} (annotation cutover.dev/audit-head) names record 10: records 9–10 were removed`;
      if (format.length) expect(lastJson(run.stdout)).toMatchObject({ event: 'verify', ok: false, brokenAt: 9, reason });
      else expect(run.stdout).toContain(`the log disagrees with its kept head at record 9: ${reason}\n`);
    }
    await writeBack(admin, ns, layout, all);
    expect(await store(ns).audit.verify()).toMatchObject({ ok: true, records: 10 });

    // The first segment removed, and the second made to look like the start after an archive.
    const first = layout[0]!;
    const through = first.records.at(-1)!;
    await cluster.api('DELETE', `/api/v1/namespaces/${ns}/configmaps/${first.name}`);
    const second = await configMap(ns, layout[1]!.name);
    await cluster.api('PUT', `/api/v1/namespaces/${ns}/configmaps/${layout[1]!.name}`, {
      ...second,
      metadata: { ...second.metadata, annotations: { ...second.metadata.annotations, 'cutover.dev/archived-through-seq': String(through.seq), 'cutover.dev/archived-through-hash': through.hash } },
    });
    const index = await configMap(ns, `${NAME}-audit-index`);
    await cluster.api('PUT', `/api/v1/namespaces/${ns}/configmaps/${NAME}-audit-index`, {
      ...index,
      metadata: { ...index.metadata, annotations: { ...index.metadata.annotations, 'cutover.dev/first-segment': '2', 'cutover.dev/first-offset': second.metadata.annotations?.['cutover.dev/offset'] ?? '0' } },
    });
    const remaining = await store(ns).audit.read();
    expect(remaining[0]?.seq).toBe(through.seq + 1);
    expect(verifyChain(remaining, { seq: through.seq, hash: through.hash })).toMatchObject({ ok: true });
    expect(await store(ns).audit.verify()).toMatchObject({
      ok: false,
      brokenAt: 1,
      reason: `record 1: records 1–${through.seq} are gone from the log, but Lease ${ns}/${NAME} (annotation cutover.dev/audit-head) records no archive: they were removed, not archived`,
    });
  });
});

describe('audit head and archive', () => {
  it('an archive over records the head did not cover yet moves it up to the anchor, and appends keep it after', async () => {
    const ns = await cluster.namespace('head');
    const s = store(ns, { auditSegmentBytes: 1024 });
    for (let i = 1; i <= 6; i++) await s.audit.append(entry('rollout.step', i, 50));
    const records = await s.audit.read();
    // As a writer stopped between its record and its head leaves it: the head at record 4.
    const path = `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/${NAME}`;
    const lease = (await cluster.api<{ metadata: { annotations: Record<string, string> } }>('GET', path)).body;
    const behind = { seq: 4, hash: records[3]!.hash, archived: { seq: 0, hash: GENESIS_HASH } };
    await cluster.api('PUT', path, { ...lease, metadata: { ...lease.metadata, annotations: { ...lease.metadata.annotations, 'cutover.dev/audit-head': JSON.stringify(behind) } } });
    expect(await store(ns).audit.verify()).toMatchObject({ ok: true, head: { ok: true, seq: 4, uncovered: 2 } });

    const result = await s.audit.archive!(async () => undefined);
    expect(result).toMatchObject({ records: 6, lastSeq: 6 });
    const anchor = { seq: 6, hash: records[5]!.hash };
    // The archive's own record moved the head on from the anchor.
    expect(await keptHead(ns)).toEqual({ seq: 7, hash: (await s.audit.read()).at(-1)!.hash, archived: anchor });
    await s.audit.append(entry('rollout.step', 8));
    expect(await store(ns).audit.verify()).toMatchObject({ ok: true, records: 2, head: { ok: true, seq: 8, uncovered: 0 } });
  });
});

describe('deploy history --archive', () => {
  it('writes every record to a new file, then the remaining chain verifies', async () => {
    const ns = await cluster.namespace('history');
    const s = store(ns);
    for (let i = 0; i < 5; i++) await s.audit.append(entry('rollout.step', i));
    const file = project(ns, '{ type: kubernetes }');
    const out = join(mkdtempSync(join(tmpdir(), 'cutover-archive-')), 'audit.jsonl');
    made.push(join(out, '..'));
    const archived = await runCli(['history', '-f', file, '--archive', out]);
    expect(archived.stderr).toBe('');
    expect(archived.code).toBe(0);
    expect(archived.stdout).toMatch(new RegExp(`^archived 5 records \\(through record 5\\) to ${out}; `));
    const lines = readFileSync(out, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as AuditRecord);
    expect(lines.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(verifyChain(lines)).toEqual({ ok: true, records: 5 });

    const again = await runCli(['history', '-f', file, '--archive', out]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(`${out} already exists; the archive never overwrites a file`);
    expect(readFileSync(out, 'utf8').trimEnd().split('\n')).toHaveLength(5);

    const history = await runCli(['history', '-f', file]);
    expect(history.code).toBe(0);
    expect(history.stdout).toMatch(/audit\.archived/);
    expect(history.stdout).toMatch(/chain verified: 1 records/);
  });

  it('the local log has no bound: exit 2, nothing written', async () => {
    const file = project('unused', '{ type: local }');
    const out = join(file, '..', 'audit-archive.jsonl');
    const run = await runCli(['history', '-f', file, '--archive', out]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/has no size bound, so there is nothing to archive/);
    expect(existsSync(out)).toBe(false);
  });
});

describe('permissions', () => {
  it('without leases, acquireLock names the missing permission (exit 2)', async () => {
    const ns = await cluster.namespace('rbac');
    const kubeconfig = await cluster.restrictedKubeconfig(ns, 'no-leases', [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'create', 'update', 'delete'] }]);
    const s = store(ns, {}, kubeconfig);
    await s.save({ step: 0, weights: { v1: 100 } });
    // The record lands in its ConfigMap; keeping its head on the Lease is refused, and named.
    const head = await failure(s.audit.append(entry('rollout.started')));
    expect(head).toBeInstanceOf(UsageError);
    expect(head.message).toMatch(new RegExp(`^reading Lease ${ns}/${NAME}: forbidden: .*cannot get resource "leases"`));
    expect(await s.audit.read()).toHaveLength(1);
    const error = await failure(s.acquireLock(actor(1), 30_000));
    expect(error).toBeInstanceOf(UsageError);
    expect(error.message).toMatch(new RegExp(`^reading Lease ${ns}/${NAME}: forbidden: .*cannot get resource "leases" in API group "coordination.k8s.io" in the namespace "${ns}"`));
    expect((error as UsageError).hint).toMatch(/deploy rbac/);
  });

  it('without configmaps, load names the missing permission', async () => {
    const ns = await cluster.namespace('rbac');
    const kubeconfig = await cluster.restrictedKubeconfig(ns, 'no-configmaps', [{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] }]);
    const s = store(ns, {}, kubeconfig);
    await (await s.acquireLock(actor(1), 30_000)).release();
    const error = await failure(s.load());
    expect(error).toBeInstanceOf(UsageError);
    expect(error.message).toMatch(/cannot get resource "configmaps" in API group ""/);
    await expect(s.postRequest({ id: 'x', kind: 'pause', by: actor(1), at: '' })).rejects.toBeInstanceOf(UsageError);
    await expect(s.audit.append(entry('rollout.started'))).rejects.toThrow(/forbidden: .*configmaps/);
  });
});
