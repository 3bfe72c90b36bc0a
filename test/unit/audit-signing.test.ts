/**
 * Signed audit records through the CLI: a rollout's records are signed with the configured
 * Ed25519 key; `deploy history --verify --public-key` proves them, and names the first record of a
 * log rewritten with every hash recomputed — which the hash chain alone cannot see.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hashRecord } from '../../src/state/chain.js';
import type { AuditRecord } from '../../src/state/store.js';
import { runCli } from '../helpers/cli.js';

let dir: string;
let file: string;
let privatePem: string;
let publicFile: string;

const config = (audit: string) => `service: patient-api
stable: v1
versions:
  v1: {}
  v2: {}
router:
  type: none
${audit}strategy:
  canary:
    checkInterval: 10ms
    steps:
      - { weight: 50, hold: 0s }
`;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cutover-sign-'));
  file = join(dir, 'deploy.yaml');
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  writeFileSync(join(dir, 'audit-key.pem'), privatePem, { mode: 0o600 });
  publicFile = join(dir, 'audit-key.pub.pem');
  writeFileSync(publicFile, publicKey.export({ type: 'spki', format: 'pem' }).toString());
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
  delete process.env.CUTOVER_TEST_AUDIT_KEY;
});

const auditFile = () => join(dir, '.deploy', 'audit.jsonl');
const records = () => readFileSync(auditFile(), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as AuditRecord);

describe('signed audit records', () => {
  it('signs every record with a key from a file; history --verify --public-key proves them', async () => {
    writeFileSync(file, config('audit:\n  signingKey: { file: audit-key.pem }\n'));
    expect((await runCli(['promote', '--to', 'v2', '-y', '-f', file])).code).toBe(0);
    expect(records().length).toBeGreaterThanOrEqual(3);
    expect(records().every((r) => r.sig && r.sig.key.length === 16 && r.sig.value.length > 0)).toBe(true);
    const run = await runCli(['history', '--verify', '--public-key', publicFile, '-f', file]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/chain verified: \d+ records, every one signed\nevery record is signed by key [0-9a-f]{16}: the log was not changed by anyone without its private key\n$/);
    // The key is never written anywhere with the state.
    expect(readFileSync(auditFile(), 'utf8')).not.toContain(privatePem.split('\n')[1]!);
  });

  it('names the first record of a log rewritten with every hash recomputed, which the chain alone passes', async () => {
    process.env.CUTOVER_TEST_AUDIT_KEY = privatePem;
    writeFileSync(file, config('audit:\n  signingKey: { env: CUTOVER_TEST_AUDIT_KEY }\n'));
    expect((await runCli(['promote', '--to', 'v2', '-y', '-f', file])).code).toBe(0);
    // Whoever can write the log changes record 2 and recomputes every hash from it on.
    const log = records();
    log[1] = { ...log[1]!, actor: 'someone-else@host', detail: { ...log[1]!.detail, note: 'rewritten' } };
    for (let i = 1; i < log.length; i++) {
      const body = { ...log[i]!, prev: log[i - 1]!.hash };
      log[i] = { ...body, hash: hashRecord(body) };
    }
    writeFileSync(auditFile(), log.map((r) => `${JSON.stringify(r)}\n`).join(''));

    const chainOnly = await runCli(['history', '--verify', '-f', file]);
    expect(chainOnly.code).toBe(0);
    expect(chainOnly.stdout).toMatch(/chain verified: \d+ records\nthe hash chain shows no record was changed by someone who could not rewrite the log; anyone able to write it could have rewritten it/);
    const signed = await runCli(['history', '--verify', '--public-key', publicFile, '-f', file, '-o', 'json']);
    expect(signed.code).toBe(1);
    const verdict = JSON.parse(signed.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
    expect(verdict).toMatchObject({ event: 'verify', ok: false, brokenAt: 2, signed: false });
    expect(verdict.reason).toMatch(/^record 2: its signature does not verify/);
  });

  it('refuses a missing or wrong key before anything is recorded (exit 2)', async () => {
    writeFileSync(file, config('audit:\n  signingKey: { env: CUTOVER_TEST_AUDIT_KEY }\n'));
    const missing = await runCli(['promote', '--to', 'v2', '-y', '-f', file]);
    expect([missing.code, missing.stderr]).toEqual([2, expect.stringMatching(/audit signing key: environment variable CUTOVER_TEST_AUDIT_KEY is not set/)]);
    process.env.CUTOVER_TEST_AUDIT_KEY = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const wrong = await runCli(['promote', '--to', 'v2', '-y', '-f', file]);
    expect([wrong.code, wrong.stderr]).toEqual([2, expect.stringMatching(/holds a ec key, not Ed25519/)]);
    expect(() => readFileSync(auditFile())).toThrow();
  });
});
