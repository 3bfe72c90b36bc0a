/**
 * Pure derivations of the canary Deployment and Service from the stable ones. The canary's
 * selector values get a `-canary` suffix, so the stable Service (whatever it selects) never
 * selects canary pods, and the canary Service selects only them — the trick Flagger uses for its
 * primary Deployment, turned the other way so the user's objects stay as they are.
 */

import type { KubeObject } from '../../kube/client.js';

/** Labels Cutover sets on the pods it manages. */
export const VERSION_LABEL = 'cutover.dev/version';
export const ROLE_LABEL = 'cutover.dev/role';

/** The parts of a Deployment Cutover reads and writes. */
export interface DeploymentObject extends KubeObject {
  spec: {
    replicas?: number;
    selector: { matchLabels?: Record<string, string>; matchExpressions?: unknown[] };
    template: PodTemplate;
    progressDeadlineSeconds?: number;
    [field: string]: unknown;
  };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    updatedReplicas?: number;
    readyReplicas?: number;
    availableReplicas?: number;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
}

/** A pod template. */
export interface PodTemplate {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { containers: { name: string; image?: string; [field: string]: unknown }[]; [field: string]: unknown };
}

const suffixed = (labels: Record<string, string>, keys: Iterable<string>) => {
  const out = { ...labels };
  for (const k of keys) if (k in out) out[k] = `${out[k]}-canary`.slice(0, 63);
  return out;
};

/** The template with `image` on the named (or first) container and the version label set. */
export function withImage(template: PodTemplate, image: string, version: string, container?: string): PodTemplate {
  const index = container ? template.spec.containers.findIndex((c) => c.name === container) : 0;
  if (index < 0) throw new Error(`no container ${container}`);
  const containers = template.spec.containers.map((c, i) => (i === index ? { ...c, image } : c));
  return {
    ...template,
    metadata: { ...template.metadata, labels: { ...template.metadata?.labels, [VERSION_LABEL]: version } },
    spec: { ...template.spec, containers },
  };
}

/** The canary Deployment for `version`, derived from the stable one, at `replicas`. */
export function canaryDeployment(stable: DeploymentObject, name: string, image: string, version: string, replicas: number, container?: string): DeploymentObject {
  const keys = Object.keys(stable.spec.selector.matchLabels ?? {});
  const template = withImage(stable.spec.template, image, version, container);
  const { progressDeadlineSeconds, ...spec } = stable.spec;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, labels: { ...stable.metadata.labels, [ROLE_LABEL]: 'canary', 'app.kubernetes.io/managed-by': 'cutover' } },
    spec: {
      ...spec,
      ...(progressDeadlineSeconds !== undefined ? { progressDeadlineSeconds } : {}),
      replicas,
      selector: { ...stable.spec.selector, matchLabels: suffixed(stable.spec.selector.matchLabels ?? {}, keys) },
      template: {
        ...template,
        metadata: { ...template.metadata, labels: { ...suffixed(template.metadata?.labels ?? {}, keys), [ROLE_LABEL]: 'canary' } },
      },
    },
  };
}

/** The stable Deployment given the canary's pod template, with the stable selector labels kept. */
export function promotedTemplate(stable: DeploymentObject, canary: DeploymentObject): PodTemplate {
  const stableLabels = stable.spec.template.metadata?.labels ?? {};
  const canaryLabels = canary.spec.template.metadata?.labels ?? {};
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(canaryLabels)) if (k !== ROLE_LABEL) labels[k] = k in stableLabels && k in (stable.spec.selector.matchLabels ?? {}) ? stableLabels[k]! : v;
  return { ...canary.spec.template, metadata: { ...canary.spec.template.metadata, labels } };
}

/** The version a Deployment's pods run, by label. */
export function versionOf(d: DeploymentObject): string | undefined {
  return d.spec.template.metadata?.labels?.[VERSION_LABEL];
}

/** Replicas of the canary at `weight` percent of `total`: in proportion, rounded up, at least one. */
export function canaryReplicas(total: number, weight: number): number {
  if (weight <= 0) return 0;
  return Math.max(1, Math.min(total, Math.ceil((total * weight) / 100 - 1e-9)));
}

/**
 * Whether a Deployment has rolled out `replicas` ready pods of its current template, or is stuck
 * (the controller's ProgressDeadlineExceeded). `detail` says what was seen.
 */
export function rolloutStatus(d: DeploymentObject, replicas: number): { ready: boolean; detail: string; stuck?: string } {
  const s = d.status ?? {};
  const name = d.metadata.name;
  const version = versionOf(d) ?? 'its template';
  const progressing = s.conditions?.find((c) => c.type === 'Progressing');
  if (progressing?.reason === 'ProgressDeadlineExceeded') {
    return { ready: false, stuck: `${name}: ${progressing.message ?? 'progress deadline exceeded'}`, detail: `${name} is stuck: ${progressing.message ?? 'ProgressDeadlineExceeded'}` };
  }
  const observed = (s.observedGeneration ?? 0) >= (d.metadata.generation ?? 0);
  const updated = s.updatedReplicas ?? 0;
  const ready = s.readyReplicas ?? 0;
  const available = s.availableReplicas ?? 0;
  const old = (s.replicas ?? 0) - updated;
  const done = observed && updated >= replicas && ready >= replicas && available >= replicas && old <= 0;
  return { ready: done, detail: `${Math.min(ready, updated)}/${replicas} replicas of ${name} ready on ${version}${old > 0 ? `, ${old} old still running` : ''}` };
}
