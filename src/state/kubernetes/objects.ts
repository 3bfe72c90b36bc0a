/**
 * What the parts of the Kubernetes state backend share: ConfigMap paths and labels, documents
 * encoded to fit the API server's 1 MiB object limit, and API errors turned into the CLI's typed
 * errors. A 409 is never translated here: it is how compare-and-swap answers, and each caller
 * decides what losing a race means for it.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { gunzipSync, gzipSync } from 'node:zlib';
import { explainKubeError, KubeApiError, type KubeObject } from '../../kube/client.js';
import { OperationError } from '../../errors.js';

/** A ConfigMap as the backend reads and writes it. */
export interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}

/** Labels of every object the backend creates, so `kubectl get -l` finds them. */
export function managedLabels(store: string): Record<string, string> {
  return { 'app.kubernetes.io/managed-by': 'cutover', 'cutover.dev/store': store };
}

/** The ConfigMap collection of a namespace. */
export const configMapsPath = (namespace: string): string => `/api/v1/namespaces/${namespace}/configmaps`;

/** One ConfigMap. */
export const configMapPath = (namespace: string, name: string): string => `${configMapsPath(namespace)}/${name}`;

/**
 * The most one object's data may hold. The API server refuses a ConfigMap over 1 MiB with a 422
 * that names neither the document nor what to do; below this there is room for keys and metadata.
 */
export const MAX_OBJECT_BYTES = 900 * 1024;

/**
 * Documents of this size or more are stored gzipped in `binaryData`: an org registry of 10,000
 * pins is about 1.5 MB as JSON and 80 KB gzipped. Smaller ones stay plain JSON, readable with kubectl.
 */
const COMPRESS_FROM_BYTES = 64 * 1024;

/** UTF-8 size of a string, what the API server counts. */
export const byteLength = (text: string): number => Buffer.byteLength(text, 'utf8');

/** A size for messages: `8.0 MiB`, or KiB below one MiB. */
export function formatBytes(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / (1024 * 1024)).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;
}

/** The data fields holding `value` under `key`: plain JSON, or gzipped under `<key>.gz` when large. */
export function encodeDocument(key: string, value: unknown, what: string): { data: Record<string, string>; binaryData: Record<string, string> } {
  const text = `${JSON.stringify(value, null, 2)}\n`;
  if (byteLength(text) < COMPRESS_FROM_BYTES) return { data: { [key]: text }, binaryData: {} };
  const packed = gzipSync(JSON.stringify(value));
  if (packed.length > MAX_OBJECT_BYTES) {
    throw new OperationError(
      `${what} is too large for a ConfigMap: ${formatBytes(packed.length)} even gzipped, over the ${formatBytes(MAX_OBJECT_BYTES)} one object can hold; nothing was written`,
      'make it smaller (fewer pins or entries), or use the local state backend for this service',
    );
  }
  return { data: {}, binaryData: { [`${key}.gz`]: packed.toString('base64') } };
}

/**
 * The text stored under `key` (plain or gzipped), or undefined when neither is there. Throws an
 * Error naming what is wrong when the gzipped form cannot be unpacked.
 */
export function decodeDocument(object: ConfigMap, key: string): string | undefined {
  const plain = object.data?.[key];
  if (plain !== undefined) return plain;
  const packed = object.binaryData?.[`${key}.gz`];
  if (packed === undefined) return undefined;
  try {
    return gunzipSync(Buffer.from(packed, 'base64')).toString('utf8');
  } catch (error) {
    throw new Error(`holds ${key}.gz that does not unpack (${(error as Error).message})`);
  }
}

/** `object` with `key` replaced by `encoded`, every other key, label and annotation kept. */
export function withDocument(object: ConfigMap, key: string, encoded: ReturnType<typeof encodeDocument>): ConfigMap {
  const data = { ...object.data };
  const binaryData = { ...object.binaryData };
  delete data[key];
  delete binaryData[`${key}.gz`];
  return { ...object, data: { ...data, ...encoded.data }, binaryData: { ...binaryData, ...encoded.binaryData } };
}

/** Whether an error is the API server's 409: the object changed since it was read, or exists. */
export const isConflict = (e: unknown): boolean => e instanceof KubeApiError && e.conflict;

/** Whether an error is a 404: the object (or its namespace) is gone. */
export const isNotFound = (e: unknown): boolean => e instanceof KubeApiError && e.status === 404;

/**
 * Run one API call; a refusal becomes the typed error that names what to fix (403 → the missing
 * permission, exit 2). Statuses in `pass` (409 unless told) reach the caller untranslated.
 */
export async function kubeCall<T>(what: string, call: () => Promise<T>, pass: readonly number[] = [409]): Promise<T> {
  try {
    return await call();
  } catch (e) {
    if (e instanceof KubeApiError && pass.includes(e.status)) throw e;
    throw explainKubeError(e, what);
  }
}

/** A short random pause before retrying a lost compare-and-swap, so racing writers spread out. */
export function backoff(attempt: number): Promise<void> {
  return delay(5 + Math.random() * 15 * Math.min(attempt + 1, 8));
}
