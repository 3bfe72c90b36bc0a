/**
 * The `kubernetes` state backend: a service's state in its cluster, for drivers that run in CI
 * or on several laptops and share no disk.
 *
 *   ConfigMap <name>            `state.json`, the rollout state
 *   ConfigMap <name>-<doc>      `<doc>.json`, other documents (the org registry), one object each,
 *                               so each has the whole 1 MiB (gzipped in binaryData when large)
 *   Lease <name>                the driver lock (kube-lock.ts)
 *   ConfigMap <name>-requests   operator requests, one key each
 *   ConfigMaps <name>-audit-*   the hash-chained audit log (kube-audit.ts)
 *
 * Every write is compare-and-swap on the resourceVersion this store last read or wrote. A driver
 * whose lease expired and was taken over therefore cannot overwrite the new driver's state: its
 * next save gets a 409 and stops with LockedError. As with local files, a state that cannot be
 * read is refused and never overwritten — it is the only record of where traffic was left.
 */
import type { KubeClient } from '../../kube/client.js';
import { checkNamespace } from '../../kube/connect.js';
import { LockedError, OperationError, UsageError } from '../../errors.js';
import { KubeAuditLog } from './audit.js';
import { acquireLease, readLeaseHolder, type LeaseRef } from './lock.js';
import {
  backoff, byteLength, configMapPath, configMapsPath, decodeDocument, encodeDocument, isConflict, isNotFound, kubeCall,
  managedLabels, MAX_OBJECT_BYTES, withDocument, type ConfigMap,
} from './objects.js';
import type { Actor, Lock, LockInfo, OperatorRequest, StateStore } from '../store.js';
import { parseRequest } from '../requests.js';

/** Options of the Kubernetes backend. */
export interface KubeStateStoreOptions<S> {
  /** Name of the state ConfigMap and the Lease, and prefix of the other objects. */
  name: string;
  /** Milliseconds since the epoch; injected so lease expiry is testable without waiting. */
  clock?: () => number;
  /** Checks a loaded state and returns it typed; throwing marks it as not a valid state. */
  validate?: (value: unknown) => S;
  /** Bound of the audit log (default 8 MiB); see kube-audit.ts for what happens there. */
  auditMaxBytes?: number;
  /** Record text per audit segment (default 256 KiB); small in tests to cross segments quickly. */
  auditSegmentBytes?: number;
}

/** Requests that could not be parsed keep their key with this suffix: set aside, not lost. */
const SET_ASIDE = '.broken';
/** Names of objects of the store itself, which no document may take. */
const RESERVED_DOCS = new Set(['state', 'lock', 'requests', 'audit']);
/** Rounds of losing a race on the requests ConfigMap before giving up. */
const REQUEST_ATTEMPTS = 10;

/** Posts of this process so far: part of each request's key, so same-millisecond posts keep their order. */
let postedRequests = 0;

/** State, lock, audit log and operator requests of one service, in ConfigMaps and a Lease. */
export class KubeStateStore<S> implements StateStore<S> {
  /** The audit log, in ConfigMaps `<name>-audit-*`. */
  readonly audit: KubeAuditLog;
  private readonly name: string;
  private readonly clock: () => number;
  private readonly validate: (value: unknown) => S;
  private readonly connect: () => Promise<KubeClient>;
  private namespace: string | undefined;
  /**
   * Each ConfigMap as this store last read or wrote it (null: seen absent). A write is based on
   * this version and nothing newer: what changed since is someone else's, and is not overwritten.
   */
  private readonly seen = new Map<string, ConfigMap | null>();

  /** @param connect opens the cluster connection; called on first use, so building a store is free */
  constructor(connect: () => Promise<KubeClient>, opts: KubeStateStoreOptions<S>) {
    if (!/^[a-z0-9]([a-z0-9.-]{0,200}[a-z0-9])?$/.test(opts.name)) {
      throw new UsageError(`state name ${opts.name}: must be a Kubernetes object name of lower-case letters, digits, '-' or '.', at most 202 characters`);
    }
    this.name = opts.name;
    this.clock = opts.clock ?? Date.now;
    this.validate = opts.validate ?? ((value) => value as S);
    let opened: Promise<KubeClient> | undefined;
    // Opened once; a failed attempt is forgotten so the next call tries again.
    this.connect = () => {
      if (!opened) {
        opened = connect().then(async (kube) => {
          await checkNamespace(kube);
          this.namespace = kube.namespace;
          return kube;
        });
        opened.catch(() => (opened = undefined));
      }
      return opened;
    };
    this.audit = new KubeAuditLog(this.connect, {
      name: this.name,
      clock: this.clock,
      ...(opts.auditMaxBytes ? { maxBytes: opts.auditMaxBytes } : {}),
      ...(opts.auditSegmentBytes ? { segmentBytes: opts.auditSegmentBytes } : {}),
    });
  }

