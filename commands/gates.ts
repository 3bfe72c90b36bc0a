/**
 * `deploy gates check` evaluates the gates now; `deploy gates backtest` replays them over a past
 * window, so a team can try a gate on last month's incidents before trusting it.
 */
import { openProject, type GlobalOptions, type Io } from '../src/cli/context.js';
import { parseDuration } from '../src/config/units.js';
import { servingVersion } from '../src/engine/state.js';
import { ExitCode, UsageError } from '../src/errors.js';
import { evaluateGates } from '../src/gates/evaluate.js';
import { backtestGate } from '../src/gates/backtest.js';
import { createProvider, versionEndpoints } from '../src/gates/runner.js';
import { formatGate, verdictColour } from '../src/ui/plain.js';

/** Options of both subcommands. */
export interface GatesOptions extends GlobalOptions {
  candidate?: string;
  stable?: string;
  window?: string;
  from?: string;
  to?: string;
  interval?: string;
}

/** A time: ISO 8601, `now`, or a duration ago (`2h`, `-2h`). */
export function parseTime(text: string, now: number, flag: string): number {
  if (text === 'now') return now;
  const ago = parseDuration(text.replace(/^-/, ''));
  if (ago !== undefined) return now - ago;
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new UsageError(`${flag} ${text}: not a time`, 'use ISO 8601 (2026-11-01T09:00:00Z), now, or a duration ago like 2h');
  return t;
}

async function setup(opts: GatesOptions, io: Io) {
  const project = await openProject(opts, io.clock);
  const { config } = project;
  if (!config.gates?.length) throw new UsageError(`${project.path} defines no gates`, 'add gates: (and prometheus:) to deploy.yaml');
  const state = await project.store.load();
  const stable = opts.stable ?? (state ? state.stable : config.stable);
  const candidate = opts.candidate ?? (state && state.candidate !== stable ? state.candidate : undefined);
  if (!candidate) throw new UsageError('no rollout names a candidate', 'pass --candidate VERSION');
  for (const v of [stable, candidate]) {
    if (!(v in config.versions)) throw new UsageError(`unknown version ${v} (known: ${Object.keys(config.versions).join(', ')})`);
  }
  return { project, config, state, stable, candidate, provider: (await createProvider(config))! };
}

/** `deploy gates check`: every gate, now, over the current hold (or --window). */
export async function check(opts: GatesOptions, io: Io): Promise<number> {
  const { config, state, stable, candidate, provider } = await setup(opts, io);
  const now = io.clock();
  const windowMs = opts.window ? parseDuration(opts.window) : undefined;
  if (opts.window && windowMs === undefined) throw new UsageError(`--window ${opts.window}: not a duration`, 'like --window 10m');
  const holding = state?.phase === 'holding' && state.candidate === candidate && state.holdStartedAt;
  const startMs = windowMs !== undefined ? now - windowMs : holding ? Date.parse(state.holdStartedAt!) : now - 5 * 60_000;
  const results = await evaluateGates(config.gates!, provider, { service: config.service, stable, candidate, startMs, atMs: now, endpoints: versionEndpoints(config) });
  for (const r of results) io.out.result({ event: 'gate', ...r }, formatGate(r, io.out.color));
  if (io.out.format === 'text') io.out.note(`${candidate} against ${stable}, window ${Math.round((now - startMs) / 1000)}s${state ? ` (rollout ${state.rolloutId}, ${servingVersion(state)} serving)` : ''}`);
  return results.some((r) => r.verdict === 'error') ? ExitCode.Unexpected : ExitCode.Done;
}

/** `deploy gates backtest --from T --to T`: what each gate would have said at every check. */
export async function backtest(opts: GatesOptions, io: Io): Promise<number> {
  const { config, stable, candidate, provider } = await setup(opts, io);
  const now = io.clock();
  if (!opts.from) throw new UsageError('--from is required', 'like --from 2026-11-01T09:00:00Z or --from 2h');
  const fromMs = parseTime(opts.from, now, '--from');
  const toMs = parseTime(opts.to ?? 'now', now, '--to');
  const intervalMs = parseDuration(opts.interval ?? '30s');
  if (intervalMs === undefined || intervalMs < 1000) throw new UsageError(`--interval ${opts.interval}: must be a duration of at least 1s`);
  if (toMs - fromMs < intervalMs) throw new UsageError('--to must be at least one interval after --from');
  // Prometheus answers at most 11,000 points a series; past that the replay would only fail later.
  const points = Math.floor((toMs - fromMs) / intervalMs);
  if (points > 11_000) throw new UsageError(`--from … --to at --interval ${opts.interval ?? '30s'} is ${points.toLocaleString('en-US')} checks; a backtest replays at most 11,000`, `use a longer --interval (at least ${Math.ceil((toMs - fromMs) / 11_000 / 1000)}s) or a shorter window`);
  const w = { service: config.service, stable, candidate, fromMs, toMs, intervalMs };
  for (const gate of config.gates!) {
    const r = await backtestGate(gate, provider, w);
    const iso = (t: number) => new Date(t).toISOString();
    if (io.out.format === 'json') {
      io.out.result({ event: 'backtest', gate: r.gate, firstPassedAt: r.firstPassedMs && iso(r.firstPassedMs), firstFailedAt: r.firstFailedMs && iso(r.firstFailedMs), points: r.points.map((p) => ({ ...p, at: iso(p.atMs) })) }, '');
      continue;
    }
    const changes = r.points.filter((p, i) => i === 0 || p.verdict !== r.points[i - 1]!.verdict);
    const c = io.out.color;
    const summary = r.firstFailedMs
      ? c.red(`would have failed at ${iso(r.firstFailedMs)} (${Math.round((r.firstFailedMs - fromMs) / 1000)}s in)`)
      : r.firstPassedMs
        ? c.green(`would have passed at ${iso(r.firstPassedMs)} (${Math.round((r.firstPassedMs - fromMs) / 1000)}s in)`)
        : c.yellow('would have held (never passed or failed)');
    io.out.result({}, `${c.bold(r.gate)}: ${summary}\n${changes.map((p) => `  ${iso(p.atMs)}  ${verdictColour(p.verdict, c)}  ${p.reason}`).join('\n')}`);
  }
  return ExitCode.Done;
}
