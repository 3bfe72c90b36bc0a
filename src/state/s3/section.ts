/** The `s3` state section of deploy.yaml, loaded only when a config is validated. */
import { z } from 'zod';
import { lease } from '../../config/fields.js';

/** S3's naming rules for general purpose buckets, each with the message that names it. */
const bucketName = z
  .string()
  .min(3, 'must be an S3 bucket name of 3 to 63 characters')
  .max(63, 'must be an S3 bucket name of 3 to 63 characters')
  .regex(/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/, "must be an S3 bucket name: lower-case letters, digits, '.' and '-', starting and ending with a letter or digit")
  .refine((v) => !v.includes('..'), 'must be an S3 bucket name: no two adjacent periods')
  .refine((v) => !/^\d{1,3}(\.\d{1,3}){3}$/.test(v), 'must be an S3 bucket name, not an IP address')
  .refine((v) => !/^(xn--|sthree-|amzn-s3-demo-)/.test(v), "must be an S3 bucket name: the prefixes xn--, sthree- and amzn-s3-demo- are reserved")
  .refine((v) => !/(-s3alias|--ol-s3|\.mrap|--x-s3|--table-s3)$/.test(v), 'must be an S3 bucket name: the suffixes -s3alias, --ol-s3, .mrap, --x-s3 and --table-s3 are reserved');

/** A key prefix: safe characters only, so it can stand in an IAM resource ARN (no `*` or `?`). */
const keyPrefix = z
  .string()
  .min(1)
  .max(512)
  .regex(/^[A-Za-z0-9!_.'()-][A-Za-z0-9!_.'()/-]*$/, "must be an S3 key prefix of letters, digits and !_.'()-/, not starting with '/'")
  .refine((v) => !v.includes('//'), "must be an S3 key prefix without '//'");

export const schema = z.strictObject({
  type: z.literal('s3'),
  bucket: bucketName.meta({ description: 'The bucket holding state, lock, requests and audit log (it must exist)' }),
  prefix: keyPrefix.optional().meta({ description: "Key prefix of this service's objects (default cutover/<service>/; a '/' is added when missing)" }),
  lease: lease.optional().meta({ description: 'Driver lock lease (default 30s), renewed at a third of it' }),
});

/** The s3 state section. */
export type S3StateConfig = z.output<typeof schema>;
