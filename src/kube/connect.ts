/**
 * Opening a cluster connection the way kubectl does: `--kubeconfig`, else `KUBECONFIG`, else
 * `~/.kube/config`, else the in-cluster service account; `--context` picks a context, and the
 * namespace comes from deploy.yaml, else the context, else `default`. @kubernetes/client-node
 * loads here only, so commands that never talk to a cluster never pay for it.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { KubeApiError, KubeClient } from './client.js';

/** Where to connect, from flags and deploy.yaml's `kubernetes:` section. */
export interface KubeConnectOptions {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
}

/** Clients by options, so a router, a workload and a state backend of one run share one. */
const opened = new Map<string, Promise<KubeClient>>();

/** Connect (once per distinct options in a process). Throws UsageError for a missing file or context. */
export function connectKube(opts: KubeConnectOptions): Promise<KubeClient> {
  const key = JSON.stringify([opts.kubeconfig, opts.context, opts.namespace]);
  let client = opened.get(key);
  if (!client) {
    client = open(opts);
    opened.set(key, client);
    client.catch(() => opened.delete(key));
  }
  return client;
}

async function open(opts: KubeConnectOptions): Promise<KubeClient> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  const envFiles = (process.env.KUBECONFIG ?? '').split(':').filter(Boolean);
  const homeConfig = join(homedir(), '.kube', 'config');
  try {
    if (opts.kubeconfig) {
      if (!existsSync(opts.kubeconfig)) throw new UsageError(`kubeconfig ${opts.kubeconfig}: no such file`, 'pass the path of an existing kubeconfig with --kubeconfig');
      kc.loadFromFile(opts.kubeconfig);
    } else if (envFiles.length > 0) {
      const missing = envFiles.find((f) => !existsSync(f));
      if (missing) throw new UsageError(`KUBECONFIG names ${missing}, which does not exist`, 'fix KUBECONFIG or pass --kubeconfig');
      kc.loadFromDefault();
    } else if (existsSync(homeConfig)) {
      kc.loadFromFile(homeConfig);
    } else if (process.env.KUBERNETES_SERVICE_HOST) {
      kc.loadFromCluster();
    } else {
      throw new UsageError('no kubeconfig found (no --kubeconfig, KUBECONFIG or ~/.kube/config) and not running in a cluster', 'pass --kubeconfig, or set KUBECONFIG');
    }
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`kubeconfig could not be read: ${(e as Error).message}`, 'check the file is a valid kubeconfig');
  }
  const contexts = kc.getContexts().map((c) => c.name);
  const name = opts.context ?? kc.getCurrentContext();
  if (opts.context) {
    if (!kc.getContextObject(opts.context)) {
      throw new UsageError(`kubeconfig context ${opts.context} not found (contexts: ${contexts.join(', ') || 'none'})`, 'pick one of them with --context or kubernetes.context');
    }
    kc.setCurrentContext(opts.context);
  } else if (!name || !kc.getContextObject(name)) {
    throw new UsageError(`kubeconfig has no current context (contexts: ${contexts.join(', ') || 'none'})`, 'pick one with --context');
  }
  const namespace = opts.namespace ?? kc.getContextObject(name)?.namespace ?? 'default';
  return new KubeClient(kc, namespace, name);
}

/**
 * Check a namespace exists before anything is recorded. A user whose Role is namespaced may not
 * read namespaces: that answer (403) is not an error here — the object checks that follow name
 * what is missing.
 */
export function checkNamespace(kube: KubeClient): Promise<void> {
  // The router, the workload and the state backend of one run share a client: asked once.
  let check = namespaceChecks.get(kube);
  if (!check) {
    check = readNamespace(kube);
    namespaceChecks.set(kube, check);
    check.catch(() => namespaceChecks.delete(kube));
  }
  return check;
}

/** Namespace checks by client, so each connection asks once. */
const namespaceChecks = new WeakMap<KubeClient, Promise<void>>();

async function readNamespace(kube: KubeClient): Promise<void> {
  try {
    await kube.read(`/api/v1/namespaces/${kube.namespace}`);
  } catch (e) {
    if (e instanceof KubeApiError && e.status === 404) {
      throw new UsageError(`namespace ${kube.namespace} not found in context ${kube.context}`, 'create it (kubectl create namespace …) or set kubernetes.namespace in deploy.yaml');
    }
    if (e instanceof KubeApiError && e.status === 401) throw new UsageError(`context ${kube.context}: the credentials were refused (401)`, 'refresh the token or certificate in your kubeconfig');
    if (e instanceof KubeApiError && e.status === 403) return;
    throw e;
  }
}
