/** The s3 state backend's descriptor: its section in deploy.yaml, its prefix and its IAM statements. */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/parse.js';
import { UsageError } from '../../src/errors.js';
import { chosenProviders, leaseOf, platformsOf } from '../../src/providers/chosen.js';
import { S3AuditLog } from '../../src/state/s3/audit.js';
import { prefixOf, s3State } from '../../src/state/s3/index.js';
import { S3AccessDenied, WriteConflict, type StateObjects } from '../../src/state/s3/objects.js';

const base = `service: patient-api
stable: v1
versions:
  v1: { endpoints: ["127.0.0.1:9001"] }
  v2: { endpoints: ["127.0.0.1:9002"] }
router: { type: none }
aws: { region: eu-west-1 }
`;

function problem(text: string): string {
  try {
    parseConfig(text, 'deploy.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error('expected a config error');
}

describe('state type s3', () => {
  it('is chosen by type, uses the aws connection, and sets the lease', () => {
    const config = parseConfig(`${base}state: { type: s3, bucket: acme-cutover-state, lease: 45s }\n`, 'deploy.yaml');
    expect(chosenProviders(config).state).toBe(s3State);
    expect(platformsOf(config).has('aws')).toBe(true);
    expect(leaseOf(config)).toBe(45_000);
  });

  it('holds the bucket to S3 naming rules, naming the rule broken', () => {
    for (const [bucket, rule] of [
      ['ab', /3 to 63 characters/],
      ['x'.repeat(64), /3 to 63 characters/],
      ['Acme-State', /lower-case letters, digits/],
      ['acme_state', /lower-case letters, digits/],
      ['-acme', /starting and ending with a letter or digit/],
      ['acme..state', /no two adjacent periods/],
      ['192.168.1.10', /not an IP address/],
      ['xn--acme', /prefixes xn--, sthree- and amzn-s3-demo- are reserved/],
      ['acme-s3alias', /suffixes .* are reserved/],
    ] as const) {
      expect(problem(`${base}state: { type: s3, bucket: "${bucket}" }\n`), bucket).toMatch(new RegExp(`state\\.bucket: .*${rule.source}`));
    }
    expect(problem(`${base}state: { type: s3 }\n`)).toMatch(/state\.bucket/);
    expect(problem(`${base}state: { type: s3, bucket: acme, prefix: /abs }\n`)).toMatch(/state\.prefix: must be an S3 key prefix/);
    expect(problem(`${base}state: { type: s3, bucket: acme, prefix: "a/*" }\n`)).toMatch(/state\.prefix: must be an S3 key prefix/);
    expect(problem(`${base}state: { type: s3, bucket: acme, prefix: "a//b" }\n`)).toMatch(/without '\/\/'/);
  });

  it('keeps a service under cutover/<service>/ unless told, always ending in /', () => {
    expect(prefixOf({ type: 's3', bucket: 'acme' }, 'patient-api')).toBe('cutover/patient-api/');
    expect(prefixOf({ type: 's3', bucket: 'acme', prefix: 'teams/records' }, 'patient-api')).toBe('teams/records/');
    expect(prefixOf({ type: 's3', bucket: 'acme', prefix: 'teams/records/' }, 'patient-api')).toBe('teams/records/');
  });

  it('asks IAM for object access under its prefix and for listing that prefix only', () => {
    const config = parseConfig(`${base}state: { type: s3, bucket: acme-state, prefix: teams/records }\n`, 'deploy.yaml');
    expect(s3State.iam!(config.state as never, config)).toEqual([
      { Sid: 'StateObjects', Effect: 'Allow', Action: ['s3:GetObject', 's3:GetObjectVersion', 's3:PutObject', 's3:DeleteObject'], Resource: ['arn:aws:s3:::acme-state/teams/records/*'] },
      { Sid: 'ListStateObjects', Effect: 'Allow', Action: ['s3:ListBucket', 's3:ListBucketVersions'], Resource: ['arn:aws:s3:::acme-state'], Condition: { StringLike: { 's3:prefix': ['teams/records/*'] } } },
      { Sid: 'StateBucketVersioning', Effect: 'Allow', Action: ['s3:GetBucketVersioning'], Resource: ['arn:aws:s3:::acme-state'] },
    ]);
    // Nothing that could remove the audit head's versions, or stop them being kept.
    const actions = s3State.iam!(config.state as never, config).flatMap((st) => st.Action);
    for (const never of ['s3:DeleteObjectVersion', 's3:PutBucketVersioning', 's3:PutLifecycleConfiguration']) expect(actions).not.toContain(never);
  });
});

/** Objects in memory, without versioning; `denied` names the calls the credentials may not make. */
function memoryObjects(denied: string[] = []): StateObjects {
  const objects = new Map<string, { body: string; etag: string }>();
  let writes = 0;
  const refuse = (call: string) => {
    if (denied.includes(call)) throw new S3AccessDenied(`S3 ${call} on s3://acme/: AccessDenied: Access Denied`);
  };
  return {
    bucket: 'acme',
    async get(key) {
      return objects.get(key);
    },
    async put(key, body, condition) {
      const current = objects.get(key);
      if (condition && ('ifNoneMatch' in condition ? current : current?.etag !== condition.ifMatch)) throw new WriteConflict(key, 412);
      const etag = `"${++writes}"`;
      objects.set(key, { body, etag });
      return etag;
    },
    async delete(key) {
      objects.delete(key);
    },
    async list(prefix, startAfter) {
      return [...objects.keys()].filter((k) => k.startsWith(prefix) && (!startAfter || k > startAfter)).sort();
    },
    async versioning() {
      refuse('GetBucketVersioning');
      return undefined;
    },
    async versions() {
      refuse('ListObjectVersions');
      return [];
    },
  };
}

describe('the s3 audit head', () => {
  it('is kept beside the log; without s3:GetBucketVersioning the latest is compared and the output says what was not', async () => {
    const log = new S3AuditLog(memoryObjects(['GetBucketVersioning']), 'cutover/api/audit/');
    for (let i = 0; i < 3; i++) await log.append({ actor: 'a@h', action: 'rollout.step', detail: { i } });
    const verdict = await log.verify();
    expect(verdict).toMatchObject({ ok: true, records: 3, head: { where: 's3://acme/cutover/api/audit-head.json', ok: true, compared: 1, seq: 3 } });
    expect(verdict.head?.notes).toEqual([expect.stringMatching(/^the head's versions could not be read \(S3 GetBucketVersioning on s3:\/\/acme\/: AccessDenied: Access Denied\): only the latest head was compared$/)]);
  });

  it('without versioning, says that only the latest head is kept', async () => {
    const log = new S3AuditLog(memoryObjects(), 'cutover/api/audit/');
    await log.append({ actor: 'a@h', action: 'rollout.started' });
    expect((await log.verify()).head?.notes).toEqual([expect.stringMatching(/^versioning is off on bucket acme: only the latest head is kept/)]);
  });
});
