/**
 * `deploy demo`: the main job on the embedded default. Starts a real nginx and two sample
 * versions on loopback, sends steady keep-alive traffic through nginx, and walks a canary through
 * every step with the same driver `deploy promote` uses, showing the traffic each step really got.
 * Everything it started is stopped on exit, on error and on Ctrl-C.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { openProject, type GlobalOptions, type Io } from '../src/cli/context.js';
import { driveUnderLock } from '../src/cli/drive.js';
import { parseDuration } from '../src/config/units.js';
import { startRollout } from '../src/engine/machine.js';
import { UsageError } from '../src/errors.js';
import { nginxRouterOptions } from '../src/routers/factory.js';
import { NginxRouter } from '../src/routers/nginx.js';
import { startLoad, type LoadCounts } from '../src/sandbox/load.js';
import { startNginx } from '../src/sandbox/nginx-process.js';
import { freePort } from '../src/sandbox/ports.js';
import { startSampleService } from '../src/sandbox/sample-service.js';
import { planCanary } from '../strategies/canary.js';

/** Options of demo. */
export interface DemoOptions extends GlobalOptions {
  hold: string;
  keep?: boolean;
}

/** Run the sandbox canary. */
export async function run(opts: DemoOptions, io: Io): Promise<number> {
  const holdMs = parseDuration(opts.hold);
  if (holdMs === undefined) throw new UsageError(`--hold ${opts.hold}: not a duration`, 'use a unit, like --hold 5s');
  const dir = mkdtempSync(join(tmpdir(), 'cutover-demo-'));
  const cleanups: (() => Promise<unknown>)[] = [];
  try {
    const [v1, v2] = await Promise.all([startSampleService({ version: 'v1' }), startSampleService({ version: 'v2' })]);
    cleanups.push(() => v1.stop(), () => v2.stop());
    const [listen, admin] = [`127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`];
    const file = join(dir, 'deploy.yaml');
    writeFileSync(file, demoConfig(v1.port, v2.port, listen, admin, opts.hold));
    const project = openProject({ file }, io.clock);
    if (project.config.router.type !== 'nginx') throw new Error('the demo config routes through nginx');
    const routerOptions = nginxRouterOptions(project.config.router, project.config, project.dir);

    const nginx = await startNginx(routerOptions);
    cleanups.push(() => nginx.stop());
    const router = new NginxRouter(routerOptions);
    await router.apply({ weights: { v1: 100 } });

    const load = startLoad(`http://${listen}/records`, { clients: 8, ratePerSecond: 200 });
    cleanups.push(() => load.stop());
    io.out.note(
      `sandbox in ${dir}: nginx on ${listen} in front of v1 (:${v1.port}) and v2 (:${v2.port}), 200 req/s of keep-alive traffic\n` +
        `to abort from another terminal: ${relative(process.cwd(), resolve(import.meta.dirname, '../../bin/deploy')) || 'deploy'} abort -f ${file}`,
    );

    const showTraffic = (label: string) => {
      const w = load.window();
      if (w.total === 0) return;
      const text = `         traffic ${label}: ${share(w, 'v2')}% of ${w.total} requests answered by v2, ${w.failed} failed`;
      io.out.result({ event: 'traffic', label, ...w, candidateShare: share(w, 'v2') }, io.out.color.dim(text));
    };
    const out = io.out;
    let first = true;
    const demoIo: Io = {
      ...io,
      out: {
        ...out,
        event(e) {
          if (e.event === 'weights' || e.event === 'done') showTraffic(first ? 'before the rollout' : 'during the step that just ended');
          if (e.event === 'weights') first = false;
          out.event(e);
        },
      },
    };
    const code = await driveUnderLock(project, demoIo, (_state, deps) =>
      startRollout({ service: project.config.service, stable: 'v1', candidate: 'v2', plan: planCanary(project.config.strategy?.canary) }, deps),
    router);
    const t = load.totals();
    io.out.result(
      { event: 'summary', requests: t.total, failed: t.failed, byVersion: t.byVersion, exitCode: code },
      `traffic during the demo: ${t.total} requests, ${Object.entries(t.byVersion).map(([v, n]) => `${v} ${n}`).join(', ')}, ${t.failed} failed`,
    );
    return code;
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    if (!opts.keep) rmSync(dir, { recursive: true, force: true });
  }
}

function share(w: LoadCounts, version: string): number {
  const ok = w.total - w.failed;
  return ok ? +((100 * (w.byVersion[version] ?? 0)) / ok).toFixed(2) : 0;
}

/** The sandbox's deploy.yaml. */
function demoConfig(p1: number, p2: number, listen: string, admin: string, hold: string): string {
  return `service: patient-api
stable: v1
versions:
  v1: { endpoints: ["127.0.0.1:${p1}"] }
  v2: { endpoints: ["127.0.0.1:${p2}"] }
router:
  type: nginx
  listen: ${listen}
  admin: ${admin}
  prefix: nginx
state:
  type: local
  dir: .deploy
  lease: 10s
strategy:
  canary:
    checkInterval: 1s
    steps:
${[1, 5, 25, 50, 100].map((w) => `      - weight: ${w}\n        hold: ${hold}`).join('\n')}
`;
}
