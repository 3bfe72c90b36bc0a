/**
 * A narrow domain client over the S3 SDK: the object calls the `s3` state backend makes (get,
 * conditional put, delete, list, and head for one purpose below; the bucket's versioning and a
 * key's versions for the audit log's head), in its own terms. The backend depends on the
 * `StateObjects` interface only.
 *
 * Calls go out as every AWS provider's do (src/aws/call.ts): one attempt at a time bounded inside
 * the driver's lease, transient failures retried with backoff and reported. A refused condition
 * (412, or 409 while another conditional write to the key is in flight, or 404 for If-Match on a
 * key that is gone) is never translated: it is how compare-and-swap answers, and each caller
 * decides what losing means for it. Everything else becomes a typed error naming the bucket.
 *
 * A put that is retried after an attempt whose answer was lost may meet its own earlier write
 * and be refused by it. Every put therefore carries a random write id in its metadata; a refusal
 * after a retry is checked against the object's write id, and our own write counts as written.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import {
  DeleteObjectCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { attemptSignal, boundsForLease, sdkClientSettings, withRetries, type CallBounds } from '../../aws/call.js';
import { CREDENTIALS_HINT, setupProblem, type SdkErrorShape } from '../../aws/errors.js';
import { OperationError, UsageError } from '../../errors.js';

/** An object as read. */
export interface StoredObject {
  body: string;
  /** As S3 gives it, quotes included: what If-Match takes. */
  etag: string;
  lastModified?: Date;
}

/** One stored version of a key, in a bucket with versioning. */
export interface ObjectVersion {
  versionId: string;
  lastModified?: Date;
  /** A delete marker: the key was deleted at this point. */
  deleteMarker: boolean;
  /** The key's current version. */
  latest: boolean;
}

/** A bucket's versioning: on, suspended (versions kept so far stay), or never turned on. */
export type Versioning = 'Enabled' | 'Suspended' | undefined;

/** The condition of a put: replace exactly this version, or create only. */
export type WriteCondition = { ifMatch: string } | { ifNoneMatch: true };

/** A put refused by its condition: someone else wrote (or removed) the object first. */
export class WriteConflict extends Error {
  constructor(readonly key: string, readonly status: number) {
    super(`s3 write to ${key} refused by its condition (${status})`);
    this.name = 'WriteConflict';
  }
}

/** A call the credentials may not make (403): a UsageError naming the permission, exit 2. */
export class S3AccessDenied extends UsageError {}

/** The object calls of the state backend, in one bucket. */
export interface StateObjects {
  readonly bucket: string;
  /** The object (its version `versionId` when given), or undefined when there is none. */
  get(key: string, versionId?: string): Promise<StoredObject | undefined>;
  /** Write `body` (JSON) under `condition`; returns the new ETag or throws WriteConflict. */
  put(key: string, body: string, condition?: WriteCondition): Promise<string>;
  /** Remove the object; removing one that is not there is not an error (S3 deletes are idempotent). */
  delete(key: string): Promise<void>;
  /** Every key under `prefix` after `startAfter`, in ascending order. */
  list(prefix: string, startAfter?: string): Promise<string[]>;
  /** The bucket's versioning. */
  versioning(): Promise<Versioning>;
  /** Every version of `key`, delete markers included (`latest` marks the current one). */
  versions(key: string): Promise<ObjectVersion[]>;
}

/** Where and how to reach S3. Credentials always come from the default provider chain. */
export interface S3ObjectsOptions extends CallBounds {
  bucket: string;
  /** The driver lease: attempts are bounded inside it (boundsForLease). */
  leaseMs?: number;
  region?: string;
  profile?: string;
  /** A compatible endpoint instead of AWS's (addressed path-style). */
  endpointUrl?: string;
}

/** Sends one SDK command; injectable so tests can put faults in front of a real endpoint. */
export type SendFn = (command: { constructor: { name: string }; input: unknown }) => Promise<unknown>;

/** The IAM action each call is authorized by. */
const PERMISSION: Record<string, string> = {
  GetObject: 'GetObject', HeadObject: 'GetObject', PutObject: 'PutObject', DeleteObject: 'DeleteObject', ListObjectsV2: 'ListBucket',
  GetBucketVersioning: 'GetBucketVersioning', ListObjectVersions: 'ListBucketVersions', GetObjectVersion: 'GetObjectVersion',
};

/** Metadata key of the write id (x-amz-meta-cutover-write). */
const WRITE_ID = 'cutover-write';

