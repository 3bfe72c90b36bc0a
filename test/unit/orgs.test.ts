/**
 * The org model: the directory and what commands may name, the org-waves plan, the route spec
 * every write carries, and `deploy orgs` through the CLI on the none router (bad input included).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/parse.js';
import { loadOrgDirectory, selectOrgs } from '../../src/orgs/directory.js';
import { routeSpec } from '../../src/orgs/routes.js';
import { LocalStateStore } from '../../src/state/local/store.js';
import { planOrgWaves } from '../../strategies/org-waves.js';
import { runCli } from '../helpers/cli.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function project(extra = ''): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'cutover-orgs-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'orgs.txt'), '# id groups\nst-marys pilot\nriverside pilot east\nnorthfield\n' + Array.from({ length: 97 }, (_, i) => `clinic-${i}`).join('\n') + '\n');
  const file = join(dir, 'deploy.yaml');
  writeFileSync(
    file,
    `service: patient-api
stable: v1
versions:
  v1: { endpoints: ["127.0.0.1:9001"] }
  v2: { endpoints: ["127.0.0.1:9002"] }
router:
  type: none
orgs:
  file: orgs.txt
  groups:
    night-shift: [northfield]
${extra}`,
  );
  return { dir, file };
}

describe('org directory', () => {
  it('reads ids and groups from the file and the config', () => {
    const { dir, file } = project();
    const config = parseConfig(readFileSync(file, 'utf8'), 'deploy.yaml');
    const d = loadOrgDirectory(config, dir);
    expect(d.ids).toHaveLength(100);
    expect(d.groups).toEqual({ pilot: ['riverside', 'st-marys'], east: ['riverside'], 'night-shift': ['northfield'] });
    expect(selectOrgs(d, { group: 'pilot' })).toEqual(['riverside', 'st-marys']);
    expect(() => selectOrgs(d, { ids: ['st-marys', 'nowhere'] })).toThrow(/unknown org: nowhere/);
    expect(() => selectOrgs(d, { ids: ['acme";\n include /etc/passwd'] })).toThrow(/not an org id/);
    expect(() => selectOrgs(d, { group: 'west' })).toThrow(/unknown group west/);
  });

  it('refuses a crafted id in the org file with its line', () => {
    const { dir, file } = project();
    writeFileSync(join(dir, 'orgs.txt'), 'good-org\nbad"org\n');
    const config = parseConfig(readFileSync(file, 'utf8'), 'deploy.yaml');
    expect(() => loadOrgDirectory(config, dir)).toThrow(/orgs\.txt:2: "bad"org" is not an org id/);
  });

  it('refuses two ids that differ only in case, which some routers would take for one org', () => {
    const { dir, file } = project();
    writeFileSync(join(dir, 'orgs.txt'), 'Clinic-07\nclinic-07\n');
    const config = parseConfig(readFileSync(file, 'utf8'), 'deploy.yaml');
    expect(() => loadOrgDirectory(config, dir)).toThrow(/orgs "Clinic-07" and "clinic-07" differ only in case/);
  });
});

describe('org waves plan', () => {
  const ids = Array.from({ length: 200 }, (_, i) => `org-${i}`);
  it('moves the pilot, then a share, then everyone, cumulatively', () => {
    const plan = planOrgWaves({ waves: [{ group: 'pilot', hold: 1000 }, { share: 0.25, hold: 1000 }, { all: true }] }, ids, { pilot: ['org-7', 'org-9'] }, ['errors']);
    expect(plan.strategy).toBe('org-waves');
    expect(plan.steps.map((s) => [s.orgs?.length, s.weight, s.gates])).toEqual([
      [2, 0, ['errors']],
      [expect.any(Number), 0, ['errors']],
      [200, 100, []],
    ]);
    const second = plan.steps[1]!.orgs!;
    expect(second.length).toBeGreaterThanOrEqual(50);
    expect(second.length).toBeLessThanOrEqual(52);
    expect(second).toEqual(expect.arrayContaining(['org-7', 'org-9']));
    // the same orgs on every run and machine
    expect(planOrgWaves({ waves: [{ share: 0.25 }] }, ids, {}).steps[0]!.orgs).toEqual(planOrgWaves({ waves: [{ share: 0.25 }] }, [...ids].reverse(), {}).steps[0]!.orgs);
  });
});

describe('route spec', () => {
  it('explicit pins win over a wave; unpinned orgs follow stable until the candidate has everything', () => {
    const spec = routeSpec({ v1: 75, v2: 25 }, { 'st-marys': 'v1' }, ['st-marys', 'riverside'], 'stable', 'v1', 'v2');
    expect(spec).toEqual({ weights: { v1: 75, v2: 25 }, orgs: { 'st-marys': 'v1', riverside: 'v2' }, unpinned: { mode: 'version', version: 'v1' } });
    expect(routeSpec({ v1: 0, v2: 100 }, {}, [], 'stable', 'v1', 'v2').unpinned).toEqual({ mode: 'version', version: 'v2' });
    expect(routeSpec({ v1: 50, v2: 50 }, {}, [], 'weighted', 'v1', 'v2').unpinned).toEqual({ mode: 'weighted' });
  });
});

describe('deploy orgs on the none router', () => {
  it('moves a group in one write, lists pins, unpins, and audits every move', async () => {
    const { dir, file } = project();
    const move = await runCli(['orgs', 'move', '--group', 'pilot', '--to', 'v2', '-o', 'json', '-f', file]);
    expect(move.code, move.stderr).toBe(0);
    expect(JSON.parse(move.stdout)).toMatchObject({ event: 'orgs', action: 'move', to: 'v2', moved: ['riverside', 'st-marys'] });
    const again = await runCli(['orgs', 'move', 'st-marys', '--to', 'v2', '-f', file]);
    expect(again.stdout).toMatch(/nothing to change/);
    const list = await runCli(['orgs', 'list', '-o', 'json', '-f', file]);
    const rows = list.stdout.trim().split('\n').map((l) => JSON.parse(l) as { org: string; version: string; pinned: boolean });
    expect(rows).toHaveLength(100);
    expect(rows.find((r) => r.org === 'st-marys')).toMatchObject({ version: 'v2', pinned: true });
    expect(rows.find((r) => r.org === 'northfield')).toMatchObject({ version: 'v1', pinned: false });
    expect((await runCli(['orgs', 'unpin', 'st-marys', '-f', file])).code).toBe(0);
    const audit = await new LocalStateStore(join(dir, '.deploy')).audit.read();
    expect(audit.filter((r) => r.action === 'orgs.moved').map((r) => r.detail?.to)).toEqual(['v2', null]);
  });

  it('finishes an abort left in flight before it moves anything, never writing the split it was leaving', async () => {
    const { dir, file } = project('strategy:\n  canary:\n    steps:\n      - { weight: 5, hold: 200ms, pause: true }\n      - { weight: 100 }\n');
    // A rollout at 5%, then an abort killed right after its router write: its intent is recorded.
    const started = await runCli(['promote', '--to', 'v2', '-f', file]);
    expect(started.code, started.stderr).toBe(4);
    const path = join(dir, '.deploy', 'state.json');
    const state = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    writeFileSync(path, JSON.stringify({ ...state, phase: 'progressing', intent: { to: 'aborted', step: 0, weights: { v1: 100 }, reason: 'incident', at: new Date().toISOString() } }));
    const move = await runCli(['orgs', 'move', 'st-marys', '--to', 'v1', '-o', 'json', '-f', file]);
    expect(move.code, move.stderr).toBe(0);
    const after = JSON.parse(readFileSync(path, 'utf8')) as { phase: string; weights: Record<string, number>; intent?: unknown };
    expect([after.phase, after.weights, after.intent]).toEqual(['aborted', { v1: 100 }, undefined]);
    const actions = (await new LocalStateStore(join(dir, '.deploy')).audit.read()).map((r) => r.action);
    expect(actions.indexOf('rollout.aborted')).toBeGreaterThan(-1);
    expect(actions.indexOf('rollout.aborted')).toBeLessThan(actions.indexOf('orgs.moved'));
  });

  it('an abort returns the orgs pinned to the candidate as well, unless told --keep-pins', async () => {
    for (const keep of [false, true]) {
      const { file } = project('strategy:\n  canary:\n    steps:\n      - { weight: 5, hold: 200ms, pause: true }\n      - { weight: 100 }\n');
      expect((await runCli(['promote', '--to', 'v2', '-f', file])).code).toBe(4);
      expect((await runCli(['orgs', 'move', '--group', 'pilot', '--to', 'v2', '-f', file])).code).toBe(0);
      expect((await runCli(['orgs', 'move', 'northfield', '--to', 'v1', '-f', file])).code).toBe(0);
      const abort = await runCli(['abort', ...(keep ? ['--keep-pins'] : []), '-f', file]);
      expect(abort.code, abort.stderr).toBe(0);
      expect(abort.stdout).toMatch(keep ? /aborted, v1 100%; 2 orgs stay pinned to v2 \(--keep-pins\)/ : /aborted, v1 100%; 2 orgs pinned to v2 returned to v1/);
      const rows = (await runCli(['orgs', 'list', '-o', 'json', '-f', file])).stdout.trim().split('\n').map((l) => JSON.parse(l) as { org: string; version: string; pinned: boolean });
      const of = (org: string) => rows.find((r) => r.org === org)!;
      expect([of('st-marys').version, of('riverside').version]).toEqual(keep ? ['v2', 'v2'] : ['v1', 'v1']);
      // An org pinned to stable stays pinned: the abort only takes orgs off the candidate.
      expect(of('northfield')).toMatchObject({ version: 'v1', pinned: true });
    }
  });

  it('bad input exits 2 and changes nothing; a held lock exits 5', async () => {
    const { dir, file } = project();
    const bad = async (args: string[], message: RegExp, code = 2) => {
      const r = await runCli([...args, '-f', file]);
      expect(r.code, r.stderr).toBe(code);
      expect(r.stderr).toMatch(message);
    };
    await bad(['orgs', 'move', 'nowhere', '--to', 'v2'], /unknown org: nowhere/);
    await bad(['orgs', 'move', 'st-marys', '--to', 'v9'], /--to v9: unknown version/);
    await bad(['orgs', 'move', 'x"; drop', '--to', 'v2'], /not an org id/);
    await bad(['orgs', 'move', 'st-marys'], /needs --to/);
    await bad(['orgs', 'move', '--to', 'v2'], /name the orgs to move/);
    await bad(['orgs', 'move', 'st-marys', '--all', '--to', 'v2'], /takes one of org ids, --group G or --all; got org ids and --all/);
    await bad(['orgs', 'move', '--group', 'pilot', '--all', '--to', 'v2'], /got --group and --all/);
    const store = new LocalStateStore(join(dir, '.deploy'));
    const lock = await store.acquireLock({ owner: 'oncall@desk', pid: 7, host: 'desk' }, 60_000);
    await bad(['orgs', 'move', 'st-marys', '--to', 'v2'], /locked by oncall@desk/, 5);
    await lock.release();
    expect(await store.loadDoc('orgs', (v) => v)).toBeUndefined();
    expect(await store.audit.read()).toEqual([]);
  });
});
