/**
 * Org traffic across a fleet, for the org-consistency test and the fleet benchmark: requests of
 * random orgs sent to regions at random over keep-alive connections, every answer kept with the
 * version and routing generation that served it (nginx's X-Cutover-Route). From the answers and
 * the moves made meanwhile, `judgeMoves` counts the requests of an org served by the old version
 * after any region served it the new one, and bounds each region's switch instant.
 * Loopback only; bounded by its owner's stop().
 */
import { Worker } from 'node:worker_threads';

/** One answered (or failed) request; times are epoch ms with sub-ms precision. */
export interface FleetAnswer {
  org: number;
  region: number;
  version: string | undefined;
  generation: number | undefined;
  /** When nginx routed it, by its clock (X-Cutover-Routed-At), epoch ms. */
  routedAt: number | undefined;
  sent: number;
  answered: number;
}

/** One org move: which orgs went where, its fleet generation and when it ran (epoch ms). */
export interface FleetMove {
  orgs: number[];
  to: string;
  generation: number;
  start: number;
  end: number;
  /** The activation instant the fleet chose, when it staged. */
  activateAt?: number;
}

/** What one move came to. */
export interface MoveVerdict {
  /** Requests of moved orgs sent after that org's first new-version answer (anywhere), and of them the old version's. */
  checked: number;
  late: number;
  /** The late ones sent after the activation instant + 50 ms (the bound). */
  lateAfterInstant: number;
  /** Orgs of the move asked again after their first new answer. */
  covered: number;
  /** Per region: the switch lies after `lo` and no later than `hi` (epoch ms, nginx's routing times). */
  switches: { lo: number; hi: number }[];
  /** Upper bound of the spread of the regions' switch instants: max hi − min lo (ms). */
  skewMs: number;
  /**
   * How finely the traffic pinned the switches: the widest region's hi − lo (ms). A bound no
   * finer than this says nothing below it: when no request reached any region for a while
   * (a machine starved of CPU), the skew is not measured, only bounded loosely.
   */
  resolutionMs: number;
}

/** Epoch ms with the precision of performance.now(). */
export const nowMs = (): number => performance.timeOrigin + performance.now();

/**
 * The load runs in a worker thread of its own and sends at a fixed rate (open loop): a stall of
 * this thread, or a slow answer, does not thin out the requests nginx routes around a switch,
 * which is what bounds each region's switch instant tightly.
 */
const LOAD_WORKER = String.raw`
const { workerData, parentPort } = require('node:worker_threads');
const http = require('node:http');
const { urls, orgs, perMs, maxInFlight } = workerData;
const agents = urls.map(() => new http.Agent({ keepAlive: true, maxSockets: maxInFlight }));
const inflight = urls.map(() => 0);
const answers = [];
const now = () => performance.timeOrigin + performance.now();
function send() {
  const region = Math.floor(Math.random() * urls.length);
  if (inflight[region] >= maxInFlight) return;
  inflight[region] += 1;
  const org = Math.floor(Math.random() * orgs.length);
  const sent = now();
  let done = false;
  const finish = (version, route, routedAt) => {
    if (done) return;
    done = true;
    inflight[region] -= 1;
    const m = /^(\S+) g(\d+)$/.exec(route || '');
    const at = Number(routedAt) * 1000;
    answers.push([org, region, version, m ? Number(m[2]) : undefined, at > 0 ? at : undefined, sent, now()]);
  };
  const req = http.request(urls[region], { agent: agents[region], headers: { 'x-org-id': orgs[org] } }, (res) => {
    res.resume();
    res.on('end', () => finish(res.statusCode === 200 ? String(res.headers['x-version']) : undefined, res.headers['x-cutover-route'], res.headers['x-cutover-routed-at']));
  });
  req.setTimeout(5000, () => req.destroy(new Error('timeout')));
  req.on('error', () => finish(undefined));
  req.end();
}
let carry = 0;
let last = now();
const timer = setInterval(() => {
  const t = now();
  carry += (t - last) * perMs;
  last = t;
  for (; carry >= 1; carry -= 1) send();
}, 1);
parentPort.on('message', () => {
  clearInterval(timer);
  const until = now() + 6000;
  const wait = setInterval(() => {
    if (inflight.every((n) => n === 0) || now() > until) {
      clearInterval(wait);
      for (const a of agents) a.destroy();
      parentPort.postMessage(answers);
    }
  }, 10);
});
`;

