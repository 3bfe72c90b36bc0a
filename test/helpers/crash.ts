/** What the SIGKILL tests share: replayable kill moments, and waiting out a killed driver's lease. */
import { existsSync, readFileSync } from 'node:fs';

/** A seeded generator, so a failure can be replayed with the same kill moments. */
export function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Resolve once the local lock file `lockFile` holds no live lease (a killed driver's runs out). */
export async function leaseFree(lockFile: string): Promise<void> {
  for (;;) {
    if (!existsSync(lockFile)) return;
    try {
      const lock = JSON.parse(readFileSync(lockFile, 'utf8')) as { leaseExpiresAt: string };
      if (Date.parse(lock.leaseExpiresAt) < Date.now()) return;
    } catch {
      // being rewritten; look again
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
