/**
 * A narrow client for the Kubernetes API: the handful of REST calls Cutover makes (get, create,
 * replace with a resourceVersion, merge-patch, delete with preconditions) on explicit paths.
 * Credentials and TLS come from @kubernetes/client-node's KubeConfig (kubeconfig files and their
 * contexts, exec plugins, in-cluster service accounts); the calls themselves are plain HTTPS so
 * every answer's status code and Status object reach the caller intact — a 409 on a stale
 * resourceVersion is how compare-and-swap works, not an exception to hide.
 */
import https from 'node:https';
import http from 'node:http';
import pRetry, { AbortError } from 'p-retry';
import type { KubeConfig } from '@kubernetes/client-node';
import { OperationError, UsageError } from '../errors.js';

/** Metadata every object carries (the part Cutover reads and writes). */
export interface ObjectMeta {
  name: string;
  namespace?: string;
  resourceVersion?: string;
  uid?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  creationTimestamp?: string;
}

/** Any Kubernetes object. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

/** The Status object the API server answers errors with. */
interface Status {
  kind?: string;
  code?: number;
  reason?: string;
  message?: string;
}

/** A non-2xx answer of the API server. */
export class KubeApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly method: string,
    readonly path: string,
  ) {
    super(message);
    this.name = 'KubeApiError';
  }

  /** 409: the object changed since it was read (or already exists). */
  get conflict(): boolean {
    return this.status === 409;
  }
}

/** Options of one request. */
interface RequestOptions {
  body?: unknown;
  contentType?: string;
  query?: Record<string, string>;
}

const RETRYABLE = new Set([429, 500, 502, 503, 504]);

/** One cluster connection: where it points and how to call it. */
export class KubeClient {
  /** Server URL, for messages. */
  readonly server: string;

  /**
   * @param config a loaded KubeConfig with its current context set
   * @param namespace the namespace objects live in unless a path names another
   * @param context the context's name, for messages
   */
  constructor(
    private readonly config: KubeConfig,
    readonly namespace: string,
    readonly context: string,
    private readonly timeoutMs = 10_000,
  ) {
    const cluster = config.getCurrentCluster();
    if (!cluster) throw new UsageError(`kubeconfig context ${context} names no cluster`, 'fix the context in your kubeconfig');
    this.server = cluster.server.replace(/\/+$/, '');
  }

  /** GET a path; a 404 answers undefined. */
  async get<T extends KubeObject>(path: string): Promise<T | undefined> {
    try {
      return (await this.request('GET', path)) as T;
    } catch (e) {
      if (e instanceof KubeApiError && e.status === 404) return undefined;
      throw e;
    }
  }

  /** GET a path that must exist; a 404 throws. */
  async read<T>(path: string): Promise<T> {
    return (await this.request('GET', path)) as T;
  }

  /** POST an object to a collection; a 409 (already exists) throws a KubeApiError. */
  async create<T extends KubeObject>(collection: string, object: T): Promise<T> {
    return (await this.request('POST', collection, { body: object })) as T;
  }

  /** PUT an object; with `metadata.resourceVersion` set this is compare-and-swap (409 when stale). */
  async replace<T extends KubeObject>(path: string, object: T): Promise<T> {
    return (await this.request('PUT', path, { body: object })) as T;
  }

  /** Merge-patch (RFC 7386) an object; include `metadata.resourceVersion` for compare-and-swap. */
  async mergePatch<T extends KubeObject>(path: string, patch: unknown): Promise<T> {
    return (await this.request('PATCH', path, { body: patch, contentType: 'application/merge-patch+json' })) as T;
  }

  /** DELETE an object, only if it still has `resourceVersion` when given; a 404 is fine. */
  async delete(path: string, resourceVersion?: string): Promise<void> {
    const body = resourceVersion ? { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { resourceVersion } } : undefined;
    try {
      await this.request('DELETE', path, body ? { body } : {});
    } catch (e) {
      if (e instanceof KubeApiError && e.status === 404) return;
      throw e;
    }
  }

