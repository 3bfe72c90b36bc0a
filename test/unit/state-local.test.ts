import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { currentActor } from '../../src/state/actor.js';
import { LocalStateStore } from '../../src/state/local/store.js';
import type { OperatorRequest } from '../../src/state/store.js';

interface TestState {
  rolloutId: string;
  step: number;
  weights: Record<string, number>;
}

function validate(value: unknown): TestState {
  const state = value as Partial<TestState>;
  if (typeof state?.rolloutId !== 'string') throw new Error('rolloutId: expected a string');
  if (typeof state.step !== 'number') throw new Error('step: expected a number');
  return state as TestState;
}

let root: string;
let dir: string;
let now: number;
const clock = (): number => now;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'cutover-state-'));
  dir = join(root, '.deploy', 'patient-api');
  now = Date.parse('2030-03-01T09:00:00.000Z');
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function usageError(attempt: Promise<unknown>): Promise<UsageError> {
  const error = await attempt.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(UsageError);
  return error as UsageError;
}

describe('local state', () => {
  it('has no state before the first save, then round-trips it', async () => {
    const store = new LocalStateStore<TestState>(dir, { clock, validate });
    expect(await store.load()).toBeUndefined();
    const state = { rolloutId: 'r-1', step: 2, weights: { v1: 95, v2: 5 } };
    await store.save(state);
    expect(await new LocalStateStore<TestState>(dir, { validate }).load()).toEqual(state);
    await store.save({ ...state, step: 3 });
    expect((await store.load())?.step).toBe(3);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    // No temporary file is left next to the state.
    expect((await readdir(dir)).sort()).toEqual(['state.json']);
  });

  it('refuses state that is not JSON, naming the file and how to repair it, and leaves it as it was', async () => {
    const store = new LocalStateStore<TestState>(dir, { clock, validate });
    await store.save({ rolloutId: 'r-1', step: 1, weights: {} });
    const path = join(dir, 'state.json');
    const broken = Buffer.from('{"rolloutId": "r-1", "step": \u00ff');
    await writeFile(path, broken);
    const error = await usageError(store.load());
    expect(error.exitCode).toBe(2);
    expect(error.message).toContain(path);
    expect(error.message).toContain('not valid JSON');
    expect(error.hint).toContain(`mv ${path} ${path}.broken`);
    expect(error.hint).toContain('deploy history');
    expect((await readFile(path)).equals(broken)).toBe(true);
  });

  it('refuses state that does not validate, with the validator’s reason', async () => {
    const store = new LocalStateStore<TestState>(dir, { clock, validate });
    await store.save({ rolloutId: 'r-1', step: 1, weights: {} });
    const path = join(dir, 'state.json');
    const wrong = '{"rolloutId": 7}\n';
    await writeFile(path, wrong);
    const error = await usageError(store.load());
    expect(error.message).toContain(path);
    expect(error.message).toContain('rolloutId: expected a string');
    expect(await readFile(path, 'utf8')).toBe(wrong);
  });
});

describe('operator requests', () => {
  const request = (id: string, kind: OperatorRequest['kind']): OperatorRequest => ({
    id,
    kind,
    by: currentActor(),
    at: new Date(now).toISOString(),
  });

  it('come back in arrival order, and are removed once taken', async () => {
    const store = new LocalStateStore<TestState>(dir, { clock });
    expect(await store.hasRequests()).toBe(false);
    expect(await store.takeRequests()).toEqual([]);
    // Ids that sort against arrival, two of them in the same millisecond.
    await store.postRequest(request('zz', 'pause'));
    await store.postRequest(request('mm', 'resume'));
    now += 1;
    await store.postRequest({ ...request('aa', 'promote'), full: true, reason: 'looks good' });
    expect(await store.hasRequests()).toBe(true);
    const taken = await store.takeRequests();
    expect(taken.map((r) => r.id)).toEqual(['zz', 'mm', 'aa']);
    expect(taken[2]).toMatchObject({ kind: 'promote', full: true, reason: 'looks good' });
    expect(await store.hasRequests()).toBe(false);
    expect(await store.takeRequests()).toEqual([]);
    expect(await readdir(join(dir, 'requests'))).toEqual([]);
  });

  it('hands each request to only one of two concurrent takers', async () => {
    const store = new LocalStateStore<TestState>(dir, { clock });
    for (let i = 0; i < 10; i++) await store.postRequest(request(`r${i}`, 'pause'));
    const [a, b] = await Promise.all([store.takeRequests(), new LocalStateStore(dir).takeRequests()]);
    expect([...a, ...b].map((r) => r.id).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `r${i}`));
  });

  it('sets an unreadable request aside instead of failing or deleting it', async () => {
    const store = new LocalStateStore<TestState>(dir, { clock });
    await store.postRequest(request('ok', 'abort'));
    await writeFile(join(dir, 'requests', '000000000000000-garbage.json'), 'not json');
    expect((await store.takeRequests()).map((r) => r.id)).toEqual(['ok']);
    expect(await readdir(join(dir, 'requests'))).toEqual(['000000000000000-garbage.json.broken']);
  });
});

describe('currentActor', () => {
  it('names this process', () => {
    const actor = currentActor();
    expect(actor.pid).toBe(process.pid);
    expect(actor.owner).toBe(`${actor.owner.split('@')[0]}@${actor.host}`);
  });
});
