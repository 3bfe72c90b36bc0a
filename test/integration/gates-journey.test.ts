/**
 * The journey gate against real sample services, driven by `deploy promote` as a user runs it:
 * log in → view records → check medications, run against each version at its endpoints every
 * half second. A healthy candidate is promoted on its runs alone; a candidate whose medications
 * step starts failing is rolled back, the failed step named in the rollback and the journeys'
 * steps and timings in the gate's events. No Prometheus: journeys need none.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSampleService, type SampleService } from '../../src/sandbox/sample-service.js';
import { DEPLOY, jsonLines } from '../helpers/sandbox.js';

let dir: string;
const services: Record<string, SampleService> = {};

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'cutover-journey-'));
  for (const v of ['v1', 'v2', 'v3']) services[v] = await startSampleService({ version: v });
});
afterAll(async () => {
  await Promise.all(Object.values(services).map((s) => s.stop()));
  await rm(dir, { recursive: true, force: true });
});

async function config(name: string): Promise<string> {
  const file = path.join(dir, `${name}.yaml`);
  await writeFile(
    file,
    `service: patient-api
stable: v1
versions:
${Object.entries(services).map(([v, s]) => `  ${v}: { endpoints: ["127.0.0.1:${s.port}"] }`).join('\n')}
router:
  type: none
state:
  type: local
  dir: state-${name}
gates:
  - name: journey
    type: journey
    maxIncrease: 50%
    headers: { X-Org-Id: probe }
    steps:
      - { name: log in, method: POST, path: /login, body: '{"user":"probe"}' }
      - { name: view records, path: /records/123, contains: v }
      - { name: check medications, path: /medications }
strategy:
  canary:
    checkInterval: 500ms
    inconclusive: { after: 30s, action: pause }
    steps:
      - { weight: 10, hold: 4s }
      - { weight: 50, hold: 4s }
      - { weight: 100 }
`,
  );
  return file;
}

describe('the journey gate', () => {
  it('promotes a candidate whose journeys pass, on its runs alone', async () => {
    const r = await execa(DEPLOY, ['promote', '--to', 'v2', '-f', await config('good'), '-o', 'json'], { reject: false, env: { CI: 'true' }, timeout: 90_000 });
    expect(r.exitCode, r.stderr).toBe(0);
    const events = jsonLines(r.stdout);
    const gates = events.filter((e) => e.event === 'gate') as { verdict: string; reason: string; journeys?: { version: string; ok: boolean; steps: { name: string; ms: number; status: number }[] }[] }[];
    expect(gates.filter((g) => g.verdict === 'passed')).toHaveLength(2);
    expect(gates.some((g) => g.verdict === 'failed')).toBe(false);
    const run = gates.find((g) => g.journeys?.length)!.journeys!;
    expect(run.map((j) => j.version).sort()).toEqual(['v1', 'v2']);
    expect(run[0]!.steps.map((s) => [s.name, s.status])).toEqual([['log in', 200], ['view records', 200], ['check medications', 200]]);
    expect(run[0]!.steps.every((s) => s.ms >= 0 && s.ms < 2_000)).toBe(true);
    expect(gates.find((g) => g.verdict === 'passed')!.reason).toMatch(/^0 of \d+ runs failed on v2, 0 of \d+ on v1: at most \+[\d.]+ points over \d+ requests, within this step's \+50/);
  });

  it('rolls back a candidate whose medications step fails, naming the step', async () => {
    services.v3!.setFault({ failPaths: ['/medications'] });
    const r = await execa(DEPLOY, ['promote', '--to', 'v3', '-f', await config('bad'), '-o', 'json'], { reject: false, env: { CI: 'true' }, timeout: 90_000 });
    expect(r.exitCode, r.stderr).toBe(3);
    const events = jsonLines(r.stdout);
    const rollback = events.find((e) => e.event === 'rollback') as { reason: string; weights: Record<string, number> };
    expect(rollback.weights).toEqual({ v1: 100 });
    expect(rollback.reason).toMatch(/^gate journey failed: \d+ of \d+ runs failed on v3, 0 of \d+ on v1; last: v3 at step "check medications": HTTP 500, expected 200$/);
    const failedRun = (events.filter((e) => e.event === 'gate') as { journeys?: { version: string; ok: boolean; steps: { name: string; ok: boolean }[] }[] }[])
      .flatMap((g) => g.journeys ?? [])
      .find((j) => j.version === 'v3' && !j.ok)!;
    expect(failedRun.steps.map((s) => [s.name, s.ok])).toEqual([['log in', true], ['view records', true], ['check medications', false]]);
  });
});
