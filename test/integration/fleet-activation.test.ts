/**
 * Staged activation on real nginx: a staged generation routes nothing until its instant; from
 * the instant on every request routes by it; a write waits for a pending activation; and a fleet
 * of three nginx whose staging fails in one activates nothing anywhere.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetRouter, FleetWriteError } from '../../src/fleet/router.js';
import { NginxRouter } from '../../src/routers/nginx/router.js';
import { adminHeaders } from '../../src/routers/nginx/secrets.js';
import { startNginxFixture, type NginxFixture } from '../helpers/nginx-fixture.js';

/** One request for `org`: the version and generation that answered, from X-Cutover-Route. */
async function route(fixture: NginxFixture, org: string): Promise<string> {
  const res = await fetch(fixture.publicUrl, { headers: { 'x-org-id': org } });
  await res.text();
  return res.headers.get('x-cutover-route') ?? `HTTP ${res.status}`;
}

describe('staged activation on real nginx', () => {
  const fixtures: NginxFixture[] = [];
  beforeAll(async () => {
    for (const name of ['act-eu', 'act-us', 'act-ap']) fixtures.push(await startNginxFixture(name));
  });
  afterAll(async () => {
    await Promise.all(fixtures.map((f) => f.stop()));
  });

  it('a staged generation routes nothing until its instant, then every request; a write waits for it', async () => {
    const f = fixtures[0]!;
    const router = new NginxRouter(f.options);
    await router.apply({ weights: { v1: 100 }, orgs: {}, unpinned: { mode: 'version', version: 'v1' } });
    const before = (await router.read()).generation!;
    const staged = await router.stage({ weights: { v1: 100 }, orgs: { 'st-marys': 'v2' }, unpinned: { mode: 'version', version: 'v1' } }, before + 5);
    expect(staged).toEqual({ changed: true, generation: before + 5 });
    expect(await route(f, 'st-marys')).toBe(`v1 g${before}`);
    expect((await router.read()).generation).toBe(before);

    const at = Date.now() + 400;
    const activating = router.activate(staged, at);
    // Until the instant, the old table routes, and a direct write is refused while it is pending.
    await new Promise((r) => setTimeout(r, 100));
    expect(await route(f, 'st-marys')).toBe(`v1 g${before}`);
    const put = await fetch(`http://${f.options.admin}/cutover/routes`, { method: 'PUT', headers: adminHeaders(f.options.prefix), body: `generation ${before + 9}\nunpinned weighted\nweight v1 100\n` });
    expect([put.status, (await put.text()).trim()]).toEqual([409, `generation ${before + 5} activates at ${at}; write after it`]);
    expect(await activating).toEqual({ changed: true, generation: before + 5 });
    const afterMs = Date.now();
    expect(afterMs).toBeGreaterThanOrEqual(at);
    expect(await route(f, 'st-marys')).toBe(`v2 g${before + 5}`);
    expect(await route(f, 'riverside')).toBe(`v1 g${before + 5}`);
    // Activating again (a retry whose answer was lost) is not an error.
    const again = await fetch(`http://${f.options.admin}/cutover/activate`, { method: 'PUT', headers: adminHeaders(f.options.prefix), body: `generation ${before + 5} at ${at}\n` });
    expect([again.status, (await again.text()).trim()]).toEqual([200, `generation ${before + 5} is live`]);
  });

  it('a fleet stages everywhere and switches at one instant; one target failing to stage activates nothing anywhere', async () => {
    const routers = fixtures.map((f) => new NginxRouter(f.options));
    const fleet = new FleetRouter(routers.map((router, i) => ({ name: ['eu', 'us', 'ap'][i]!, router })));
    await fleet.apply({ weights: { v1: 100 }, orgs: { a: 'v1' }, unpinned: { mode: 'version', version: 'v1' }, rollback: true });
    const moved = await fleet.apply({ weights: { v1: 100 }, orgs: { a: 'v2' }, unpinned: { mode: 'version', version: 'v1' } });
    const generations = (await Promise.all(routers.map((r) => r.read()))).map((l) => l.generation);
    expect(generations).toEqual([moved.generation, moved.generation, moved.generation]);
    expect(fleet.lastActivation!.atMs - fleet.lastActivation!.stagedMs).toBeGreaterThanOrEqual(50);
    for (const f of fixtures) expect(await route(f, 'a')).toBe(`v2 g${moved.generation}`);

    // The third nginx refuses the staging (its admin secret is wrong for this router): nothing moves.
    const broken = new NginxRouter({ ...fixtures[2]!.options, adminEndpoint: '127.0.0.1:1' });
    const partial = new FleetRouter([{ name: 'eu', router: routers[0]! }, { name: 'us', router: routers[1]! }, { name: 'ap', router: broken }]);
    const error = await partial.apply({ weights: { v1: 100 }, orgs: { a: 'v1' }, unpinned: { mode: 'version', version: 'v1' } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FleetWriteError);
    expect((error as Error).message).toMatch(/^ap did not answer .*: nothing was staged$/);
    for (const f of fixtures) expect(await route(f, 'a')).toBe(`v2 g${moved.generation}`);
  });
});
