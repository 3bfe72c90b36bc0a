/**
 * The sandbox demo, the main job on the embedded default: real nginx, real Prometheus scraping
 * three sample versions at 1 s, keep-alive load, and two rollouts driven by the same code as
 * `deploy promote` — a good release through every step, then a bad one whose error rate rises
 * mid-step and is rolled back by its gate. It measures the time to safety (fault start to 100%
 * on stable, verified) and the failed requests users got meanwhile. An operator may pause or
 * abort either release from `deploy watch`: a pause keeps the demo waiting (and driving, so the
 * watcher's keys reach it), an abort ends that release and the demo goes on with the next.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { openProject, type Io } from '../cli/context.js';
import { driveUnderLock, sleep } from '../cli/drive.js';
import { startRollout, type EngineDeps } from '../engine/machine.js';
import { stepNumberOf } from '../engine/plan.js';
import { servingVersion, type RolloutState } from '../engine/state.js';
import { ExitCode, OperationError } from '../errors.js';
import { requestCount } from '../ui/numbers.js';
import { nginxRouterOptions } from '../routers/nginx/index.js';
import { NginxRouter } from '../routers/nginx/router.js';
import { planFor } from '../../strategies/index.js';
import { ladderMargins, requestsForMargin } from '../gates/ladder.js';
import { startLoad, type LoadCounts } from './load.js';
import { startNginx } from './nginx-process.js';
import { freePort } from './ports.js';
import { startPrometheus } from './prometheus-process.js';
import { startSampleService, type SampleService } from './sample-service.js';

/** Demo settings. */
export interface DemoSettings {
  holdMs: number;
  keep: boolean;
  /** Requests per second through nginx. */
  rate: number;
  /** Seconds into the bad release's third step when its errors start. */
  faultAfterMs: number;
}

/** How one of the demo's releases ended: its exit code, phase and why. */
export interface ReleaseEnd {
  exit: number;
  phase: RolloutState['phase'] | 'not run';
  reason?: string;
}

/** What the demo measured. */
export interface DemoOutcome {
  goodExit: number;
  badExit: number;
  good: ReleaseEnd;
  bad: ReleaseEnd;
  timeToSafetyMs?: number;
  badRequests?: number;
  /** The candidate's failed requests beyond stable's rate, as the gate counted them. */
  excessFailures?: number;
  totals: LoadCounts;
}

const share = (w: LoadCounts, version: string) => {
  const ok = w.total - w.failed;
  return ok ? +((100 * (w.byVersion[version] ?? 0)) / ok).toFixed(2) : 0;
};

