/**
 * The cache of validated configs, through the bundled CLI as users run it: a file validated once
 * is read back from the cache by the same build; an edited file validates afresh (a bad edit fails
 * with exit 2 whatever was kept before); and what is kept is exactly what validation returned.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/parse.js';
import { DEPLOY } from '../helpers/sandbox.js';

const CONFIG = `service: patient-api
stable: v1
versions:
  v1: { endpoints: ["127.0.0.1:9001"] }
  v2: { endpoints: ["127.0.0.1:9002"] }
router:
  type: none
strategy:
  canary:
    steps:
      - weight: 50
        hold: 10ms
      - weight: 100
`;

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function deploy(args: string[], cache: string) {
  const r = spawnSync(DEPLOY, args, { env: { ...process.env, CI: 'true', XDG_CACHE_HOME: cache }, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('validated configs kept between runs', () => {
  it('are read back by the same build, never for an edited file, and a bad edit still exits 2', () => {
    dir = mkdtempSync(join(tmpdir(), 'cutover-config-cache-'));
    const cache = join(dir, 'cache');
    const file = join(dir, 'deploy.yaml');
    writeFileSync(file, CONFIG);
    const buildId = readFileSync(resolve(import.meta.dirname, '../../dist/bundle/build-id'), 'utf8').trim();
    const folder = join(cache, 'cutover', 'configs', buildId);

    const first = deploy(['status', '-f', file, '-o', 'json'], cache);
    expect(first.code, first.stderr).toBe(0);
    const kept = readdirSync(folder);
    expect(kept).toHaveLength(1);
    const entry = join(folder, kept[0]!);
    expect(statSync(entry).mode & 0o777).toBe(0o600);
    // What is kept is what validation gave, through JSON and back unchanged.
    expect(JSON.parse(readFileSync(entry, 'utf8')).config).toStrictEqual(parseConfig(CONFIG, 'deploy.yaml'));

    // Read back: an entry changed by hand (a service name the file does not have) is what the next run sees.
    const changed = JSON.parse(readFileSync(entry, 'utf8'));
    changed.config.service = 'from-the-cache';
    writeFileSync(entry, JSON.stringify(changed));
    expect(JSON.parse(deploy(['status', '-f', file, '-o', 'json'], cache).stdout).service).toBe('from-the-cache');

    // An edited file is validated again: a bad value fails with its line, exit 2.
    writeFileSync(file, CONFIG.replace('weight: 50', 'weight: 150'));
    const bad = deploy(['status', '-f', file], cache);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/deploy\.yaml:11:\d+ strategy\.canary\.steps\[0\]\.weight/);
    expect(readdirSync(folder)).toHaveLength(1);

    // A good edit is validated and kept beside the first.
    writeFileSync(file, CONFIG.replace('patient-api', 'records-api'));
    expect(JSON.parse(deploy(['status', '-f', file, '-o', 'json'], cache).stdout).service).toBe('records-api');
    expect(readdirSync(folder)).toHaveLength(2);
  });

  it('an earlier build’s entries are removed when this build keeps its first', () => {
    dir = mkdtempSync(join(tmpdir(), 'cutover-config-cache-'));
    const cache = join(dir, 'cache');
    const file = join(dir, 'deploy.yaml');
    writeFileSync(file, CONFIG);
    const old = join(cache, 'cutover', 'configs', 'an-older-build');
    execFileSync('mkdir', ['-p', old]);
    writeFileSync(join(old, 'x.json'), '{}');
    expect(deploy(['status', '-f', file], cache).code).toBe(0);
    expect(existsSync(old)).toBe(false);
  });
});
