/**
 * `deploy demo`: the main job on the embedded default — a good and a bad release through real
 * nginx and Prometheus on this machine. See src/sandbox/demo.ts.
 */
import type { GlobalOptions, Io } from '../src/cli/context.js';
import { parseDuration } from '../src/config/units.js';
import { ExitCode, UsageError } from '../src/errors.js';
import { runDemo, type ReleaseEnd } from '../src/sandbox/demo.js';
import { requestCount } from '../src/ui/numbers.js';

/** Options of demo. */
export interface DemoOptions extends GlobalOptions {
  hold: string;
  keep?: boolean;
}

/**
 * Run the demo and print its figures. Exit 0 when the bad release was rolled back by its gate and
 * the good one promoted (or was aborted by an operator); 3 when an operator aborted the bad one
 * first; 1 when a release ended otherwise.
 */
export async function run(opts: DemoOptions, io: Io): Promise<number> {
  const holdMs = parseDuration(opts.hold);
  if (holdMs === undefined) throw new UsageError(`--hold ${opts.hold}: not a duration`, 'use a unit, like --hold 5s');
  const r = await runDemo({ holdMs, keep: opts.keep ?? false, rate: 500, faultAfterMs: 2_000 }, io);
  const t = r.totals;
  const stable = r.good.phase === 'promoted' ? 'v2' : 'v1';
  io.out.result(
    {
      event: 'summary',
      goodExit: r.goodExit,
      badExit: r.badExit,
      good: r.good,
      bad: r.bad,
      timeToSafetyMs: r.timeToSafetyMs ?? null,
      badRequests: r.badRequests ?? null,
      excessFailures: r.excessFailures ?? null,
      requests: t.total,
      failed: t.failed,
      byVersion: t.byVersion,
    },
    [
      '',
      `good release: ${endText(r.good, 'promoted')}; bad release: ${endText(r.bad, 'rolled_back')}`,
      r.timeToSafetyMs !== undefined ? `time to safety: ${(r.timeToSafetyMs / 1000).toFixed(1)} s from the first failing request to 100% on stable; ${requestCount(r.badRequests ?? 0)} failed requests reached users meanwhile` : '',
      r.excessFailures !== undefined ? `users harmed: ${requestCount(r.excessFailures)} failed requests of v3 beyond ${stable}'s error rate, as its gate counted them` : '',
      `traffic: ${requestCount(t.total)} requests, ${Object.entries(t.byVersion).map(([v, n]) => `${v} ${requestCount(n)}`).join(', ')}, ${requestCount(t.failed)} failed`,
    ].filter(Boolean).join('\n'),
  );
  const goodOk = r.good.phase === 'promoted' || r.good.phase === 'aborted';
  if (goodOk && r.bad.phase === 'rolled_back') return ExitCode.Done;
  if (goodOk && r.bad.phase === 'aborted') return ExitCode.RolledBack;
  return ExitCode.Unexpected;
}

/** `promoted`, `rolled back by its gate`, `aborted (from the console)`, `paused (exit 4)`. */
function endText(end: ReleaseEnd, expected: 'promoted' | 'rolled_back'): string {
  if (end.phase === 'not run') return 'not run';
  if (end.phase === expected) return expected === 'promoted' ? 'promoted' : 'rolled back by its gate';
  const why = end.phase === 'aborted' || end.phase === 'rolled_back' ? end.reason : undefined;
  return `${end.phase.replace('_', ' ')} (${why ?? `exit ${end.exit}`})`;
}