  /** Whether the current user may do `verb` on `resource` (a SelfSubjectAccessReview). */
  async can(verb: string, resource: { group: string; resource: string; namespace?: string; name?: string; subresource?: string }): Promise<boolean> {
    const review = await this.request('POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
      body: {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SelfSubjectAccessReview',
        spec: { resourceAttributes: { verb, group: resource.group, resource: resource.resource, namespace: resource.namespace ?? this.namespace, ...(resource.name ? { name: resource.name } : {}), ...(resource.subresource ? { subresource: resource.subresource } : {}) } },
      },
    });
    return (review as { status?: { allowed?: boolean } }).status?.allowed === true;
  }

  /**
   * Send one request. Throttling (429), server errors and dropped connections are retried with
   * exponential backoff and jitter; everything else — 404, 403, 409, 422 — is the caller's answer.
   */
  async request(method: string, path: string, opts: RequestOptions = {}): Promise<unknown> {
    return pRetry(
      async () => {
        try {
          return await this.once(method, path, opts);
        } catch (e) {
          if (e instanceof KubeApiError && !RETRYABLE.has(e.status)) throw new AbortError(e);
          throw e;
        }
      },
      { retries: 4, minTimeout: 200, maxTimeout: 3_000, randomize: true },
    ).catch((e: unknown) => {
      if (e instanceof KubeApiError) throw e;
      const err = e as NodeJS.ErrnoException;
      throw new OperationError(
        `Kubernetes API ${this.server} (context ${this.context}) unreachable: ${method} ${path}: ${err.code ?? err.message}`,
        'check the cluster is up and the kubeconfig points at it (--context, --kubeconfig)',
      );
    });
  }

  private async once(method: string, path: string, opts: RequestOptions): Promise<unknown> {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) url.searchParams.set(k, v);
    const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    const options: https.RequestOptions = {
      method,
      headers: {
        accept: 'application/json',
        ...(payload ? { 'content-type': opts.contentType ?? 'application/json', 'content-length': String(payload.length) } : {}),
      },
      timeout: this.timeoutMs,
    };
    await this.config.applyToHTTPSOptions(options);
    const transport = url.protocol === 'http:' ? http : https;
    return new Promise((resolve, reject) => {
      const req = transport.request(url, options, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let value: unknown = text;
          try {
            value = text ? JSON.parse(text) : undefined;
          } catch {
            // not JSON: keep the text for the message
          }
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return resolve(value);
          const s = (typeof value === 'object' && value ? value : {}) as Status;
          reject(new KubeApiError(status, s.reason ?? String(status), s.message ?? (typeof value === 'string' ? value.slice(0, 300) : `HTTP ${status}`), method, path));
        });
      });
      req.on('timeout', () => req.destroy(Object.assign(new Error(`timed out after ${this.timeoutMs} ms`), { code: 'ETIMEDOUT' })));
      req.on('error', reject);
      if (payload) req.write(payload);
      req.end();
    });
  }
}

/**
 * Turn an API error into what the user must fix: a forbidden call names the missing permission
 * (the server's message says verb, resource and namespace) and `deploy rbac`; a missing object
 * names it. Both are exit 2: nothing was changed. Other errors are operational (exit 1).
 */
export function explainKubeError(e: unknown, what: string): Error {
  if (!(e instanceof KubeApiError)) return e as Error;
  if (e.status === 403) return new UsageError(`${what}: forbidden: ${e.message}`, 'grant the permission (`deploy rbac` prints the Role Cutover needs) or use a context that has it');
  if (e.status === 401) return new UsageError(`${what}: unauthorized: the credentials of this context were refused`, 'refresh the token or certificate in your kubeconfig');
  if (e.status === 404) return new UsageError(`${what}: not found (${e.message})`, 'create it, or fix the name or namespace in deploy.yaml');
  if (e.status === 422 || e.status === 400) return new UsageError(`${what}: refused by the API server: ${e.message}`);
  return new OperationError(`${what}: ${e.method} ${e.path} answered ${e.status} ${e.reason}: ${e.message}`);
}
