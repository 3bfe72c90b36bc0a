/**
 * Real requests through a data plane to sample services (which answer with their version, in the
 * body and in `x-version`), counted by the version that answered, and the binomial check the
 * router tests judge shares by.
 */
import { Agent, request } from 'node:http';
import { expect } from 'vitest';

/** What a batch of requests saw. */
export interface Tally {
  sent: number;
  byVersion: Record<string, number>;
  /** One line per request that was not a 200 from a sample service: status and body, or the error. */
  failures: string[];
}

/** One GET over `agent`, recorded in `tally`. */
function get(url: string, agent: Agent, headers: Record<string, string>, tally: Tally): Promise<void> {
  tally.sent += 1;
  return new Promise((done) => {
    const req = request(url, { agent, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        const version = body.trim();
        if (res.statusCode !== 200 || res.headers['x-version'] !== version) tally.failures.push(`${res.statusCode} ${version.slice(0, 80)}`);
        else tally.byVersion[version] = (tally.byVersion[version] ?? 0) + 1;
        done();
      });
    });
    req.on('error', (error) => {
      tally.failures.push(error.message);
      done();
    });
    req.end();
  });
}

/**
 * `clients` keep-alive clients sending GETs with `headers` back to back (or, with `ratePerSecond`,
 * about that many in all), until `count` were sent or `stop()` is called.
 */
export function load(url: string, { headers = {}, clients = 32, count = Infinity, ratePerSecond }: { headers?: Record<string, string>; clients?: number; count?: number; ratePerSecond?: number } = {}) {
  const agent = new Agent({ keepAlive: true, maxSockets: clients });
  const tally: Tally = { sent: 0, byVersion: {}, failures: [] };
  const gapMs = ratePerSecond ? (1000 * clients) / ratePerSecond : 0;
  let stopped = false;
  const client = async () => {
    while (!stopped && tally.sent < count) {
      const started = performance.now();
      await get(url, agent, headers, tally);
      const rest = gapMs - (performance.now() - started);
      if (rest > 0 && !stopped) await new Promise((r) => setTimeout(r, rest));
    }
  };
  const done = Promise.all(Array.from({ length: clients }, client)).then(() => {
    agent.destroy();
    return tally;
  });
  return { tally, done, stop: () => ((stopped = true), done) };
}

/** `count` GETs from `clients` keep-alive clients. */
export function send(url: string, count: number, headers: Record<string, string> = {}, clients = 32): Promise<Tally> {
  return load(url, { headers, clients, count }).done;
}

/** Assert a share observed in n Bernoulli trials fits p within 4.5 binomial standard deviations. */
export function expectShare(hits: number, n: number, p: number): void {
  if (p === 0 || p === 1) {
    expect(hits).toBe(p * n);
    return;
  }
  const tolerance = 4.5 * Math.sqrt((p * (1 - p)) / n);
  expect(Math.abs(hits / n - p), `observed ${hits / n} for p=${p} (±${tolerance})`).toBeLessThanOrEqual(tolerance);
}
