/**
 * A tiny stand-in for an event consumer, for the sandbox and the integration tests: it takes
 * messages off an imaginary queue at a steady rate, shares them between the versions it is told
 * are consuming (competing consumers take messages in proportion to their replicas), fails a set
 * share of each version's, and counts both by version on `/metrics` —
 * `messages_processed_total` and `messages_failed_total` — for a consumer's gate to read.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the consumer is called (the `consumer` label) and how fast its queue fills. */
export interface SampleConsumerOptions {
  consumer: string;
  /** Messages a second, over all versions. */
  ratePerSecond: number;
  host?: string;
  port?: number;
}

/** A running sample consumer. */
export interface SampleConsumer {
  readonly url: string;
  readonly port: number;
  /** Replicas consuming, by version: each version takes its share of the messages. */
  setReplicas(replicas: Record<string, number>): void;
  /** Share of a version's messages that fail, from 0 to 1. */
  setFailure(version: string, share: number): void;
  /** Messages processed and failed so far, by version. */
  counts(): Record<string, { processed: number; failed: number }>;
  stop(): Promise<void>;
}

const TICK_MS = 100;

/** Start one; resolves once `/metrics` listens. */
export async function startSampleConsumer(options: SampleConsumerOptions): Promise<SampleConsumer> {
  let replicas: Record<string, number> = {};
  const failure = new Map<string, number>();
  const counted = new Map<string, { processed: number; failed: number; owed: number; failOwed: number }>();
  const perTick = (options.ratePerSecond * TICK_MS) / 1000;

  // Deterministic shares: each version accrues its part of every tick and processes whole
  // messages as they come due; failures accrue the same way, so a share is exact, not sampled.
  const timer = setInterval(() => {
    const total = Object.values(replicas).reduce((a, b) => a + b, 0);
    if (total <= 0) return;
    for (const [version, n] of Object.entries(replicas)) {
      const c = counted.get(version) ?? { processed: 0, failed: 0, owed: 0, failOwed: 0 };
      c.owed += (perTick * n) / total;
      const due = Math.floor(c.owed);
      c.owed -= due;
      c.processed += due;
      c.failOwed += due * (failure.get(version) ?? 0);
      const failed = Math.floor(c.failOwed);
      c.failOwed -= failed;
      c.failed += failed;
      counted.set(version, c);
    }
  }, TICK_MS);

  const label = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
  const metrics = () => {
    const lines = ['# TYPE messages_processed_total counter', '# TYPE messages_failed_total counter'];
    for (const [version, c] of counted) {
      const sel = `{consumer="${label(options.consumer)}",version="${label(version)}"}`;
      lines.push(`messages_processed_total${sel} ${c.processed}`, `messages_failed_total${sel} ${c.failed}`);
    }
    return `${lines.join('\n')}\n`;
  };

  const server = createServer((req, res) => {
    if (req.url === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(metrics());
      return;
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    setReplicas(next) {
      replicas = { ...next };
    },
    setFailure(version, share) {
      failure.set(version, Math.min(1, Math.max(0, share)));
    },
    counts() {
      return Object.fromEntries([...counted].map(([v, c]) => [v, { processed: c.processed, failed: c.failed }]));
    },
    async stop() {
      clearInterval(timer);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
