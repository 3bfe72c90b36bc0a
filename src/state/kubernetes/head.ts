/**
 * Where the Kubernetes audit log keeps its chain head (../head.ts): the annotation
 * `cutover.dev/audit-head` of the lock Lease `<name>`, `{"seq":…,"hash":"…","archived":{…}}`.
 *
 * The log's segments are ConfigMaps, which the Role `deploy rbac` prints must grant in the whole
 * namespace (their names grow with the log); the Lease is granted by name. So whoever may write
 * ConfigMaps there but not that Lease — an application or a CI job with ConfigMap rights — can
 * no longer rewrite or cut the log unseen. Whoever may update the Lease as well (the driver's
 * Role, the default edit and admin roles) still can: only the latest head is kept.
 *
 * Every write is a PUT carrying the resourceVersion just read, like the lock's own; the lock's
 * annotations and spec are carried over untouched, and the lock's writes carry this one over.
 */
import type { KubeClient } from '../../kube/client.js';
import { OperationError, UsageError } from '../../errors.js';
import type { ChainAnchor } from '../chain.js';
import { parseHead, type ChainHead, type KeptHeads } from '../head.js';
import { leaseName, leasePath, type Lease } from './lock.js';
import { backoff, isConflict, isNotFound, kubeCall, managedLabels } from './objects.js';

/** The annotation holding the head. */
export const HEAD_ANNOTATION = 'cutover.dev/audit-head';

/** Rounds of losing the Lease to other writers (renewals, other appenders) before giving up. */
const HEAD_ATTEMPTS = 20;

/** A head as stored: the last record, and the last archived one once the log was archived. */
export type StoredHead = ChainAnchor & { archived?: ChainAnchor };

/** The Lease as read, and the head it keeps. */
export interface LeaseHead {
  lease?: Lease;
  head?: StoredHead;
  /** Why the annotation is not a head, when it is there and is not one. */
  bad?: string;
}

/** The chain head on the lock Lease of one store. */
export class LeaseHeadStore {
  private namespace: string | undefined;

  /** @param name the store's name: the lock Lease's */
  constructor(private readonly connect: () => Promise<KubeClient>, private readonly name: string) {}

  /** `Lease <namespace>/<name>`, for messages. */
  get where(): string {
    return this.namespace ? leaseName({ namespace: this.namespace, name: this.name }) : `Lease ${this.name}`;
  }

  /** The Lease and the head on it. */
  async read(): Promise<LeaseHead> {
    const kube = await this.connect();
    this.namespace = kube.namespace;
    const lease = await kubeCall(`reading ${this.where}`, () => kube.get<Lease>(leasePath(kube, this.name)));
    const text = lease?.metadata.annotations?.[HEAD_ANNOTATION];
    if (!lease || text === undefined) return lease ? { lease } : {};
    const parsed = parseHead(text);
    return 'bad' in parsed ? { lease, bad: `annotation ${HEAD_ANNOTATION} ${parsed.bad}` } : { lease, head: parsed.head };
  }

  /**
   * Write the head `decide` gives for what is kept now (nothing when it gives undefined), under the
   * Lease's resourceVersion; a lost race is decided again on a fresh read. The Lease is created,
   * holding nobody, when no lock was ever taken.
   */
  async update(decide: (current: LeaseHead) => Promise<StoredHead | undefined>): Promise<void> {
    const kube = await this.connect();
    for (let attempt = 0; attempt < HEAD_ATTEMPTS; attempt++) {
      const current = await this.read();
      const next = await decide(current);
      if (!next) return;
      const value = JSON.stringify(next);
      try {
        if (current.lease) {
          const lease = current.lease;
          const annotations = { ...lease.metadata.annotations, [HEAD_ANNOTATION]: value };
          await kubeCall(`keeping the audit log's head on ${this.where}`, () => kube.replace<Lease>(leasePath(kube, this.name), { ...lease, metadata: { ...lease.metadata, annotations } }), [409, 404]);
        } else {
          await kubeCall(`creating ${this.where} for the audit log's head`, () => kube.create<Lease>(leasePath(kube), {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name: this.name, labels: managedLabels(this.name), annotations: { [HEAD_ANNOTATION]: value } },
            spec: {},
          }));
        }
        return;
      } catch (e) {
        // 404: the Lease was deleted between the read and the write.
        if (!isConflict(e) && !isNotFound(e)) throw e;
        await backoff(attempt);
      }
    }
    throw new OperationError(`could not keep the audit log's head on ${this.where}: other writers kept changing the Lease`, 'the record was written; `deploy history` shows it as not covered by the head until the next append keeps one');
  }

  /**
   * The heads for `checkHeads`. A Lease this identity may not read is a note, not an error: an
   * auditor with the default view role reads ConfigMaps but not Leases, and still sees the chain.
   */
  async kept(): Promise<KeptHeads> {
    const where = () => `${this.where} (annotation ${HEAD_ANNOTATION})`;
    const proves = () =>
      `the log up to the head kept in ${this.where} is the one its last appender saw: nobody who may write ConfigMaps in the namespace but not that Lease changed, removed or reordered a record before it. Whoever may also update the Lease — the Role \`deploy rbac\` prints, the default edit and admin roles — could have rewritten both`;
    let current: LeaseHead;
    try {
      current = await this.read();
    } catch (error) {
      if (!(error instanceof UsageError && error.message.includes(': forbidden: '))) throw error;
      return { where: where(), heads: [], proves: proves(), notes: [`the head could not be read (${error.message}): nothing beyond the chain is proven`] };
    }
    const heads: ChainHead[] = current.head ? [{ seq: current.head.seq, hash: current.head.hash }] : [];
    return {
      where: where(),
      heads,
      proves: proves(),
      notes: current.bad ? [`the ${current.bad}: nothing beyond the chain is proven`] : [],
      ...(current.head?.archived ? { archived: current.head.archived } : {}),
    };
  }
}
