/**
 * The ConfigMaps behind the Kubernetes audit log (kube-audit.ts): numbered segments of JSON-lines
 * records and the small index that says which segment comes first. Here are the reads and the
 * compare-and-swap writes; what they mean for the chain is decided in kube-audit.ts.
 */
import type { KubeClient } from '../../kube/client.js';
import { OperationError } from '../../errors.js';
import { isRecordShape, type ChainAnchor } from '../chain.js';
import { backoff, configMapPath, configMapsPath, isConflict, kubeCall, managedLabels, type ConfigMap } from './objects.js';
import type { AuditRecord } from '../store.js';

/** Key of a segment's records. */
const RECORDS_KEY = 'audit.jsonl';

/** Annotations of segments and of the index. */
const NOTE = {
  /** Bytes of record text in all segments before this one, archived ones included. */
  offset: 'cutover.dev/offset',
  /** "true" once the chain has moved on to the next segment: nothing is appended here any more. */
  sealed: 'cutover.dev/sealed',
  /** On the first segment after an archive: the last archived record, where the chain resumes. */
  throughSeq: 'cutover.dev/archived-through-seq',
  throughHash: 'cutover.dev/archived-through-hash',
  first: 'cutover.dev/first-segment',
  firstOffset: 'cutover.dev/first-offset',
  /** A hint only: it may lag behind the real last segment, never run ahead of it. */
  last: 'cutover.dev/last-segment',
} as const;

/** What the index says. */
export interface SegmentIndex {
  first: number;
  /** The offset of the first segment: record text before it was archived. */
  firstOffset: number;
  lastHint: number;
  object?: ConfigMap;
}

/** One segment as read. */
export class Segment {
  constructor(
    readonly number: number,
    readonly object: ConfigMap,
  ) {}

  /** The ConfigMap's name. */
  get name(): string {
    return this.object.metadata.name;
  }

  /** The record text, one JSON record per line. */
  get text(): string {
    return this.object.data?.[RECORDS_KEY] ?? '';
  }

  /** Whether the chain has moved on to the next segment. */
  get sealed(): boolean {
    return this.note(NOTE.sealed) === 'true';
  }

  /** Record text before this segment, since the first record ever. */
  get offset(): number {
    const offset = Number(this.note(NOTE.offset));
    return Number.isSafeInteger(offset) && offset >= 0 ? offset : 0;
  }

  /** The archive anchor, when this segment carries a valid one. */
  get anchor(): ChainAnchor | undefined {
    return this.anchorError ? undefined : this.readAnchor();
  }

  /** Why the archive anchor cannot be used, if one is there and malformed. */
  get anchorError(): string | undefined {
    const seq = this.note(NOTE.throughSeq);
    const hash = this.note(NOTE.throughHash);
    if (seq === undefined && hash === undefined) return undefined;
    if (!/^\d+$/.test(seq ?? '') || !/^[0-9a-f]{64}$/.test(hash ?? '')) return `has a malformed archive anchor (${NOTE.throughSeq}, ${NOTE.throughHash})`;
    return undefined;
  }

  private readAnchor(): ChainAnchor | undefined {
    const seq = this.note(NOTE.throughSeq);
    const hash = this.note(NOTE.throughHash);
    return seq !== undefined && hash !== undefined ? { seq: Number(seq), hash } : undefined;
  }

  /** Records up to the first line that is not one. */
  records(): { records: AuditRecord[]; bad?: string } {
    const records: AuditRecord[] = [];
    for (const [index, line] of this.lines().entries()) {
      try {
        records.push(JSON.parse(line) as AuditRecord);
      } catch (error) {
        return { records, bad: `line ${index + 1} is not valid JSON (${(error as Error).message})` };
      }
    }
    return { records };
  }

  /** The last record, to chain onto; undefined when empty. Refuses to chain onto garbage. */
  lastRecord(): AuditRecord | undefined {
    const line = this.lines().at(-1);
    if (line === undefined) return undefined;
    let last: unknown;
    try {
      last = JSON.parse(line);
    } catch {
      last = undefined;
    }
    if (!isRecordShape(last)) {
      throw new OperationError(
        `refusing to append to ConfigMap ${this.name}: its last line is not a valid audit record, and a record chained onto it could never verify`,
        `\`deploy history\` shows where the chain breaks; restore ${this.name} from a backup`,
      );
    }
    return last;
  }

