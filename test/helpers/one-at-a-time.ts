/**
 * An HTTP proxy on loopback that hands its server one request at a time.
 *
 * S3 applies a conditional write (If-Match, If-None-Match) atomically: of two writers on the same
 * ETag, one wins. moto checks the condition and then writes, on a threaded server, so under load
 * both may win. Tests of a lock built on those writes go through this proxy, which makes each
 * request atomic as S3's are — the requests of two racers still interleave freely.
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A running proxy: its URL, and how to stop it. */
export interface OneAtATime {
  readonly url: string;
  close(): Promise<void>;
}

/** Each request to the server's answer must come within this. */
const UPSTREAM_TIMEOUT_MS = 15_000;

export async function startOneAtATime(upstream: string): Promise<OneAtATime> {
  const target = new URL(upstream);
  let queue: Promise<void> = Promise.resolve();
  const forward = (req: IncomingMessage, body: Buffer, res: ServerResponse) =>
    new Promise<void>((done) => {
      const out = request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, timeout: UPSTREAM_TIMEOUT_MS },
        (answer) => {
          const chunks: Buffer[] = [];
          answer.on('data', (c: Buffer) => chunks.push(c));
          answer.on('end', () => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            res.end(Buffer.concat(chunks));
            done();
          });
          answer.on('error', () => {
            res.destroy();
            done();
          });
        },
      );
      out.on('timeout', () => out.destroy(new Error('upstream timed out')));
      out.on('error', () => {
        res.destroy();
        done();
      });
      out.end(body);
    });
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      queue = queue.then(() => forward(req, Buffer.concat(chunks), res));
    });
  });
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((closed) => {
        server.closeAllConnections();
        server.close(() => closed());
      }),
  };
}
