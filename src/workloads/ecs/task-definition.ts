/**
 * The candidate's task definition, derived without I/O: the stable side's task definition as
 * registered, with one container's image replaced. Whether a live revision already is that
 * derivation decides between reusing it and registering a new one, so a retried step, a resumed
 * driver or a second rollout of the same image never piles up revisions.
 */
import { UsageError } from '../../errors.js';
import type { TaskDefinition, TaskDefinitionInput } from './client.js';

/**
 * The fields RegisterTaskDefinition takes, as DescribeTaskDefinition reports them. Tags are left
 * out: registering with tags needs ecs:TagResource on the new revision as well.
 */
const REGISTRABLE = [
  'family',
  'taskRoleArn',
  'executionRoleArn',
  'networkMode',
  'containerDefinitions',
  'volumes',
  'placementConstraints',
  'requiresCompatibilities',
  'cpu',
  'memory',
  'pidMode',
  'ipcMode',
  'proxyConfiguration',
  'inferenceAccelerators',
  'ephemeralStorage',
  'runtimePlatform',
  'enableFaultInjection',
] as const satisfies readonly (keyof TaskDefinition & keyof TaskDefinitionInput)[];

/** `family:revision` of a task definition ARN, as people say it. */
export function shortName(arn: string): string {
  return arn.slice(arn.lastIndexOf('/') + 1);
}

/** The container whose image is the version's: `configured`, or the task definition's first. */
export function versionContainer(td: TaskDefinition, configured: string | undefined, service: string): string {
  const names = (td.containerDefinitions ?? []).map((c) => c.name ?? '');
  const name = configured ?? names[0];
  if (name === undefined || !names.includes(name)) {
    throw new UsageError(
      `task definition ${shortName(td.taskDefinitionArn ?? '?')} of ECS service ${service} has no container ${configured ? `named ${configured}` : 'at all'} (it has ${names.join(', ') || 'none'})`,
      configured ? 'fix workload.container in deploy.yaml (or leave it out for the first container)' : 'give the service a task definition with a container',
    );
  }
  return name;
}

/** The image `container` runs in `td`. */
export function imageOf(td: TaskDefinition, container: string): string | undefined {
  return td.containerDefinitions?.find((c) => c.name === container)?.image;
}

/** What to register for the candidate: `td`'s registrable fields with `container` running `image`. */
export function withImage(td: TaskDefinition, container: string, image: string): TaskDefinitionInput {
  const input: Record<string, unknown> = {};
  for (const key of REGISTRABLE) if (td[key] !== undefined && td[key] !== null) input[key] = td[key];
  input.containerDefinitions = (td.containerDefinitions ?? []).map((c) => (c.name === container ? { ...c, image } : c));
  return input as unknown as TaskDefinitionInput;
}

/** Whether `td`, as registered, is `input` (an earlier registration of the same derivation). */
export function isRegistrationOf(td: TaskDefinition, input: TaskDefinitionInput): boolean {
  return REGISTRABLE.every((key) => canonical(td[key]) === canonical(input[key]));
}

/** The roles registering `input` passes to ECS (each needs iam:PassRole). */
export function rolesOf(input: TaskDefinitionInput): string[] {
  return [input.taskRoleArn, input.executionRoleArn].filter((r): r is string => Boolean(r));
}

/**
 * JSON with sorted keys, where absent, null, empty lists and empty objects are one thing: the
 * API leaves some out when empty and reports others as `[]`, and neither is a difference.
 */
function canonical(value: unknown): string {
  return JSON.stringify(normalised(value)) ?? '';
}

function normalised(value: unknown): unknown {
  if (value === null || value === undefined) return undefined;
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) {
    const items = value.map(normalised);
    return items.length ? items : undefined;
  }
  if (typeof value === 'object') {
    const entries = Object.keys(value)
      .sort()
      .map((k) => [k, normalised((value as Record<string, unknown>)[k])] as const)
      .filter(([, v]) => v !== undefined);
    return entries.length ? Object.fromEntries(entries) : undefined;
  }
  return value;
}
