/**
 * Org moves judged by real requests, for a data plane that serves the moves at its own pace:
 * keep-alive clients cycle over a set of orgs (each request carries its org in a header), and
 * every answer is kept with the times it was sent and answered. The property is the nginx proof's
 * (test/integration/org-atomicity.test.ts): once an org was answered by the version it moved to,
 * no request of that org sent after that answer is answered by another version.
 */
import { Agent, request } from 'node:http';
import { waitFor } from './sandbox.js';

/** One request as the client saw it; times are performance.now() in this process. */
export interface OrgAnswer {
  org: string;
  /** The version that answered (`x-version`), or undefined when the request failed. */
  version: string | undefined;
  sent: number;
  answered: number;
  failure?: string;
}

/** One write that changed the pins: the full org map it made live, and when it started and returned. */
export interface PinWrite {
  label: string;
  pins: Record<string, string>;
  start: number;
  end: number;
}

/** One org's move: by write `at`, from `from` to `to`; it holds until write `until` starts. */
export interface OrgMove {
  org: string;
  from: string;
  to: string;
  at: PinWrite;
  until: number;
}

/** What one move's answers show. */
export interface MoveCheck {
  /** When the org was first answered by its new version, if it was. */
  firstNew: number | undefined;
  /** Requests of the org sent after that answer and answered before the next move. */
  checked: number;
  /** Those of them answered by another version. */
  violations: OrgAnswer[];
  /** Answers by the old version to requests sent after the write returned: the data plane's lag. */
  lateOld: OrgAnswer[];
}

/**
 * `clients` keep-alive clients cycling over `orgs` (one request at a time each, the org in
 * `header`, plus `headers`) until stopped. Every request must be answered 200 by a sample service.
 */
export function orgLoad(url: string, orgs: string[], { header, headers = {}, clients = 16 }: { header: string; headers?: Record<string, string>; clients?: number }) {
  const agent = new Agent({ keepAlive: true, maxSockets: clients });
  const byOrg = new Map<string, OrgAnswer[]>(orgs.map((o) => [o, []]));
  let next = 0;
  let stopped = false;
  const once = (org: string) =>
    new Promise<OrgAnswer>((resolve) => {
      const sent = performance.now();
      const req = request(url, { agent, headers: { ...headers, [header]: org } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => {
          const version = res.headers['x-version'];
          const ok = res.statusCode === 200 && typeof version === 'string' && body.trim() === version;
          resolve({ org, version: ok ? version : undefined, sent, answered: performance.now(), ...(ok ? {} : { failure: `${res.statusCode} ${body.trim().slice(0, 80)}` }) });
        });
      });
      req.setTimeout(10_000, () => req.destroy(new Error('no answer within 10 s')));
      req.on('error', (error) => resolve({ org, version: undefined, sent, answered: performance.now(), failure: error.message }));
      req.end();
    });
  const client = async () => {
    while (!stopped) {
      const org = orgs[next++ % orgs.length]!;
      const answer = await once(org);
      byOrg.get(org)!.push(answer);
    }
  };
  const done = Promise.all(Array.from({ length: clients }, client)).then(() => {
    agent.destroy();
    return byOrg;
  });
  return {
    byOrg,
    /** Wait until each of `orgs` was answered by its version in `pins` at least `n` times for requests sent after `since`. */
    seen: (pins: Record<string, string>, since: number, n = 5, ms = 30_000) =>
      waitFor(`every moved org to be answered by its new version ${n} times`, () =>
        Object.entries(pins).every(([org, version]) => byOrg.get(org)!.filter((a) => a.sent > since && a.version === version).length >= n), ms),
    stop: () => ((stopped = true), done),
  };
}

/** Every org's moves across `writes` (each write's pins against the previous write's). */
export function movesOf(orgs: string[], writes: PinWrite[]): OrgMove[] {
  const moves: OrgMove[] = [];
  for (const org of orgs) {
    const changes = writes.flatMap((w, i) => (i > 0 && w.pins[org] !== writes[i - 1]!.pins[org] ? [i] : []));
    changes.forEach((i, k) => {
      const next = changes[k + 1];
      moves.push({ org, from: writes[i - 1]!.pins[org]!, to: writes[i]!.pins[org]!, at: writes[i]!, until: next === undefined ? Infinity : writes[next]!.start });
    });
  }
  return moves;
}

/** Judge one move by the org's answers between its write and the org's next move. */
export function checkMove(move: OrgMove, answers: OrgAnswer[]): MoveCheck {
  const mine = answers.filter((a) => a.version !== undefined && a.answered >= move.at.start && a.answered < move.until);
  const lateOld = mine.filter((a) => a.sent > move.at.end && a.version === move.from);
  const firstNew = Math.min(...mine.filter((a) => a.version === move.to).map((a) => a.answered));
  if (!Number.isFinite(firstNew)) return { firstNew: undefined, checked: 0, violations: [], lateOld };
  const after = mine.filter((a) => a.sent > firstNew);
  return { firstNew, checked: after.length, violations: after.filter((a) => a.version !== move.to), lateOld };
}
