/**
 * GitHub Actions, when `GITHUB_ACTIONS` is set: annotations for a rollback, a pause and errors
 * (workflow commands on stderr, so stdout stays JSON lines under `--output json`), a Markdown job
 * summary appended to `GITHUB_STEP_SUMMARY` when the driver stops, and the step outputs `phase`,
 * `version` (the one serving users) and `exit-code` in `GITHUB_OUTPUT`.
 */
import { appendFileSync } from 'node:fs';
import type { EngineEvent } from '../engine/events.js';
import { formatDuration } from '../config/units.js';

/** A workflow command's message: one line, with GitHub's escapes. */
function escape(text: string): string {
  return text.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

const clock = (iso: string) => iso.slice(11, 19);
const weights = (w: Record<string, number>) => Object.entries(w).map(([v, x]) => `${v} ${+x.toFixed(3)}%`).join(' · ');

/** Watches a command's events and reports them to GitHub Actions; a no-op elsewhere. */
export class GithubActions {
  private readonly lines: string[] = [];
  private started?: { stable: string; candidate: string; at: string; service: string };

  constructor(
    private readonly env: NodeJS.ProcessEnv,
    private readonly stderr: NodeJS.WritableStream,
  ) {}

  /** Whether this run is a GitHub Actions step. */
  get active(): boolean {
    return this.env.GITHUB_ACTIONS === 'true';
  }

  /** Take one event. */
  event(e: EngineEvent): void {
    if (!this.active) return;
    switch (e.event) {
      case 'started':
        this.started = { stable: e.stable, candidate: e.candidate, at: e.at, service: e.service };
        return;
      case 'step':
        this.lines.push(`| ${clock(e.at)} | step ${e.step}/${e.steps} | ${weights(e.weights)}${e.holdMs ? `, hold ${formatDuration(e.holdMs)}` : ''} |`);
        return;
      case 'gate':
        if (e.verdict === 'failed') this.lines.push(`| ${clock(e.at)} | gate ${e.gate} failed | ${e.reason.replace(/\|/g, '\\|')} |`);
        return;
      case 'rollback':
        this.stderr.write(`::error title=${e.cause === 'abort' ? 'Rollout aborted' : 'Rollout rolled back'}::${escape(`${e.service}: ${weights(e.weights)} — ${e.reason}`)}\n`);
        this.lines.push(`| ${clock(e.at)} | ${e.cause === 'abort' ? 'aborted' : 'rolled back'} | ${weights(e.weights)}: ${e.reason.replace(/\|/g, '\\|')} |`);
        return;
      case 'paused':
        this.stderr.write(`::warning title=Rollout paused::${escape(`${e.service} paused at step ${e.step} (${e.reason}): \`deploy promote\` carries on`)}\n`);
        this.lines.push(`| ${clock(e.at)} | paused at step ${e.step} | ${e.reason} |`);
        return;
      case 'error':
        if (!e.retrying) this.stderr.write(`::error title=Rollout error::${escape(e.message)}\n`);
        return;
      case 'retry':
        return;
      case 'done':
        this.finish(e);
        return;
      default:
        return;
    }
  }

  private finish(e: Extract<EngineEvent, { event: 'done' }>): void {
    const candidate = e.candidate ?? this.started?.candidate ?? '';
    const stable = e.stable ?? this.started?.stable ?? '';
    const serving = e.phase === 'promoted' ? candidate : stable;
    const out = this.env.GITHUB_OUTPUT;
    if (out) appendFileSync(out, `phase=${e.phase}\nversion=${serving}\nexit-code=${e.exitCode}\n`);
    const file = this.env.GITHUB_STEP_SUMMARY;
    if (!file) return;
    const verdicts = (e.gates ?? []).map((g) => `| ${g.gate} | ${g.verdict} | ${g.reason.replace(/\|/g, '\\|')} |`);
    const summary = [
      `### ${e.service}: ${stable} → ${candidate}, ${e.phase.replace('_', ' ')}`,
      '',
      `Traffic now: ${weights(e.weights)}${e.durationMs !== undefined ? `; ran ${formatDuration(e.durationMs)}` : ''}; exit code ${e.exitCode}.`,
      ...(e.reason ? ['', `Why: ${e.reason}`] : []),
      ...(e.excessFailures !== undefined ? ['', `Users harmed: ${e.excessFailures} failed requests beyond ${stable}'s error rate.`] : []),
      ...(this.lines.length ? ['', '| at | what | detail |', '|---|---|---|', ...this.lines] : []),
      ...(verdicts.length ? ['', '| gate | last verdict | evidence |', '|---|---|---|', ...verdicts] : []),
      '',
    ];
    appendFileSync(file, `${summary.join('\n')}\n`);
  }
}
