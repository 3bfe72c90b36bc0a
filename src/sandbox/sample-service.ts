/**
 * A tiny HTTP service that stands in for one version of an application in the sandbox and the
 * integration tests. Every request answers 200 with the version as body and `x-version` header;
 * `/metrics` serves Prometheus text so metric gates have something real to read; faults (an error
 * share and added latency) can be injected while it runs, to make a canary hurt on purpose.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Where to listen and which version to claim. */
export interface SampleServiceOptions {
  /** Version name served in the body, `x-version` and metric labels. */
  version: string;
  /** Port to listen on; 0 or absent picks a free one. */
  port?: number;
  /** Listen address; loopback by default so the sandbox never exposes anything. */
  host?: string;
}

/** Injected faults: share of requests answered 500 (0..1) and delay added to each request. */
export interface SampleFault {
  /** Share of non-`/metrics` requests answered 500, from 0 to 1. */
  errorRate?: number;
  /** Milliseconds added before each non-`/metrics` answer. */
  latencyMs?: number;
  /** Paths (prefixes) answered 500 every time: one step of a user journey broken. */
  failPaths?: string[];
}

/** A running sample service. */
export interface SampleService {
  /** The version this service claims. */
  readonly version: string;
  /** The port it listens on (the one picked when asked for 0). */
  readonly port: number;
  /** Base URL, `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** Change the injected faults at run time; omitted fields keep their value. */
  setFault(fault: SampleFault): void;
  /** Stop listening and drop open (keep-alive) connections. */
  stop(): Promise<void>;
}

/** Latency buckets in seconds, the Prometheus client defaults. */
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Start a sample service; resolves once it listens. */
export async function startSampleService(options: SampleServiceOptions): Promise<SampleService> {
  const { version } = options;
  let errorRate = 0;
  let latencyMs = 0;
  let failPaths: string[] = [];
  const requestsByCode = new Map<number, number>();
  const bucketCounts = BUCKETS.map(() => 0);
  let durationSum = 0;
  let durationCount = 0;

  const label = version.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
  const metrics = (): string => {
    const out = [
      '# HELP http_requests_total Requests served, by version and status code.',
      '# TYPE http_requests_total counter',
      ...[...requestsByCode].sort(([a], [b]) => a - b).map(([code, n]) => `http_requests_total{version="${label}",code="${code}"} ${n}`),
      '# HELP http_request_duration_seconds Time to answer a request, by version.',
      '# TYPE http_request_duration_seconds histogram',
      ...BUCKETS.map((le, i) => `http_request_duration_seconds_bucket{version="${label}",le="${le}"} ${bucketCounts[i]}`),
      `http_request_duration_seconds_bucket{version="${label}",le="+Inf"} ${durationCount}`,
      `http_request_duration_seconds_sum{version="${label}"} ${durationSum}`,
      `http_request_duration_seconds_count{version="${label}"} ${durationCount}`,
    ];
    return `${out.join('\n')}\n`;
  };

  const record = (code: number, seconds: number): void => {
    requestsByCode.set(code, (requestsByCode.get(code) ?? 0) + 1);
    // Buckets are cumulative in the exposition format: a request counts in every le >= its time.
    BUCKETS.forEach((le, i) => {
      if (seconds <= le) bucketCounts[i] = (bucketCounts[i] ?? 0) + 1;
    });
    durationSum += seconds;
    durationCount += 1;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    req.resume(); // bodies are ignored, but must be drained for the connection to be reused
    if (req.url === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(metrics());
      return;
    }
    const started = process.hrtime.bigint();
    if (latencyMs > 0) await new Promise((r) => setTimeout(r, latencyMs));
    const code = Math.random() < errorRate || failPaths.some((p) => req.url?.startsWith(p)) ? 500 : 200;
    res.writeHead(code, { 'content-type': 'text/plain', 'x-version': version });
    res.end(code === 200 ? `${version}\n` : `${version} injected error\n`);
    record(code, Number(process.hrtime.bigint() - started) / 1e9);
  };

  const server = createServer((req, res) => void handle(req, res));
  // Longer than nginx's upstream keepalive_timeout (30 s), so the proxy closes idle connections
  // first and never reuses one this server is closing.
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host ?? '127.0.0.1';

  return {
    version,
    port,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    setFault(fault) {
      if (fault.errorRate !== undefined) {
        if (!(fault.errorRate >= 0 && fault.errorRate <= 1)) throw new RangeError(`errorRate must be 0..1, got ${fault.errorRate}`);
        errorRate = fault.errorRate;
      }
      if (fault.failPaths !== undefined) failPaths = [...fault.failPaths];
      if (fault.latencyMs !== undefined) {
        if (!(fault.latencyMs >= 0)) throw new RangeError(`latencyMs must be >= 0, got ${fault.latencyMs}`);
        latencyMs = fault.latencyMs;
      }
    },
    stop() {
      return new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
    },
  };
}