/** Run the demo; everything started is stopped before this resolves or rejects. */
export async function runDemo(settings: DemoSettings, io: Io): Promise<DemoOutcome> {
  const dir = mkdtempSync(join(tmpdir(), 'cutover-demo-'));
  const cleanups: (() => Promise<unknown>)[] = [];
  try {
    const versions: Record<string, SampleService> = {};
    for (const v of ['v1', 'v2', 'v3']) {
      versions[v] = await startSampleService({ version: v });
      cleanups.push(() => versions[v]!.stop());
    }
    const prometheus = await startPrometheus({
      dataDir: join(dir, 'prometheus'),
      scrapeIntervalMs: 1000,
      scrapeTargets: [{ job: 'patient-api', targets: Object.values(versions).map((s) => `127.0.0.1:${s.port}`) }],
    });
    cleanups.push(() => prometheus.stop());
    const listen = `127.0.0.1:${await freePort()}`;
    const admin = `127.0.0.1:${await freePort()}`;
    const file = join(dir, 'deploy.yaml');
    writeFileSync(file, demoConfig(versions, listen, admin, prometheus.url, settings));
    const project = await openProject({ file }, io.clock);
    if (project.config.router.type !== 'nginx') throw new Error('the demo routes through nginx');
    const routerOptions = nginxRouterOptions(project.config.router, project.config, project.dir);
    const nginx = await startNginx(routerOptions);
    cleanups.push(() => nginx.stop());
    const router = new NginxRouter(routerOptions);
    await router.apply({ weights: { v1: 100 } });

    const load = startLoad(`http://${listen}/records`, { clients: 16, ratePerSecond: settings.rate });
    cleanups.push(() => load.stop());
    const deployBin = ownBin();
    io.out.note(
      `sandbox in ${dir}: nginx on ${listen}, Prometheus on ${prometheus.url} (1 s scrapes), v1 v2 v3 as sample services, ${settings.rate} req/s of keep-alive traffic\n` +
        `watch it: ${deployBin} watch -f ${file}    abort it: ${deployBin} abort -f ${file}`,
    );

    // Between step changes, show the share of live traffic each version really got.
    let candidate = 'v2';
    let fault: { atMs: number; timer?: NodeJS.Timeout } | undefined;
    let safety: { timeToSafetyMs: number; badRequests: number; excessFailures?: number } | undefined;
    const out = io.out;
    const demoIo: Io = {
      ...io,
      out: {
        ...out,
        event(e) {
          if ((e.event === 'weights' || e.event === 'done') && !fault) {
            const w = load.window();
            if (w.total > 0) {
              const text = `         traffic since the last change: ${share(w, candidate)}% of ${requestCount(w.total)} requests answered by ${candidate}, ${requestCount(w.failed)} failed`;
              out.result({ event: 'traffic', ...w, candidate, candidateShare: share(w, candidate) }, out.color.dim(text));
            }
          }
          if (e.event === 'step' && candidate === 'v3' && e.step === 3 && !fault) {
            // The bad release: errors start part-way into its third step.
            fault = { atMs: Date.now() };
            fault.timer = setTimeout(() => {
              fault!.atMs = Date.now();
              load.window();
              versions.v3!.setFault({ errorRate: 0.3 });
              out.note(`fault injected: v3 now fails 30% of its requests`);
            }, settings.faultAfterMs);
          }
          if (e.event === 'rollback' && e.cause === 'gate' && fault) {
            clearTimeout(fault.timer);
            safety = { timeToSafetyMs: Date.now() - fault.atMs, badRequests: load.window().failed, ...(e.excessFailures !== undefined ? { excessFailures: e.excessFailures } : {}) };
            out.event({ ...e, ...safety });
            return;
          }
          // In text, a pause is told by the demo itself: it waits, and `deploy resume` cannot take over its lock.
          if (out.format === 'text' && (e.event === 'paused' || (e.event === 'done' && e.phase === 'paused'))) return;
          out.event(e);
        },
      },
    };

    const watchHint = { deploy: deployBin, file };
    const rollout = async (stable: string, to: string): Promise<ReleaseEnd> => {
      const exit = await driveThroughPauses(
        (move) => driveUnderLock(project, demoIo, move, router),
        (_s, deps) => startRollout({ service: project.config.service, stable, candidate: to, plan: planFor(project.config, project.dir) }, deps),
        project.leaseMs,
        (paused) => out.note(waitingNote(paused, watchHint)),
      );
      const state = await project.store.load();
      return { exit, phase: state?.phase ?? 'failed', ...(state?.outcome ? { reason: state.outcome.reason } : {}) };
    };

    out.note('\n— a good release: v2 over v1, through every step —');
    const good = await rollout('v1', 'v2');
    // An operator's abort ends that release only; anything else ends the demo.
    if (good.exit !== ExitCode.Done && good.phase !== 'aborted') return { goodExit: good.exit, badExit: -1, good, bad: { exit: -1, phase: 'not run' }, totals: load.totals() };
    const stable = servingVersion((await project.store.load())!);
    candidate = 'v3';
    out.note(`\n— a bad release: v3 over ${stable}; its errors rise in the third step —`);
    const bad = await rollout(stable, 'v3');
    await new Promise((r) => setTimeout(r, 1000));
    const after = load.window();
    out.result(
      { event: 'after', requests: after.total, failed: after.failed, byVersion: after.byVersion },
      `after the ${bad.phase === 'aborted' ? 'abort' : 'rollback'}: ${requestCount(after.total)} requests in 1 s, ${share(after, stable)}% on ${stable}, ${requestCount(after.failed)} failed`,
    );
    return { goodExit: good.exit, badExit: bad.exit, good, bad, ...(safety ?? {}), totals: load.totals() };
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    if (!settings.keep) rmSync(dir, { recursive: true, force: true });
  }
}

/** A first move of a driver, as `driveUnderLock` takes it. */
type FirstMove = (state: RolloutState | undefined, deps: EngineDeps) => Promise<RolloutState>;

/**
 * Drive a rollout to its end, waiting through pauses. After a pause the driver goes on holding
 * the lock (renewed) and waits for an operator's request — space, p or a in `deploy watch`,
 * `deploy abort` — which the next drive takes first. Ctrl-C while waiting ends it as detached.
 */
export async function driveThroughPauses(drive: (move: FirstMove) => Promise<number>, start: FirstMove, leaseMs: number, onPause: (state: RolloutState) => void): Promise<number> {
  const stop = new AbortController();
  const interrupt = () => stop.abort();
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);
  try {
    let move = start;
    for (;;) {
      const exit = await drive(move);
      if (exit !== ExitCode.Paused || stop.signal.aborted) return exit;
      move = async (state, deps) => {
        if (!state) throw new OperationError('the demo\'s rollout vanished from its state');
        onPause(state);
        return awaitRequest(state, deps, leaseMs, stop.signal);
      };
    }
  } finally {
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
  }
}

