/**
 * A TCP proxy on loopback that puts faults between a client and a real server, for tests of what
 * a router does when its endpoint misbehaves: `pass` forwards both ways; `hang` accepts and reads
 * but never forwards or answers; `reset` drops each new connection at once; `lose-answer` forwards
 * the request, so the server does the work, then drops the connection instead of the answer.
 * The mode is read at every chunk a client sends, so connections kept alive from before a fault
 * meet it too.
 */
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';

/** What the proxy does with traffic. */
export type FaultMode = 'pass' | 'hang' | 'reset' | 'lose-answer';

/** A running proxy. */
export interface FaultProxy {
  /** `127.0.0.1:PORT`, to give the client instead of the server's address. */
  readonly address: string;
  mode: FaultMode;
  /** Connections accepted so far. */
  readonly connections: number;
  stop(): Promise<void>;
}

/** Start a proxy to `target` (`host:port`) on a free loopback port. */
export async function startFaultProxy(target: string, mode: FaultMode = 'pass'): Promise<FaultProxy> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const open = new Set<Socket>();
  let connections = 0;
  const state = { mode };
  const server = createServer((client) => {
    connections += 1;
    open.add(client);
    client.on('close', () => open.delete(client));
    client.on('error', () => undefined);
    let upstream: Socket | undefined;
    let loseAnswer = false;
    // The mode is read at every chunk, so a keep-alive connection opened before a fault meets it too.
    client.on('data', (chunk) => {
      if (state.mode === 'reset') {
        client.resetAndDestroy();
        upstream?.destroy();
        return;
      }
      if (state.mode === 'hang') return;
      loseAnswer = state.mode === 'lose-answer';
      if (!upstream) {
        upstream = connect(port, host);
        open.add(upstream);
        upstream.on('close', () => {
          open.delete(upstream!);
          client.destroy();
        });
        upstream.on('error', () => client.destroy());
        upstream.on('data', (answer) => {
          // The server answered, so it did the work; with a lost answer the client never hears.
          if (loseAnswer) {
            client.resetAndDestroy();
            upstream!.destroy();
            return;
          }
          client.write(answer);
        });
      }
      upstream.write(chunk);
    });
    client.on('end', () => upstream?.end());
    client.on('close', () => upstream?.destroy());
    if (state.mode === 'reset') client.resetAndDestroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port: own } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${own}`,
    get mode() {
      return state.mode;
    },
    set mode(m: FaultMode) {
      state.mode = m;
    },
    get connections() {
      return connections;
    },
    async stop() {
      for (const s of open) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
