/**
 * A load generator for the sandbox: a fixed number of keep-alive clients sending requests at a
 * bounded rate to a loopback address, counting which version answered and how many failed.
 * Bounded in rate and stopped by its owner; it never targets anything but loopback.
 */
import { Agent, request } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';

/** Counts since the last `window()` call, and in total. */
export interface LoadCounts {
  byVersion: Record<string, number>;
  failed: number;
  total: number;
}

/** A running load generator. */
export interface LoadGenerator {
  /** Counts since the previous call (and resets them). */
  window(): LoadCounts;
  /** Counts since the start. */
  totals(): LoadCounts;
  stop(): Promise<void>;
}

const empty = (): LoadCounts => ({ byVersion: {}, failed: 0, total: 0 });

function add(c: LoadCounts, version: string | undefined): void {
  c.total += 1;
  if (version === undefined) c.failed += 1;
  else c.byVersion[version] = (c.byVersion[version] ?? 0) + 1;
}

/** Start `clients` keep-alive loops sending about `ratePerSecond` requests in all to `url`. */
export function startLoad(url: string, opts: { clients?: number; ratePerSecond?: number; headers?: Record<string, string> } = {}): LoadGenerator {
  const target = new URL(url);
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(target.hostname)) throw new Error(`load is only sent to loopback, not ${target.hostname}`);
  const clients = opts.clients ?? 8;
  const gapMs = (1000 * clients) / (opts.ratePerSecond ?? 100);
  const agent = new Agent({ keepAlive: true, maxSockets: clients });
  let window = empty();
  const total = empty();
  let running = true;

  const once = () =>
    new Promise<string | undefined>((resolve) => {
      const req = request(target, { agent, headers: opts.headers ?? {} }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200 ? String(res.headers['x-version'] ?? 'unknown') : undefined));
      });
      req.setTimeout(5_000, () => req.destroy(new Error('timeout')));
      req.on('error', () => resolve(undefined));
      req.end();
    });

  const loops = Array.from({ length: clients }, async (_, i) => {
    await delay((gapMs * i) / clients);
    while (running) {
      const started = performance.now();
      const version = await once();
      if (!running) break;
      add(window, version);
      add(total, version);
      await delay(Math.max(0, gapMs - (performance.now() - started)));
    }
  });

  return {
    window() {
      const w = window;
      window = empty();
      return w;
    },
    totals: () => ({ ...total, byVersion: { ...total.byVersion } }),
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
    },
  };
}
