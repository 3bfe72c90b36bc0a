/**
 * What every Kubernetes writer of Cutover's shares (the routers, the workload): compare-and-swap
 * writes retried on 409 over a fresh read, permissions asked before anything is written, and
 * objects that must exist.
 */
import pRetry, { AbortError } from 'p-retry';
import { OperationError, UsageError } from '../errors.js';
import { explainKubeError, KubeApiError, type KubeClient } from './client.js';

/** How many times a write is recomputed after a 409 before giving up. */
export const CONFLICT_ATTEMPTS = 8;

/**
 * Run `attempt` (read, compute, one compare-and-swap write) until it does not end in a 409.
 * Every retry reads the object again, so another writer's change is kept, never overwritten.
 * Retries wait 50 ms doubling to at most 1 s, jittered: a controller that writes the object's
 * status while it rolls (the Deployment controller) can win several immediate retries in a row,
 * and all attempts still end within a few seconds, far inside a driver's lease.
 */
export async function retryOnConflict<T>(object: string, attempt: () => Promise<T>, attempts = CONFLICT_ATTEMPTS): Promise<T> {
  try {
    return await pRetry(
      async () => {
        try {
          return await attempt();
        } catch (e) {
          throw e instanceof KubeApiError && e.conflict ? e : new AbortError(e instanceof KubeApiError ? explainKubeError(e, `writing ${object}`) : (e as Error));
        }
      },
      { retries: attempts - 1, factor: 2, minTimeout: 50, maxTimeout: 1_000, randomize: true },
    );
  } catch (e) {
    if (e instanceof KubeApiError && e.conflict) {
      throw new OperationError(`${object} changed under every one of ${attempts} writes (409 Conflict each time); another controller may be rewriting it`, 'find what else writes it (kubectl get -o yaml shows managedFields), then `deploy resume`');
    }
    throw e;
  }
}

/** Verbs on a resource: on one named object, or on the collection (create cannot be named). */
export interface Permission {
  group: string;
  resource: string;
  verbs: string[];
  name?: string;
}

/**
 * The permissions of `wanted` the user lacks, asked by SelfSubjectAccessReviews with the object's
 * name, so a Role limited by resourceNames (what `deploy rbac` prints) answers as it will later.
 */
export async function missingPermissions(kube: KubeClient, wanted: Permission[]): Promise<Permission[]> {
  const answers = await Promise.all(
    wanted.map(async (p) => {
      const denied: string[] = [];
      for (const verb of p.verbs) {
        const allowed = await kube.can(verb, { group: p.group, resource: p.resource, ...(p.name ? { name: p.name } : {}) }).catch((e: unknown) => Promise.reject(explainKubeError(e, `checking permission to ${verb} ${p.resource}`)));
        if (!allowed) denied.push(verb);
      }
      return { ...p, verbs: denied };
    }),
  );
  return answers.filter((p) => p.verbs.length > 0);
}

/**
 * Fail naming every missing permission at once, in the words the workload's preflight uses, e.g.
 * `context prod may not update httproutes.gateway.networking.k8s.io patient-api, get services
 * patient-api-canary in namespace shop`.
 */
export function requireGranted(kube: KubeClient, missing: Permission[]): void {
  const named = missing.flatMap((m) => m.verbs.map((verb) => `${verb} ${m.resource}${m.group ? `.${m.group}` : ''}${m.name ? ` ${m.name}` : ''}`));
  if (named.length === 0) return;
  throw new UsageError(`context ${kube.context} may not ${named.join(', ')} in namespace ${kube.namespace}`, 'grant them (`deploy rbac` prints the Role Cutover needs) or use a context that has them');
}

/** The Service must exist in the namespace. */
export async function requireService(kube: KubeClient, name: string): Promise<void> {
  const found = await kube.get(`/api/v1/namespaces/${kube.namespace}/services/${name}`).catch((e: unknown) => Promise.reject(explainKubeError(e, `reading Service ${name}`)));
  if (!found) throw new UsageError(`Service ${name} not found in namespace ${kube.namespace}`, 'create it (the kubernetes workload runs each role behind its Service), or fix router.service / router.canaryService');
}
