/**
 * `deploy demo`: the main job on the embedded default — a good and a bad release through real
 * nginx and Prometheus on this machine. See src/sandbox/demo.ts.
 */
import type { GlobalOptions, Io } from '../src/cli/context.js';
import { parseDuration } from '../src/config/units.js';
import { ExitCode, UsageError } from '../src/errors.js';
import { runDemo } from '../src/sandbox/demo.js';

/** Options of demo. */
export interface DemoOptions extends GlobalOptions {
  hold: string;
  keep?: boolean;
}

/** Run the demo and print its figures. Exit 0 when the good release promoted and the bad one rolled back. */
export async function run(opts: DemoOptions, io: Io): Promise<number> {
  const holdMs = parseDuration(opts.hold);
  if (holdMs === undefined) throw new UsageError(`--hold ${opts.hold}: not a duration`, 'use a unit, like --hold 5s');
  const r = await runDemo({ holdMs, keep: opts.keep ?? false, rate: 500, faultAfterMs: 2_000 }, io);
  const t = r.totals;
  io.out.result(
    { event: 'summary', goodExit: r.goodExit, badExit: r.badExit, timeToSafetyMs: r.timeToSafetyMs ?? null, badRequests: r.badRequests ?? null, excessFailures: r.excessFailures ?? null, requests: t.total, failed: t.failed, byVersion: t.byVersion },
    [
      '',
      `good release: ${r.goodExit === 0 ? 'promoted' : `exit ${r.goodExit}`}; bad release: ${r.badExit === 3 ? 'rolled back by its gate' : `exit ${r.badExit}`}`,
      r.timeToSafetyMs !== undefined ? `time to safety: ${(r.timeToSafetyMs / 1000).toFixed(1)} s from the first failing request to 100% on stable; ${r.badRequests} failed requests reached users meanwhile` : '',
      r.excessFailures !== undefined ? `users harmed: ${r.excessFailures} failed requests of v3 beyond v2's error rate, as its gate counted them` : '',
      `traffic: ${t.total} requests, ${Object.entries(t.byVersion).map(([v, n]) => `${v} ${n}`).join(', ')}, ${t.failed} failed`,
    ].filter(Boolean).join('\n'),
  );
  return r.goodExit === 0 && r.badExit === ExitCode.RolledBack ? ExitCode.Done : ExitCode.Unexpected;
}
