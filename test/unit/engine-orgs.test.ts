/**
 * Org waves through the engine: every write carries the explicit pins and the wave's orgs, a
 * wave moves as one write, and a rollback moves the whole wave back while explicit pins stay.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/parse.js';
import { type EngineDeps, rollback, startRollout, tick } from '../../src/engine/machine.js';
import { validateState, type RolloutState } from '../../src/engine/state.js';
import { saveRegistry } from '../../src/orgs/registry.js';
import { orgRouteSource } from '../../src/orgs/routes.js';
import { LocalStateStore } from '../../src/state/local/store.js';
import { NginxRouter } from '../../src/routers/nginx/router.js';
import { planOrgWaves } from '../../strategies/org-waves.js';
import { FakeRouter, ManualClock } from '../helpers/fakes.js';

const config = parseConfig(
  `service: patient-api
stable: v1
versions: { v1: { endpoints: ["127.0.0.1:1"] }, v2: { endpoints: ["127.0.0.1:2"] } }
router: { type: none }
orgs: { list: [a, b, c, d], groups: { pilot: [a] } }
strategy:
  orgWaves:
    waves: [{ group: pilot, hold: 1s }, { share: 50%, hold: 1s }, { all: true }]
`,
  'deploy.yaml',
);

describe('org waves in the engine', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('moves each wave in one write and rolls the wave back as a unit', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cutover-waves-'));
    const clock = new ManualClock();
    const router = new FakeRouter();
    const store = new LocalStateStore<RolloutState>(dir, { clock: clock.clock, validate: validateState });
    await saveRegistry(store, { schema: 1, pins: { d: { version: 'v1', since: 'x', by: 'y' } } });
    const deps: EngineDeps = { router, store, clock: clock.clock, emit: () => {}, actor: { owner: 't', pid: 1, host: 'h' }, routes: orgRouteSource(config, store) };
    const w = config.strategy!.orgWaves!;
    const plan = planOrgWaves(w, ['a', 'b', 'c', 'd'], { pilot: ['a'] });
    let s = await startRollout({ service: 'patient-api', stable: 'v1', candidate: 'v2', plan }, deps);
    s = await tick(s, deps);
    expect(router.live).toMatchObject({ weights: { v1: 100, v2: 0 }, orgs: { a: 'v2', d: 'v1' }, unpinned: { mode: 'version', version: 'v1' } });
    clock.now += 1000;
    s = await tick(s, deps);
    const second = router.live.orgs!;
    const wave = plan.steps[1]!.orgs!;
    expect(wave).toContain('a'); // the pilot stays moved
    expect(wave.length).toBeGreaterThanOrEqual(2); // plus half of the four orgs, by hash
    for (const org of wave.filter((o) => o !== 'd')) expect(second[org]).toBe('v2');
    expect(second.d).toBe('v1'); // the explicit pin wins over the wave
    const writes = router.writes.length;
    s = await rollback(s, 'gate', 'errors failed', deps);
    expect(router.writes.length - writes).toBe(1);
    expect(router.live).toMatchObject({ weights: { v1: 100 }, orgs: { d: 'v1' }, unpinned: { mode: 'version', version: 'v1' } });
    expect(s.phase).toBe('rolled_back');
  });
});

describe('org moves at a router limit', () => {
  it('refuses a move past the router limit with exit 2 before anything is written', async () => {
    const { moveOrgs } = await import('../../src/orgs/move.js');
    const dir = mkdtempSync(join(tmpdir(), 'cutover-limit-'));
    try {
      const store = new LocalStateStore<RolloutState>(dir, { validate: validateState });
      // The real nginx router: its check runs before any I/O, so no nginx is needed (the admin
      // port below has nothing behind it, and a write attempt would fail with exit 1, not 2).
      const router = new NginxRouter({ prefix: join(dir, 'nginx'), listen: '127.0.0.1:1', admin: '127.0.0.1:2', upstreams: { v1: ['127.0.0.1:3'], v2: ['127.0.0.1:4'] } });
      const project = { config, store, path: 'deploy.yaml', dir, leaseMs: 1000 };
      const orgs = Array.from({ length: 100_001 }, (_, i) => `org-${i}`);
      const move = moveOrgs(project, { router, store, emit: () => undefined, clock: Date.now, actor: { owner: 't', pid: 1, host: 'h' } }, { orgs, version: 'v2', reason: 'test' });
      await expect(move).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(/100001 pinned orgs exceed what the nginx router carries \(100000\)/) });
      expect(await store.loadDoc('orgs', (v) => v)).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('an org move whose write fails', () => {
  /** A local store, a fake router and the engine's dependencies for moveOrgs, in a temp folder. */
  async function moving(name: string) {
    const { moveOrgs } = await import('../../src/orgs/move.js');
    const { loadRegistry } = await import('../../src/orgs/registry.js');
    const dir = mkdtempSync(join(tmpdir(), `cutover-${name}-`));
    const store = new LocalStateStore<RolloutState>(dir, { validate: validateState });
    const router = new FakeRouter();
    const project = { config, store, path: 'deploy.yaml', dir, leaseMs: 1000 };
    const deps = { router, store, emit: () => undefined, clock: Date.now, actor: { owner: 't', pid: 1, host: 'h' } };
    return { moveOrgs, loadRegistry, dir, store, router, project, deps };
  }

  it('puts the previous routing back and records nothing as moved', async () => {
    const { moveOrgs, loadRegistry, dir, store, router, project, deps } = await moving('fail');
    try {
      await moveOrgs(project, deps, { orgs: ['a'], version: 'v2', reason: 'first' });
      const before = { ...router.live };
      router.failNext = 1;
      await expect(moveOrgs(project, deps, { orgs: ['b', 'c'], version: 'v2', reason: 'second' })).rejects.toThrow(/org move failed, nothing moved: router unavailable/);
      expect(router.live.orgs).toEqual(before.orgs);
      const registry = await loadRegistry(store);
      expect(Object.keys(registry.pins)).toEqual(['a']);
      expect(registry.intent).toBeUndefined();
      expect((await store.audit.read()).filter((r) => r.action === 'orgs.moved')).toHaveLength(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('when the write landed but its answer was lost and the revert fails too, says what is live and keeps the move recorded', async () => {
    const { moveOrgs, loadRegistry, dir, store, router, project, deps } = await moving('lost');
    try {
      // The move's write reaches the router but its answer is lost; then the router is down.
      const apply = router.apply.bind(router);
      let calls = 0;
      router.apply = async (spec) => {
        calls += 1;
        if (calls === 1) {
          await apply(spec);
          throw new Error('socket hang up');
        }
        if (calls === 2) throw new Error('router unavailable');
        return apply(spec);
      };
      await expect(moveOrgs(project, deps, { orgs: ['b', 'c'], version: 'v2', reason: 'lost answer' })).rejects.toThrow(
        /org move failed, and so did writing the previous routing back: 2 of 2 orgs are live on the new routing \(socket hang up\)/,
      );
      expect(router.live.orgs).toEqual({ b: 'v2', c: 'v2' });
      expect((await loadRegistry(store)).intent?.pins).toEqual({ b: 'v2', c: 'v2' });
      // Once the router answers, the next orgs command finishes the recorded move.
      await moveOrgs(project, deps, { orgs: ['d'], version: 'v2', reason: 'next' });
      expect(Object.keys((await loadRegistry(store)).pins).sort()).toEqual(['b', 'c', 'd']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