/**
 * Requests for random orgs at random regions, `ratePerSecond` in all, from a worker thread;
 * `answers` is filled when `stop()` resolves.
 */
export function startFleetOrgLoad(urls: string[], orgIds: string[], ratePerSecond = 2_400) {
  for (const u of urls) if (!['127.0.0.1', 'localhost'].includes(new URL(u).hostname)) throw new Error(`org load is only sent to loopback, not ${u}`);
  const worker = new Worker(LOAD_WORKER, { eval: true, workerData: { urls, orgs: orgIds, perMs: ratePerSecond / 1000, maxInFlight: 64 } });
  const answers: FleetAnswer[] = [];
  return {
    answers,
    async stop() {
      const rows = await new Promise<unknown[][]>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
        worker.postMessage('stop');
      });
      await worker.terminate();
      for (const [org, region, version, generation, routedAt, sent, answered] of rows as [number, number, string | undefined, number | undefined, number | undefined, number, number][]) {
        answers.push({ org, region, version: version ?? undefined, generation: generation ?? undefined, routedAt: routedAt ?? undefined, sent, answered });
      }
    },
  };
}

/**
 * Judge each move over the answers up to the next move: for every moved org, once any region
 * answered it with the new version, every later-sent request of that org must be answered by the
 * new version in every region; and per region, the switch to the move's generation lies between
 * the last request routed by an older generation and the first routed by it — by nginx's own
 * routing times where it tells them (X-Cutover-Routed-At), else by the client's.
 */
export function judgeMoves(moves: FleetMove[], answers: FleetAnswer[], regions: number): MoveVerdict[] {
  return moves.map((move, i) => {
    const until = moves[i + 1]?.start ?? Number.POSITIVE_INFINITY;
    const window = answers.filter((a) => a.version !== undefined && a.sent >= move.start - 1_000 && a.answered < until);
    const moved = new Set(move.orgs);
    const firstNew = new Map<number, number>();
    for (const a of window) {
      if (!moved.has(a.org) || a.version !== move.to || a.sent < move.start) continue;
      if (a.answered < (firstNew.get(a.org) ?? Number.POSITIVE_INFINITY)) firstNew.set(a.org, a.answered);
    }
    const checked = window.filter((a) => moved.has(a.org) && firstNew.has(a.org) && a.sent > firstNew.get(a.org)!);
    const late = checked.filter((a) => a.version !== move.to);
    const instant = move.activateAt ?? move.end;
    const switches = Array.from({ length: regions }, (_, r) => {
      const here = window.filter((a) => a.region === r && a.generation !== undefined);
      const lo = Math.max(move.start, ...here.filter((a) => a.generation! < move.generation).map((a) => a.routedAt ?? a.sent));
      const hi = Math.min(...here.filter((a) => a.generation! >= move.generation).map((a) => a.routedAt ?? a.answered));
      return { lo, hi };
    });
    return {
      checked: checked.length,
      late: late.length,
      lateAfterInstant: late.filter((a) => a.sent > instant + 50).length,
      covered: new Set(checked.map((a) => a.org)).size,
      switches,
      skewMs: Math.max(...switches.map((s) => s.hi)) - Math.min(...switches.map((s) => s.lo)),
      resolutionMs: Math.max(...switches.map((s) => s.hi - s.lo)),
    };
  });
}

/** The q-quantile (0..1) of `xs`, nearest rank. */
export function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}
