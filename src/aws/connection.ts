/**
 * The `aws:` section: where every AWS provider (the alb router, and any other that calls AWS)
 * sends its calls. Credentials are never configured: the SDK's default provider chain finds
 * them (environment, shared profiles, SSO, web identity, container and instance roles).
 */
import { z } from 'zod';
import { AWS_REGION_PATTERN } from '../config/patterns.js';

/** The section's schema. */
export const awsConnection = z.strictObject({
  region: z.string().regex(AWS_REGION_PATTERN, 'must be an AWS region, like eu-west-1').optional()
    .meta({ description: "AWS region (default: AWS_REGION, the profile's)" }),
  profile: z.string().min(1).optional().meta({ description: 'AWS profile from the shared config files (default: AWS_PROFILE or default)' }),
  endpointUrl: z.string().regex(/^https?:\/\/[^\s]+$/, 'must be an http(s) URL').optional()
    .meta({ description: 'An AWS-compatible endpoint instead of AWS (a local emulator)' }),
});

/** The `aws:` section as validated. */
export type AwsConnection = z.output<typeof awsConnection>;