  /** `ConfigMap <namespace>/<name>` once connected, for messages. */
  get location(): string {
    return `ConfigMap ${this.namespace ? `${this.namespace}/` : ''}${this.name}`;
  }

  /** The stored state; undefined when there is none; UsageError when it is corrupt. */
  load(): Promise<S | undefined> {
    return this.readDocument(this.name, 'state.json', this.validate, 'a valid rollout state');
  }

  /**
   * Replace the stored state, if it is still the version this store last read or wrote; when
   * another process wrote it since (a driver took over), LockedError and nothing is written.
   */
  save(state: S): Promise<void> {
    return this.writeDocument(this.name, 'state.json', state, 'the rollout state', this.validate);
  }

  /** Another document (`<name>-<doc>`, key `<doc>.json`), read like the state. */
  loadDoc<T>(name: string, validate: (value: unknown) => T): Promise<T | undefined> {
    return this.readDocument(this.docObject(name), `${name}.json`, validate, `a valid ${name} document`);
  }

  /** Replace a document, compare-and-swap like the state. */
  saveDoc<T>(name: string, value: T): Promise<void> {
    return this.writeDocument(this.docObject(name), `${name}.json`, value, `the ${name} document`);
  }

  private docObject(name: string): string {
    if (!/^[a-z][a-z0-9-]{0,40}$/.test(name) || RESERVED_DOCS.has(name) || name.startsWith('audit-')) throw new Error(`not a document name: ${name}`);
    return `${this.name}-${name}`;
  }

  private async readDocument<T>(objectName: string, key: string, validate: (value: unknown) => T, what: string): Promise<T | undefined> {
    const kube = await this.connect();
    const object = await kubeCall(`reading ConfigMap ${kube.namespace}/${objectName}`, () => kube.get<ConfigMap>(configMapPath(kube.namespace, objectName)));
    // Forgotten until it parses: a save must never be based on a version that was refused.
    this.seen.delete(objectName);
    if (!object) {
      this.seen.set(objectName, null);
      return undefined;
    }
    const value = this.parse(object, key, validate, what);
    this.seen.set(objectName, object);
    return value;
  }

