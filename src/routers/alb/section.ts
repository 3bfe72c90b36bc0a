/** The `alb` router's section of deploy.yaml, loaded only when a config is validated. */
import { z } from 'zod';
import { name } from '../../config/fields.js';
import { AWS_REGION_PATTERN } from '../../config/patterns.js';

const arn = (kind: string, example: string) =>
  z.string().regex(new RegExp(`^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\\d{12}:${kind}/`), `must be an ELBv2 ${kind} ARN, like ${example}`);
const listenerArn = arn('listener', 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/patient-api/50dc6c495c0c9188/f2f7dc8efc522ab2');
const targetGroupArn = arn('targetgroup', 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/patient-api-v1/943f017f100becff');

export const schema = z
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