/** Hold on to the lock, renewing it, until an operator's request is waiting (or `signal` aborts). */
async function awaitRequest(state: RolloutState, deps: EngineDeps, leaseMs: number, signal: AbortSignal): Promise<RolloutState> {
  let renewAt = deps.clock() + leaseMs / 3;
  while (!signal.aborted && !(await deps.store.hasRequests())) {
    if (deps.clock() >= renewAt) {
      await deps.fence?.();
      renewAt = deps.clock() + leaseMs / 3;
    }
    await sleep(200, signal);
  }
  return (await deps.store.load()) ?? state;
}

/** What the demo says when a release pauses: it waits, and how to go on. */
export function waitingNote(state: RolloutState, hint: { deploy: string; file: string }): string {
  const watch = `\`${hint.deploy} watch -f ${hint.file}\``;
  const abort = `\`${hint.deploy} abort -f ${hint.file}\``;
  const at = `step ${stepNumberOf(state.step)}`;
  const why =
    state.paused?.reason === 'operator' ? `paused by ${state.paused.by} at ${at}`
    : state.paused?.reason === 'inconclusive' ? `the gates stayed inconclusive at ${at}`
    : state.paused?.reason === 'step' ? `${at} waits for a manual go`
    : `paused at ${at}`;
  const go = state.paused?.reason === 'step' ? 'p in it promotes' : state.paused?.reason === 'inconclusive' ? 'space in it gives the gates more time, p promotes' : 'space in it resumes, p promotes';
  return `${why}: the demo waits, its traffic still flowing. Go on from ${watch}: ${go}, a aborts (as ${abort} does)`;
}

/** The weights of the demo's ladder before 100%. */
const DEMO_WEIGHTS = [1, 5, 25, 50];

/**
 * The demo's steps with the product's default 0.1-point rule: each step's margin derived from the
 * demo's own traffic as `ladderMargins` derives it from Prometheus (the sandbox's Prometheus has
 * no history yet to measure), and the last weighted step held long enough for its requests to
 * rule out +0.1 points when v2 fails no request at all.
 */
export function demoSteps(settings: Pick<DemoSettings, 'holdMs' | 'rate'>): { weight: number; holdMs: number; margin: number }[] {
  const last = DEMO_WEIGHTS.at(-1)!;
  const needed = requestsForMargin(0.001, 0, 0.01, 0.5);
  const lastHoldMs = Math.max(settings.holdMs, Math.ceil((1.25 * needed * 1000) / ((settings.rate * last) / 100) / 1000) * 1000);
  const steps = DEMO_WEIGHTS.map((weight) => ({ weight, holdMs: weight === last ? lastHoldMs : settings.holdMs }));
  const margins = ladderMargins(steps, 0.001, 0.01, { requestsPerSecond: settings.rate, errorRate: 0 });
  return steps.map((s, i) => ({ ...s, margin: margins[i]!.margin }));
}

/** The sandbox's deploy.yaml: the production gate rule, margins and holds fitted to the demo's traffic. */
function demoConfig(versions: Record<string, SampleService>, listen: string, admin: string, prometheusUrl: string, settings: DemoSettings): string {
  const steps = demoSteps(settings);
  return `service: patient-api
stable: v1
versions:
${Object.entries(versions).map(([v, s]) => `  ${v}: { endpoints: ["127.0.0.1:${s.port}"] }`).join('\n')}
router:
  type: nginx
  listen: ${listen}
  admin: ${admin}
  prefix: nginx
  exposeRoute: true
state:
  type: local
  dir: .deploy
  lease: 10s
prometheus:
  url: ${prometheusUrl}
gates:
  - name: errors
    type: errorRate        # the default rule: roll back on evidence of harm, +0.1 points ruled out before 100%
  - name: latency
    type: latencyP99
    max: 250ms
    minRequests: 20
strategy:
  canary:
    checkInterval: 1s
    inconclusive: { after: 60s, action: pause }
    # margins: what each step's requests at ${settings.rate} req/s can rule out; the last one is the rule itself
    steps:
${steps.map((s) => `      - { weight: ${s.weight}, hold: ${s.holdMs}ms, margin: ${+(s.margin * 100).toFixed(3)}% }`).join('\n')}
      - { weight: 100 }
`;
}

/** How to call this CLI, relative to where the demo runs: bin/deploy of the checkout above this module (compiled, bundled or not). */
function ownBin(): string {
  for (let dir = import.meta.dirname; dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, 'bin', 'deploy'))) return relative(process.cwd(), join(dir, 'bin', 'deploy'));
  }
  return 'deploy';
}
