/**
 * The `alb` router: weights between target groups on an Application Load Balancer listener (its
 * default action or one rule) and org pins as listener rules. See router.ts.
 */
import { z } from 'zod';
import { AWS_REGION_PATTERN } from '../../aws/connection.js';
import type { PolicyStatement } from '../../aws/iam.js';
import { name } from '../../config/fields.js';
import type { RouterProvider } from '../../providers/provider.js';
import { albStatements } from './policy.js';

const arn = (kind: string, example: string) =>
  z.string().regex(new RegExp(`^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\\d{12}:${kind}/`), `must be an ELBv2 ${kind} ARN, like ${example}`);
const listenerArn = arn('listener', 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/patient-api/50dc6c495c0c9188/f2f7dc8efc522ab2');
const targetGroupArn = arn('targetgroup', 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/patient-api-v1/943f017f100becff');

const schema = z
  .strictObject({
    type: z.literal('alb'),
    listenerArn: listenerArn.meta({ description: 'The listener whose default action (or rule) carries the weights' }),
    rule: z
      .union([
        z.strictObject({ arn: arn('listener-rule', 'arn:aws:elasticloadbalancing:…:listener-rule/app/…') }),
        z.strictObject({
          priority: z.number().int().min(1).max(50_000),
          pathPatterns: z.array(z.string().min(1).max(128)).optional(),
          hostHeaders: z.array(z.string().min(1).max(128)).optional(),
        }),
      ])
      .optional()
      .meta({ description: 'Weights on this listener rule instead of the default action: { arn } or { priority, pathPatterns?, hostHeaders? } (created when missing)' }),
    targetGroups: z.record(name('version'), targetGroupArn).meta({ description: 'Target group ARN of each version, e.g. { v1: arn:…, v2: arn:… }' }),
    region: z.string().regex(AWS_REGION_PATTERN, 'must be an AWS region, like eu-west-1').optional()
      .meta({ description: "AWS region (default: AWS_REGION, the profile's, else the listener ARN's)" }),
    profile: z.string().min(1).optional().meta({ description: 'AWS profile from the shared config files (default: AWS_PROFILE or default)' }),
    endpointUrl: z.string().regex(/^https?:\/\/[^\s]+$/, 'must be an http(s) URL').optional()
      .meta({ description: 'An ELBv2-compatible endpoint instead of AWS (a local emulator)' }),
    orgHeader: z.string().regex(/^[A-Za-z0-9-]{1,40}$/, 'must be an HTTP header name of at most 40 characters').optional()
      .meta({ description: 'Header carrying the org id, matched by org rules (default X-Org-Id)' }),
    maxRules: z.number().int().min(1).max(10_000).optional()
      .meta({ description: 'Rules the load balancer may hold (default 100, the ALB quota; raise it with your quota)' }),
  });

/** The alb router section. */
export type AlbRouterConfig = z.output<typeof schema>;

/** The alb router's descriptor. */
export const albRouter: RouterProvider<typeof schema> = {
  type: 'alb',
  schema,
  platforms: ['aws'],
  validate(r, config, issue) {
    for (const key of ['region', 'profile', 'endpointUrl'] as const) {
      if (r[key] !== undefined && config.aws?.[key] !== undefined && r[key] !== config.aws[key]) issue(['router', key], `is ${r[key]} while aws.${key} is ${config.aws[key]}: set it in one place`);
    }
    for (const v of Object.keys(config.versions)) {
      if (!r.targetGroups[v]) issue(['router', 'targetGroups'], `needs the target group ARN of version ${v}`);
    }
    for (const v of Object.keys(r.targetGroups)) {
      if (!(v in config.versions)) issue(['router', 'targetGroups', v], `is not a version listed under versions: (${Object.keys(config.versions).join(', ')})`);
    }
  },
  iam(r, config): PolicyStatement[] {
    return albStatements(r, config);
  },
  async create(r, { config, leaseMs, report }) {
    // The AWS SDK loads only here, so commands without an ALB never pay for it.
    const { createAlbRouter } = await import('./config.js');
    return createAlbRouter(withConnection(r, config.aws), config.service, process.env, leaseMs, config.orgs !== undefined, report);
  },
};

/**
 * The router section with the connection of the `aws:` section, which also carries the
 * --region, --profile and --endpoint-url flags, so those win over the section's own fields.
 */
export function withConnection(r: AlbRouterConfig, aws: { region?: string | undefined; profile?: string | undefined; endpointUrl?: string | undefined } | undefined): AlbRouterConfig {
  const region = aws?.region ?? r.region;
  const profile = aws?.profile ?? r.profile;
  const endpointUrl = aws?.endpointUrl ?? r.endpointUrl;
  return { ...r, ...(region ? { region } : {}), ...(profile ? { profile } : {}), ...(endpointUrl ? { endpointUrl } : {}) };
}
