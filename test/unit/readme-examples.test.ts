/**
 * The README's deploy.yaml examples are valid configs as printed, and say what they claim: each
 * yaml block under a section is loaded through the real schema.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { chosenProviders } from '../../src/providers/chosen.js';

const readme = readFileSync(path.resolve(import.meta.dirname, '../../README.md'), 'utf8');

/** The first yaml block after `heading`. */
function example(heading: string): string {
  const at = readme.indexOf(heading);
  expect(at, `README.md has "${heading}"`).toBeGreaterThanOrEqual(0);
  const block = /```yaml\n([\s\S]*?)```/.exec(readme.slice(at))?.[1];
  if (!block) throw new Error(`no yaml block after ${heading}`);
  return block;
}

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function load(yaml: string) {
  dir = mkdtempSync(path.join(tmpdir(), 'cutover-readme-'));
  const file = path.join(dir, 'deploy.yaml');
  writeFileSync(file, yaml);
  return (await loadConfig(file)).config;
}

describe("the README's examples", () => {
  it('release groups: the seed namespace as one group — six members, the API the traffic member, the order and a consumer gate', async () => {
    const config = await load(example('## Release groups'));
    expect(chosenProviders(config).workload?.type).toBe('group');
    const members = (config.workload as { members: { name: string; role: string }[] }).members;
    expect(members.map((m) => `${m.name}:${m.role}`)).toEqual(['api:traffic', 'lis-testresult:consumer', 'customer:consumer', 'homekit-register:consumer', 'worker:worker', 'cron:cron']);
    expect(config.gates?.find((g) => g.name === 'lis-failures')).toMatchObject({ type: 'errorRate', member: 'lis-testresult' });
  });

  it('fleets: three regions, each with its own nginx, servers and metrics labels, under one lockstep router', async () => {
    const config = await load(example('## Fleets'));
    expect(config.router).toMatchObject({ type: 'fleet', strategy: 'lockstep' });
    expect(Object.keys(config.targets ?? {})).toEqual(['eu', 'us', 'ap']);
    expect(Object.values(config.targets ?? {}).map((t) => t.router.type)).toEqual(['nginx', 'nginx', 'nginx']);
  });

  it('AWS without Kubernetes: alb, ecs, s3 and cloudwatch', async () => {
    const config = await load(example('## AWS without Kubernetes'));
    const chosen = chosenProviders(config);
    expect([chosen.router.type, chosen.workload?.type, chosen.state.type, config.cloudwatch !== undefined]).toEqual(['alb', 'ecs', 's3', true]);
  });
});
