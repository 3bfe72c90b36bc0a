import { mkdir, mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LockedError } from '../../src/errors.js';
import { currentActor } from '../../src/state/actor.js';
import { holderGone, processStart } from '../../src/state/liveness.js';
import { LocalStateStore } from '../../src/state/local/store.js';
import { acquireDirMutex } from '../../src/state/local/lock.js';
import type { Actor } from '../../src/state/store.js';

const LEASE = 30_000;
const alice: Actor = { owner: 'alice@ws1', pid: 101, host: 'ws1' };
const bob: Actor = { owner: 'bob@ci7', pid: 202, host: 'ci7' };
const carol: Actor = { owner: 'carol@ws3', pid: 303, host: 'ws3' };

let dir: string;
let now: number;
const clock = (): number => now;
const store = (): LocalStateStore<unknown> => new LocalStateStore(dir, { clock });

async function lockedMessage(attempt: Promise<unknown>): Promise<string> {
  const error = await attempt.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(LockedError);
  return (error as LockedError).message;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cutover-lock-'));
  now = Date.parse('2030-03-01T09:00:00.000Z');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('local driver lock', () => {
  it('refuses a second driver, naming the holder, its pid and host, and its times', async () => {
    const lock = await store().acquireLock(alice, LEASE);
    now += 1_000;
    const attempt = store().acquireLock(bob, LEASE);
    await expect(attempt).rejects.toMatchObject({ exitCode: 5, hint: expect.stringContaining('deploy status') });
    const message = await lockedMessage(attempt);
    expect(message).toBe(
      'locked by alice@ws1 (pid 101 on ws1) since 2030-03-01T09:00:00.000Z; lease renewed at 2030-03-01T09:00:00.000Z, expires at 2030-03-01T09:00:30.000Z',
    );
    expect((await store().lockHolder())?.token).toBe(lock.info.token);
  });

  it('takes an expired lock over, and only once the lease has expired', async () => {
    await store().acquireLock(alice, LEASE);
    now += LEASE - 1;
    await lockedMessage(store().acquireLock(bob, LEASE));
    now += 2;
    const taken = await store().acquireLock(bob, LEASE);
    expect(taken.info.owner).toBe('bob@ci7');
    expect(await store().lockHolder()).toEqual(taken.info);
  });

  it('hands every acquisition a greater fencing token: after a release and after a takeover', async () => {
    const first = await store().acquireLock(alice, LEASE);
    expect(first.info.fence).toBe(1);
    await first.release();
    const second = await store().acquireLock(bob, LEASE);
    expect(second.info.fence).toBe(2);
    now += LEASE + 1;
    const third = await store().acquireLock(carol, LEASE);
    expect(third.info.fence).toBe(3);
    await third.renew();
    expect(third.info.fence).toBe(3);
    expect((await store().lockHolder())?.fence).toBe(3);
  });

  it('renewal extends the lease, so a renewing driver keeps its lock', async () => {
    const lock = await store().acquireLock(alice, LEASE);
    now += LEASE - 1_000;
    await lock.renew();
    expect(lock.info.leaseExpiresAt).toBe(new Date(now + LEASE).toISOString());
    now += 2_000;
    await lockedMessage(store().acquireLock(bob, LEASE));
  });

  it('a driver whose lock was taken over cannot renew it, nor release the new holder', async () => {
    const lost = await store().acquireLock(alice, LEASE);
    now += LEASE + 1;
    const winner = await store().acquireLock(bob, LEASE);
    expect(await lockedMessage(lost.renew())).toMatch(/^lock lost: taken over by bob@ci7 \(pid 202 on ci7\)/);
    await lost.release();
    expect(await store().lockHolder()).toEqual(winner.info);
    await winner.release();
    expect(await store().lockHolder()).toBeUndefined();
    await store().acquireLock(carol, LEASE); // free again
  });

  it('lets exactly one of two concurrent takers win an expired lock', async () => {
    for (let round = 0; round < 20; round++) {
      const first = await store().acquireLock(alice, LEASE);
      now += LEASE + 1;
      const results = await Promise.allSettled([store().acquireLock(bob, LEASE), store().acquireLock(carol, LEASE)]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r) => r.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect((lost[0] as PromiseRejectedResult).reason).toBeInstanceOf(LockedError);
      const holder = await store().lockHolder();
      expect(holder?.token).toBe((won[0] as PromiseFulfilledResult<{ info: { token: string } }>).value.info.token);
      await expect(first.renew()).rejects.toBeInstanceOf(LockedError);
      now += LEASE + 1; // let the winner's lease lapse for the next round
    }
    await expect(stat(join(dir, 'lock.takeover'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('treats a corrupt lock file as held until it is older than the lease', async () => {
    await mkdir(dir, { recursive: true });
    const file = join(dir, 'lock.json');
    await writeFile(file, '{"owner": "alice@ws1", "pi');
    const message = await lockedMessage(store().acquireLock(bob, LEASE));
    expect(message).toContain(file);
    expect(await readFile(file, 'utf8')).toBe('{"owner": "alice@ws1", "pi');

    const old = new Date(Date.now() - LEASE - 5_000);
    await utimes(file, old, old);
    const lock = await store().acquireLock(bob, LEASE);
    expect(await store().lockHolder()).toEqual(lock.info);
  });

  it('breaks a takeover mutex left behind by a crashed driver', async () => {
    await store().acquireLock(alice, LEASE);
    const mutex = join(dir, 'lock.takeover');
    await mkdir(mutex);
    const crashedAt = new Date(Date.now() - 60_000);
    await utimes(mutex, crashedAt, crashedAt);
    now += LEASE + 1;
    const lock = await store().acquireLock(bob, LEASE);
    expect(lock.info.owner).toBe('bob@ci7');
  });
});

describe('a holder whose process is gone', () => {
  /** The pid of a process of this host that has exited. */
  async function deadPid(): Promise<number> {
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => child.on('exit', r));
    return child.pid!;
  }

  it('is taken over at once on this host, its lease unexpired; a holder on another host is not', async () => {
    const here = currentActor();
    await store().acquireLock({ ...here, pid: await deadPid() }, LEASE);
    const taken = await store().acquireLock(here, LEASE);
    expect(taken.info.pid).toBe(process.pid);
    expect(taken.info.started).toBe(processStart(process.pid));
    await taken.release();
    await store().acquireLock({ ...bob, pid: await deadPid() }, LEASE);
    expect(await lockedMessage(store().acquireLock(here, LEASE))).toMatch(/^locked by bob@ci7/);
  });

  it('tells a live process, an exited one, and a reused pid apart', async () => {
    const host = currentActor().host;
    expect(holderGone({ host, pid: process.pid, started: processStart(process.pid)! })).toBe(false);
    expect(holderGone({ host, pid: await deadPid() })).toBe(true);
    // Our pid, but a start the kernel does not have for it: a later process reusing the number.
    expect(holderGone({ host, pid: process.pid, started: '1' })).toBe(true);
    expect(holderGone({ host: `not-${host}`, pid: await deadPid() })).toBe(false);
  });
});

describe('the mutex directories', () => {
  it('are broken at once when their holder process is gone from this host, and waited for while it lives', async () => {
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => child.on('exit', r));
    const mutex = join(dir, 'state.mutex');
    await mkdir(mutex);
    await writeFile(join(mutex, 'holder.json'), JSON.stringify({ pid: child.pid, host: currentActor().host }));
    const t0 = Date.now();
    const release = await acquireDirMutex(mutex, 2_000);
    expect(release).toBeDefined();
    expect(Date.now() - t0).toBeLessThan(1_000);
    // Now held by this live process: another taker waits, then gives up.
    expect(await acquireDirMutex(mutex, 200)).toBeUndefined();
    await release!();
    expect(await acquireDirMutex(mutex, 200)).toBeDefined();
  });

  it('are broken once a holder that never said who it is (killed right after mkdir) is 2 s old', async () => {
    const mutex = join(dir, 'lock.takeover');
    await mkdir(mutex);
    expect(await acquireDirMutex(mutex, 100)).toBeUndefined();
    const past = new Date(Date.now() - 3_000);
    await utimes(mutex, past, past);
    expect(await acquireDirMutex(mutex, 100)).toBeDefined();
  });
});
