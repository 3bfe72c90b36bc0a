import { describe, expect, it } from 'vitest';
import { retryOnConflict } from '../../src/kube/access.js';
import { KubeApiError } from '../../src/kube/client.js';
import { OperationError } from '../../src/errors.js';

const conflict = () => new KubeApiError(409, 'Conflict', 'the object has been modified', 'PUT', '/apis/apps/v1/namespaces/x/deployments/api');

describe('writes retried on 409', () => {
  it('outlasts a burst of six conflicts (a controller writing status while it rolls), waiting between tries', async () => {
    let tries = 0;
    const at: number[] = [];
    const result = await retryOnConflict('Deployment api', async () => {
      at.push(performance.now());
      if (++tries <= 6) throw conflict();
      return 'written';
    });
    expect([result, tries]).toEqual(['written', 7]);
    // Backing off: the tries are spread over at least the shortest waits (25 + 50 + 100 + 200 + 400 + 500 ms).
    expect(at.at(-1)! - at[0]!).toBeGreaterThanOrEqual(1_275);
  });

  it('gives up after eight, naming the object, and passes other errors through at once', async () => {
    let tries = 0;
    const error = await retryOnConflict('Deployment api', async () => {
      tries++;
      throw conflict();
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OperationError);
    expect((error as Error).message).toMatch(/^Deployment api changed under every one of 8 writes/);
    expect(tries).toBe(8);
    const other = await retryOnConflict('Deployment api', async () => {
      throw new Error('socket hang up');
    }).catch((e: unknown) => e);
    expect((other as Error).message).toBe('socket hang up');
  });
});