  private parse<T>(object: ConfigMap, key: string, validate: (value: unknown) => T, what: string): T | undefined {
    const where = `ConfigMap ${object.metadata.namespace ?? this.namespace}/${object.metadata.name}`;
    const corrupt = (why: string) =>
      new UsageError(
        `${key} in ${where} ${why}; it was left untouched`,
        `restore it from a backup, or move it aside (kubectl get configmap ${object.metadata.name} -o yaml > ${object.metadata.name}.broken.yaml && kubectl delete configmap ${object.metadata.name}) and run \`deploy history\` to see the last recorded step`,
      );
    let text: string | undefined;
    try {
      text = decodeDocument(object, key);
    } catch (error) {
      throw corrupt((error as Error).message);
    }
    if (text === undefined) return undefined;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw corrupt(`is not valid JSON (${(error as Error).message})`);
    }
    try {
      return validate(value);
    } catch (error) {
      throw corrupt(`does not hold ${what} (${(error as Error).message})`);
    }
  }

  private async writeDocument(objectName: string, key: string, value: unknown, what: string, validate: (value: unknown) => unknown = (v) => v): Promise<void> {
    const kube = await this.connect();
    const where = `ConfigMap ${kube.namespace}/${objectName}`;
    const encoded = encodeDocument(key, value, `${what} (${where})`);
    if (!this.seen.has(objectName)) {
      // Never read by this store: based on what is there now, unless that cannot be read.
      const current = await kubeCall(`reading ${where}`, () => kube.get<ConfigMap>(configMapPath(kube.namespace, objectName)));
      if (current) this.parse(current, key, validate, what.replace(/^the /, 'a valid '));
      this.seen.set(objectName, current ?? null);
    }
    const base = this.seen.get(objectName);
    const changed = () =>
      new LockedError(
        `${what} in ${where} changed since this process read it: another driver (or command) wrote it, so nothing was written`,
        'another driver may have taken over this rollout: stop here and run `deploy status` to see where it stands',
      );
    try {
      const written = base
        ? await kubeCall(`writing ${where}`, () => kube.replace<ConfigMap>(configMapPath(kube.namespace, objectName), withDocument(base, key, encoded)), [409, 404])
        : await kubeCall(`creating ${where}`, () => kube.create<ConfigMap>(configMapsPath(kube.namespace), {
          apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: objectName, labels: managedLabels(this.name) }, ...encoded,
        }));
      this.seen.set(objectName, written);
    } catch (e) {
      if (isConflict(e)) throw changed();
      if (base && isNotFound(e)) throw changed();
      throw e;
    }
  }

  /** Take the driver Lease for `leaseMs`, or throw LockedError naming the holder. */
  async acquireLock(actor: Actor, leaseMs: number): Promise<Lock> {
    if (!(leaseMs > 0)) throw new UsageError(`lock lease must be a positive number of milliseconds, got ${leaseMs}`);
    return acquireLease(await this.leaseRef(), actor, leaseMs, this.clock);
  }

  /** The recorded holding, expired or not; undefined when nobody holds the Lease. */
  async lockHolder(): Promise<LockInfo | undefined> {
    return readLeaseHolder(await this.leaseRef());
  }

  private async leaseRef(): Promise<LeaseRef> {
    const kube = await this.connect();
    return { kube, namespace: kube.namespace, name: this.name, store: this.name };
  }

  /** Leave a request for the running driver: one more key in `<name>-requests`. */
  async postRequest(request: OperatorRequest): Promise<void> {
    // Lexical order of keys is arrival order: the zero-padded time, then this process's count.
    const key = [
      String(this.clock()).padStart(15, '0'),
      String(postedRequests++).padStart(9, '0'),
      request.id.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 100),
    ].join('-');
    const value = JSON.stringify(request);
    await this.updateRequests((data) => {
      const next = { ...data, [key]: value };
      if (byteLength(JSON.stringify(next)) > MAX_OBJECT_BYTES) {
        throw new OperationError(`too many operator requests are waiting in ConfigMap ${this.requestsName}: no driver is taking them`, 'run `deploy status`; if no driver runs, delete the ConfigMap');
      }
      return { data: next, result: undefined };
    });
  }

  /** Whether a request is waiting: one small GET, cheap enough to poll during a hold. */
  async hasRequests(): Promise<boolean> {
    const object = await this.readRequests();
    return Object.keys(object?.data ?? {}).some((key) => !key.endsWith(SET_ASIDE));
  }

  /**
   * Take the pending requests, oldest first: they are removed in one compare-and-swap write, so
   * two takers never both act on one request. Unreadable ones are set aside (`<key>.broken`).
   */
  takeRequests(): Promise<OperatorRequest[]> {
    return this.updateRequests((data) => {
      const pending = Object.keys(data).filter((key) => !key.endsWith(SET_ASIDE)).sort();
      if (pending.length === 0) return { result: [] };
      const kept: Record<string, string> = {};
      for (const [key, value] of Object.entries(data)) if (key.endsWith(SET_ASIDE)) kept[key] = value;
      const taken: OperatorRequest[] = [];
      for (const key of pending) {
        const request = parseRequest(data[key]!);
        if (request) taken.push(request);
        else kept[`${key}${SET_ASIDE}`] = data[key]!;
      }
      return { data: kept, result: taken };
    });
  }

  private get requestsName(): string {
    return `${this.name}-requests`;
  }

  private async readRequests(): Promise<ConfigMap | undefined> {
    const kube = await this.connect();
    return kubeCall(`reading ConfigMap ${kube.namespace}/${this.requestsName}`, () => kube.get<ConfigMap>(configMapPath(kube.namespace, this.requestsName)));
  }

  /**
   * Read the requests, let `change` decide, write its data back compare-and-swap. Lost races are
   * retried on a fresh read: a request is one key, so the change re-applies cleanly.
   */
  private async updateRequests<T>(change: (data: Record<string, string>) => { data?: Record<string, string>; result: T }): Promise<T> {
    const kube = await this.connect();
    const where = `ConfigMap ${kube.namespace}/${this.requestsName}`;
    for (let attempt = 0; attempt < REQUEST_ATTEMPTS; attempt++) {
      const current = await this.readRequests();
      const { data, result } = change(current?.data ?? {});
      if (!data) return result;
      try {
        if (current) await kubeCall(`writing ${where}`, () => kube.replace(configMapPath(kube.namespace, this.requestsName), { ...current, data }), [409, 404]);
        else await kubeCall(`creating ${where}`, () => kube.create(configMapsPath(kube.namespace), { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: this.requestsName, labels: managedLabels(this.name) }, data }));
        return result;
      } catch (e) {
        if (!isConflict(e) && !isNotFound(e)) throw e;
        await backoff(attempt);
      }
    }
    throw new OperationError(`could not update ${where}: other processes kept changing it`, 'retry the command');
  }
}