/** The SDK behind `StateObjects`, with retries and clear errors. */
export class SdkStateObjects implements StateObjects {
  readonly bucket: string;
  private readonly bounds: CallBounds;
  private readonly send: SendFn;

  constructor(
    options: S3ObjectsOptions,
    private readonly onRetry?: (operation: string, error: Error, delayMs: number) => void,
    send?: SendFn,
  ) {
    this.bucket = options.bucket;
    const { bucket: _b, leaseMs, region, profile, endpointUrl, ...own } = options;
    this.bounds = { ...boundsForLease(leaseMs), ...own };
    if (send) this.send = send;
    else {
      const sdk = new S3Client({
        ...sdkClientSettings(this.bounds),
        ...(region ? { region } : {}),
        ...(profile ? { profile } : {}),
        // An emulator on an IP address cannot take the bucket as a host name.
        ...(endpointUrl ? { endpoint: endpointUrl, forcePathStyle: true } : {}),
        followRegionRedirects: true,
      });
      this.send = (command) => sdk.send(command as never, { abortSignal: attemptSignal(this.bounds) });
    }
  }

  async get(key: string, versionId?: string): Promise<StoredObject | undefined> {
    try {
      return await this.call('GetObject', key, async () => {
        const out = (await this.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, ...(versionId ? { VersionId: versionId } : {}) }))) as { Body?: { transformToString(): Promise<string> }; ETag?: string; LastModified?: Date };
        // Read inside the attempt, so a body cut off midway is retried like any dropped connection.
        const body = (await out.Body?.transformToString()) ?? '';
        return { body, etag: out.ETag ?? '', ...(out.LastModified ? { lastModified: out.LastModified } : {}) };
      });
    } catch (error) {
      if (status(error) === 404 && code(error) !== 'NoSuchBucket') return undefined;
      if (versionId) throw this.explain(error, 'GetObjectVersion', key);
      // Without s3:ListBucket on the key, S3 answers a missing object with 403: a listing tells.
      if (status(error) === 403 && !(await this.list(key).catch(() => [key])).includes(key)) return undefined;
      throw this.explain(error, 'GetObject', key);
    }
  }

  async versioning(): Promise<Versioning> {
    try {
      const out = (await this.call('GetBucketVersioning', '', () => this.send(new GetBucketVersioningCommand({ Bucket: this.bucket })))) as { Status?: string };
      return out.Status === 'Enabled' || out.Status === 'Suspended' ? out.Status : undefined;
    } catch (error) {
      throw this.explain(error, 'GetBucketVersioning', '');
    }
  }

  async versions(key: string): Promise<ObjectVersion[]> {
    const found: ObjectVersion[] = [];
    let keyMarker: string | undefined;
    let versionMarker: string | undefined;
    try {
      do {
        const page = (await this.call('ListObjectVersions', key, () => this.send(new ListObjectVersionsCommand({
          Bucket: this.bucket,
          Prefix: key,
          ...(keyMarker ? { KeyMarker: keyMarker } : {}),
          ...(versionMarker ? { VersionIdMarker: versionMarker } : {}),
        })))) as {
          Versions?: { Key?: string; VersionId?: string; IsLatest?: boolean; LastModified?: Date }[];
          DeleteMarkers?: { Key?: string; VersionId?: string; IsLatest?: boolean; LastModified?: Date }[];
          IsTruncated?: boolean;
          NextKeyMarker?: string;
          NextVersionIdMarker?: string;
        };
        const add = (items: typeof page.Versions, deleteMarker: boolean) => {
          // The prefix also matches longer keys (`audit-head.json.bak`): only the key itself counts.
          for (const v of items ?? []) {
            if (v.Key === key && v.VersionId) found.push({ versionId: v.VersionId, deleteMarker, latest: v.IsLatest === true, ...(v.LastModified ? { lastModified: v.LastModified } : {}) });
          }
        };
        add(page.Versions, false);
        add(page.DeleteMarkers, true);
        [keyMarker, versionMarker] = page.IsTruncated ? [page.NextKeyMarker, page.NextVersionIdMarker] : [undefined, undefined];
      } while (keyMarker);
    } catch (error) {
      throw this.explain(error, 'ListObjectVersions', key);
    }
    return found;
  }

  async put(key: string, body: string, condition?: WriteCondition): Promise<string> {
    const write = randomBytes(12).toString('hex');
    let attempts = 0;
    try {
      return await this.call('PutObject', key, async () => {
        attempts++;
        const out = (await this.send(new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: body,
          ContentType: 'application/json',
          Metadata: { [WRITE_ID]: write },
          ...(condition && 'ifMatch' in condition ? { IfMatch: condition.ifMatch } : {}),
          ...(condition && 'ifNoneMatch' in condition ? { IfNoneMatch: '*' } : {}),
        }))) as { ETag?: string };
        return out.ETag ?? '';
      });
    } catch (error) {
      if (!condition || !isConditionRefusal(error, condition)) throw this.explain(error, 'PutObject', key);
      if (attempts > 1) {
        const landed = await this.ownWrite(key, write);
        if (landed) return landed;
      }
      throw new WriteConflict(key, status(error) ?? 0);
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.call('DeleteObject', key, () => this.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })));
    } catch (error) {
      throw this.explain(error, 'DeleteObject', key);
    }
  }

  async list(prefix: string, startAfter?: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    try {
      do {
        const page = (await this.call('ListObjectsV2', prefix, () => this.send(new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: prefix,
          ...(startAfter ? { StartAfter: startAfter } : {}),
          ...(token ? { ContinuationToken: token } : {}),
        })))) as { Contents?: { Key?: string }[]; NextContinuationToken?: string; IsTruncated?: boolean };
        for (const item of page.Contents ?? []) if (item.Key) keys.push(item.Key);
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    } catch (error) {
      throw this.explain(error, 'ListObjectsV2', prefix);
    }
    return keys.sort();
  }

  /** The object's ETag when its last write is the one with id `write`. */
  private async ownWrite(key: string, write: string): Promise<string | undefined> {
    try {
      const head = (await this.call('HeadObject', key, () => this.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key })))) as { ETag?: string; Metadata?: Record<string, string> };
      return head.Metadata?.[WRITE_ID] === write ? head.ETag : undefined;
    } catch (error) {
      if (status(error) === 404) return undefined;
      throw this.explain(error, 'HeadObject', key);
    }
  }

  private call<T>(operation: string, key: string, attempt: () => Promise<T>): Promise<T> {
    return withRetries(attempt, this.bounds, (error, delayMs) => this.onRetry?.(`${operation} ${key}`, error, delayMs));
  }

  /** The typed error for a call that failed for good. */
  private explain(error: unknown, operation: string, key: string): Error {
    const where = `s3://${this.bucket}/${key}`;
    const c = code(error);
    const message = ((error as SdkErrorShape)?.message ?? String(error)).split('\n')[0]!;
    const setup = setupProblem(error);
    if (setup === 'credentials') return new UsageError(`S3 ${operation} on ${where}: no AWS credentials (${message})`, CREDENTIALS_HINT);
    if (setup === 'region') return new UsageError(`S3 ${operation} on ${where}: no AWS region (${message})`, 'set aws.region in deploy.yaml, or AWS_REGION');
    if (c === 'NoSuchBucket') {
      return new UsageError(
        `the state bucket ${this.bucket} does not exist (S3 ${operation} on ${where}); nothing was written`,
        `create it (aws s3api create-bucket --bucket ${this.bucket} …) or correct state.bucket in deploy.yaml`,
      );
    }
    if (status(error) === 403 || /AccessDenied|Forbidden/.test(c)) {
      if (/InvalidAccessKeyId|SignatureDoesNotMatch|ExpiredToken|InvalidToken/.test(c)) return new UsageError(`S3 ${operation} on ${where}: ${c}: ${message}`, `the AWS credentials were refused. ${CREDENTIALS_HINT}`);
      return new S3AccessDenied(`S3 ${operation} on ${where}: ${c}: ${message}`, `the credentials may not call s3:${PERMISSION[operation] ?? operation} on it; \`deploy iam-policy\` prints the policy the state backend needs`);
    }
    return new OperationError(`S3 ${operation} on ${where}: ${c}: ${message}`, 'the state is as it was before this call; `deploy resume` carries on once S3 answers');
  }
}

const status = (error: unknown): number | undefined => (error as SdkErrorShape)?.$metadata?.httpStatusCode;
const code = (error: unknown): string => {
  const e = (error ?? {}) as SdkErrorShape;
  return e.name && e.name !== 'Error' ? e.name : (e.code ?? 'Error');
};

/** 412; 409 ConditionalRequestConflict (a concurrent conditional write); 404 for If-Match when the key is gone. */
function isConditionRefusal(error: unknown, condition: WriteCondition): boolean {
  const s = status(error);
  return s === 412 || s === 409 || (s === 404 && 'ifMatch' in condition && code(error) !== 'NoSuchBucket');
}

/** A short random pause before retrying a lost conditional write, so racing writers spread out. */
export function backoff(attempt: number): Promise<void> {
  return delay(5 + Math.random() * 15 * Math.min(attempt + 1, 8));
}
