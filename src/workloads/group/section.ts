/**
 * The `workload: { type: group }` section of deploy.yaml, loaded only when a config is validated.
 * The rules that tie it to the rest of the file (member names, the one traffic member a router
 * routes to, the promotion order, an image for every member at every version it may run) are in
 * members.ts.
 */
import { z } from 'zod';
import { duration, kubeName, name, shown } from '../../config/fields.js';
import { parsePercent } from '../../config/units.js';

/** A step's weight in percent (`25%`, `25`), above 0 and up to 100. */
const stepWeight = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const p = parsePercent(value);
  if (p === undefined || p <= 0 || p > 100) {
    ctx.addIssue({ code: 'custom', message: `must be a step's weight above 0 and up to 100%, like 25% (got ${shown(value)})` });
    return z.NEVER;
  }
  return p;
});

/** `promotion`, or a step's weight. */
const switchAt = z.union([z.string(), z.number()]).transform((value, ctx): number | 'promotion' => {
  if (value === 'promotion') return 'promotion';
  const p = parsePercent(value);
  if (p === undefined || p <= 0 || p > 100) {
    ctx.addIssue({ code: 'custom', message: `must be promotion or a step's weight above 0 and up to 100%, like 50% (got ${shown(value)})` });
    return z.NEVER;
  }
  return p;
});

const common = {
  name: name('member'),
  container: z.string().min(1).optional().meta({ description: "Container whose image is the version's (default: the first)" }),
  image: z.string().regex(/^\S+$/, 'must be a container image reference; {{version}} is filled in').optional()
    .meta({ description: "This member's image of each version, with {{version}} (default: versions.<version>.image)" }),
};

const deployment = {
  deployment: kubeName('Deployment').meta({ description: 'The stable Deployment; the candidate runs in <deployment>-canary' }),
  canaryDeployment: kubeName('Deployment').optional(),
  replicas: z.number().int().min(1).max(10_000).optional().meta({ description: "The member's replicas (default: the stable Deployment's)" }),
};

const trafficMember = z.strictObject({
  role: z.literal('traffic').meta({ description: 'The API: its canary takes the step’s traffic weight through the router' }),
  ...common,
  ...deployment,
});

const queueMember = z.strictObject({
  role: z.enum(['consumer', 'worker']).meta({ description: 'No traffic: its canary takes its share of the member’s replicas at each step' }),
  ...common,
  ...deployment,
  firstCandidateStep: stepWeight.optional()
    .meta({ description: 'The candidate’s first replica comes at the first step of at least this weight (default 25%)' }),
});

const cronMember = z.strictObject({
  role: z.literal('cron').meta({ description: 'A CronJob: its template switches to the candidate at one moment' }),
  ...common,
  cronJob: kubeName('CronJob'),
  switchAt: switchAt.optional()
    .meta({ description: 'promotion (default), or the weight of the step from which its Jobs run the candidate; a failed Job of the candidate rolls back' }),
  runningJobs: z.enum(['finish', 'stop']).optional()
    .meta({ description: "On rollback, the candidate's Jobs still running are left to finish (default) or stopped" }),
});

const member = z.discriminatedUnion('role', [trafficMember, queueMember, cronMember], {
  error: (issue) =>
    issue.code === 'invalid_union' ? `role must be one of: traffic, consumer, worker, cron (got ${JSON.stringify((issue.input as { role?: unknown } | undefined)?.role ?? null)})` : undefined,
});

/** The section's schema. */
export const groupSchema = z.strictObject({
  type: z.literal('group'),
  members: z.array(member).min(1, 'must list at least one member'),
  order: z.array(name('member')).optional()
    .meta({ description: 'Member names in the order they are promoted (default: as listed); a rollback goes in the reverse order' }),
  progressDeadline: duration.optional().meta({ description: 'How long a member may take to become ready at a step or a promotion (default 5m)' }),
});

/** The group section as validated. */
export type GroupConfig = z.output<typeof groupSchema>;
/** One member as validated. */
export type MemberConfig = GroupConfig['members'][number];
