/**
 * The `s3` state backend: state, documents, the driver lock, operator requests and the audit log
 * as objects under one prefix of an S3 bucket, every write a conditional one. See store.ts.
 */
import type { PolicyStatement } from '../../aws/iam.js';
import { validateState, type RolloutState } from '../../engine/state.js';
import type { StateProvider } from '../../providers/provider.js';
import { DEFAULT_LEASE_MS } from '../store.js';
import type { schema, S3StateConfig } from './section.js';

export type { S3StateConfig } from './section.js';

/** The prefix the objects live under, always ending in '/'. */
export function prefixOf(s: S3StateConfig, service: string): string {
  const prefix = s.prefix ?? `cutover/${service}/`;
  return prefix.endsWith('/') ? prefix : `${prefix}/`;
}

/** The s3 backend's descriptor. */
export const s3State: StateProvider<typeof schema> = {
  type: 's3',
  schema: () => import('./section.js').then((m) => m.schema),
  platforms: ['aws'],
  lease: (s) => s.lease,
  iam(s, config): PolicyStatement[] {
    const prefix = prefixOf(s, config.service);
    return [
      // Conditional writes (If-Match, If-None-Match) need no more than s3:PutObject. Reading the
      // audit head's past versions needs s3:GetObjectVersion; s3:DeleteObjectVersion is not
      // granted, so these credentials cannot remove the heads that expose a rewritten log.
      { Sid: 'StateObjects', Effect: 'Allow', Action: ['s3:GetObject', 's3:GetObjectVersion', 's3:PutObject', 's3:DeleteObject'], Resource: [`arn:aws:s3:::${s.bucket}/${prefix}*`] },
      // Listing finds the audit records, requests and the head's versions; it also makes a
      // missing object a 404, not a 403.
      { Sid: 'ListStateObjects', Effect: 'Allow', Action: ['s3:ListBucket', 's3:ListBucketVersions'], Resource: [`arn:aws:s3:::${s.bucket}`], Condition: { StringLike: { 's3:prefix': [`${prefix}*`] } } },
      // Whether the bucket keeps versions: `deploy history` says what the head proves without.
      { Sid: 'StateBucketVersioning', Effect: 'Allow', Action: ['s3:GetBucketVersioning'], Resource: [`arn:aws:s3:::${s.bucket}`] },
    ];
  },
  async open(s, { config, clock, report }) {
    // The S3 SDK loads only here, so commands on other backends never pay for it.
    const [{ S3StateStore }, { SdkStateObjects }] = await Promise.all([import('./store.js'), import('./objects.js')]);
    const aws = config.aws ?? {};
    const objects = new SdkStateObjects(
      { bucket: s.bucket, leaseMs: s.lease ?? DEFAULT_LEASE_MS, ...(aws.region ? { region: aws.region } : {}), ...(aws.profile ? { profile: aws.profile } : {}), ...(aws.endpointUrl ? { endpointUrl: aws.endpointUrl } : {}) },
      report ? (operation, error, delayMs) => report({ event: 'retry', provider: 's3', operation, error: error.message.split('\n')[0]!, delayMs }) : undefined,
    );
    return new S3StateStore<RolloutState>(objects, { prefix: prefixOf(s, config.service), clock, validate: validateState });
  },
};
