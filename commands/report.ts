/**
 * `deploy report`: a rollout for the change record, as a self-contained HTML page (charts
 * inlined, nothing fetched when opened) or as Markdown for any CI's summary.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { openProject, type GlobalOptions, type Io } from '../src/cli/context.js';
import { ExitCode, UsageError } from '../src/errors.js';
import { loadReport, renderHtml, renderMarkdown } from '../src/report/index.js';

/** Options of report. */
export interface ReportOptions extends GlobalOptions {
  /** `html` (default) or `markdown`. */
  format?: string;
  /** Write here instead of stdout. */
  out?: string;
  /** The rollout to report (default: the latest in the audit log). */
  rollout?: string;
}

/** Write the report; exits 1 when the audit chain does not verify (the report still says so). */
export async function run(opts: ReportOptions, io: Io): Promise<number> {
  const format = opts.format ?? 'html';
  if (format !== 'html' && format !== 'markdown') throw new UsageError(`--format ${format}: must be html or markdown`, 'like --format markdown');
  if (opts.out === undefined && io.out.format === 'json') throw new UsageError('--output json keeps stdout for JSON lines: name the report\'s file with --out', 'like --out report.html');
  if (opts.out === undefined && format === 'html' && io.stdout.isTTY) throw new UsageError('an HTML page is not for a terminal: name its file with --out', 'like --out report.html, or redirect stdout');
  const project = await openProject(opts, io.clock);
  const report = await loadReport(project, opts.rollout, io.clock());
  const text = format === 'html' ? renderHtml(report) : renderMarkdown(report);
  const chain = report.chain.verification;
  const verified = chain.ok;
  if (opts.out === undefined) {
    io.stdout.write(text);
  } else {
    const file = resolve(opts.out);
    writeFileSync(file, text);
    io.out.result(
      { event: 'report', file, format, rolloutId: report.rolloutId, phase: report.phase, verified },
      `wrote the ${format === 'html' ? 'HTML' : 'Markdown'} report of rollout ${report.rolloutId} (${report.phase.replace('_', ' ')}) to ${file}`,
    );
  }
  if (!chain.ok) io.out.note(`the audit chain is broken at record ${chain.brokenAt}: ${chain.reason}; the report says so`);
  return verified ? ExitCode.Done : ExitCode.Unexpected;
}