  private lines(): string[] {
    return this.text.split('\n').filter((line) => line !== '');
  }

  private note(key: string): string | undefined {
    return this.object.metadata.annotations?.[key];
  }
}

/** Reads and writes of the segments and the index of one store. */
export class SegmentStore {
  private cachedIndex: SegmentIndex | undefined;

  constructor(
    private readonly connect: () => Promise<KubeClient>,
    private readonly store: string,
  ) {}

  /** The name of segment `number`. */
  nameOf(number: number): string {
    return `${this.store}-audit-${String(number).padStart(4, '0')}`;
  }

  private get indexName(): string {
    return `${this.store}-audit-index`;
  }

  /**
   * The index: cached unless `fresh`; created when absent and `create` (a log without one starts
   * at segment 1). Only an archive moves `first`, so a cached index is stale only after one.
   */
  async index(opts: { create?: boolean; fresh?: boolean } = {}): Promise<SegmentIndex> {
    if (this.cachedIndex && !opts.fresh && (this.cachedIndex.object || !opts.create)) return this.cachedIndex;
    const kube = await this.connect();
    const path = configMapPath(kube.namespace, this.indexName);
    let object = await kubeCall(`reading ConfigMap ${kube.namespace}/${this.indexName}`, () => kube.get<ConfigMap>(path));
    if (!object && opts.create) {
      const fresh: ConfigMap = {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: this.indexName, labels: managedLabels(this.store), annotations: { [NOTE.first]: '1', [NOTE.firstOffset]: '0', [NOTE.last]: '1' } },
      };
      try {
        object = await kubeCall(`creating ConfigMap ${kube.namespace}/${this.indexName}`, () => kube.create(configMapsPath(kube.namespace), fresh));
      } catch (e) {
        if (!isConflict(e)) throw e;
        object = await kubeCall(`reading ConfigMap ${kube.namespace}/${this.indexName}`, () => kube.get<ConfigMap>(path));
      }
    }
    const notes = object?.metadata.annotations ?? {};
    const count = (key: string, fallback: number): number => {
      const value = Number(notes[key]);
      return Number.isSafeInteger(value) && value >= 0 ? value : fallback;
    };
    const first = Math.max(1, count(NOTE.first, 1));
    this.cachedIndex = { first, firstOffset: count(NOTE.firstOffset, 0), lastHint: Math.max(first, count(NOTE.last, first)), ...(object ? { object } : {}) };
    return this.cachedIndex;
  }

  /** Drop the cached index: the next read asks the cluster. */
  forgetIndex(): void {
    this.cachedIndex = undefined;
  }

  /** Segment `number`, or undefined when it does not exist. */
  async get(number: number): Promise<Segment | undefined> {
    const kube = await this.connect();
    const name = this.nameOf(number);
    const object = await kubeCall(`reading ConfigMap ${kube.namespace}/${name}`, () => kube.get<ConfigMap>(configMapPath(kube.namespace, name)));
    return object ? new Segment(number, object) : undefined;
  }

  /** Create segment `number` holding `text`; a 409 (someone else created it) reaches the caller. */
  async create(number: number, at: { offset: number; anchor?: ChainAnchor }, text: string): Promise<Segment> {
    const kube = await this.connect();
    const name = this.nameOf(number);
    const annotations: Record<string, string> = { [NOTE.offset]: String(at.offset) };
    if (at.anchor) {
      annotations[NOTE.throughSeq] = String(at.anchor.seq);
      annotations[NOTE.throughHash] = at.anchor.hash;
    }
    const object: ConfigMap = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name, labels: { ...managedLabels(this.store), 'cutover.dev/audit-segment': String(number) }, annotations },
      data: { [RECORDS_KEY]: text },
    };
    return new Segment(number, await kubeCall(`creating ConfigMap ${kube.namespace}/${name}`, () => kube.create(configMapsPath(kube.namespace), object)));
  }

  /** Replace the records of `segment` as read; 409 (changed since) and 404 (archived) reach the caller. */
  write(segment: Segment, text: string): Promise<Segment> {
    return this.replace(segment, { ...segment.object, data: { ...segment.object.data, [RECORDS_KEY]: text } });
  }

  /** Mark `segment` as read sealed; 409 and 404 reach the caller. */
  seal(segment: Segment): Promise<Segment> {
    return this.replace(segment, withNotes(segment.object, { [NOTE.sealed]: 'true' }));
  }

  private async replace(segment: Segment, object: ConfigMap): Promise<Segment> {
    const kube = await this.connect();
    const written = await kubeCall(`writing ConfigMap ${kube.namespace}/${segment.name}`, () => kube.replace(configMapPath(kube.namespace, segment.name), object), [409, 404]);
    return new Segment(segment.number, written);
  }

  /** Delete `segment` if it is still as read. */
  async remove(segment: Segment): Promise<void> {
    const kube = await this.connect();
    await kubeCall(`deleting ConfigMap ${kube.namespace}/${segment.name}`, () => kube.delete(configMapPath(kube.namespace, segment.name), segment.object.metadata.resourceVersion));
  }

  /** Delete segment `number`, whatever it holds (it was archived). */
  async removeNumber(number: number): Promise<void> {
    const kube = await this.connect();
    const name = this.nameOf(number);
    await kubeCall(`deleting ConfigMap ${kube.namespace}/${name}`, () => kube.delete(configMapPath(kube.namespace, name)));
  }

  /** Move the index's hint of the last segment forward; losing a race just leaves it behind. */
  async hintLast(number: number): Promise<void> {
    const index = await this.index({ create: true });
    if (!index.object || index.lastHint >= number) return;
    await this.writeIndex(index.object, { [NOTE.last]: String(number) }).catch((e: unknown) => {
      if (!isConflict(e)) throw e;
      this.forgetIndex();
    });
  }

  /**
   * Make segment `number` the first: it carries `anchor` (created empty if nobody has appended to
   * it yet), then the index points at it. Returns the first segment before, so the caller removes
   * the segments from there on; a concurrent archive that got further first leaves nothing to remove.
   */
  async moveFirst(number: number, anchor: ChainAnchor, offset: number): Promise<number> {
    await this.anchor(number, anchor, offset);
    for (let attempt = 0; ; attempt++) {
      const index = await this.index({ create: true, fresh: true });
      if (index.first >= number) return number;
      try {
        await this.writeIndex(index.object!, { [NOTE.first]: String(number), [NOTE.firstOffset]: String(offset), [NOTE.last]: String(Math.max(number, index.lastHint)) });
        return index.first;
      } catch (e) {
        if (!isConflict(e) || attempt >= 20) throw e;
        await backoff(attempt);
      }
    }
  }

  /** Put the archive anchor on segment `number`, creating it empty when absent. */
  private async anchor(number: number, anchor: ChainAnchor, offset: number): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const segment = await this.get(number);
      try {
        if (!segment) await this.create(number, { offset, anchor }, '');
        else if (segment.anchor?.seq !== anchor.seq || segment.anchor.hash !== anchor.hash) {
          await this.replace(segment, withNotes(segment.object, { [NOTE.throughSeq]: String(anchor.seq), [NOTE.throughHash]: anchor.hash }));
        }
        return;
      } catch (e) {
        if (!isConflict(e) || attempt >= 20) throw e;
        await backoff(attempt);
      }
    }
  }

  private async writeIndex(object: ConfigMap, notes: Record<string, string>): Promise<void> {
    const kube = await this.connect();
    await kubeCall(`writing ConfigMap ${kube.namespace}/${this.indexName}`, () => kube.replace(configMapPath(kube.namespace, this.indexName), withNotes(object, notes)));
    this.forgetIndex();
  }
}

/** `object` with `notes` added to its annotations. */
function withNotes(object: ConfigMap, notes: Record<string, string>): ConfigMap {
  return { ...object, metadata: { ...object.metadata, annotations: { ...object.metadata.annotations, ...notes } } };
}
