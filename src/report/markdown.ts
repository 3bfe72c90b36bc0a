/**
 * The report as Markdown, for any CI's summary or a change ticket. It is laid out like the GitHub
 * Actions job summary (src/ui/github.ts): the same heading, traffic line, "Why", "Users harmed",
 * and the `| at | what | detail |` and `| gate | last verdict | evidence |` tables, with the weights
 * and durations written by the same functions; it adds what only the audit log holds: who did
 * what, every recorded gate check, the steps' times and the chain's verdict.
 */
import { formatDuration } from '../config/units.js';
import { formatWeights } from '../ui/plain.js';
import { chainVerdict, measuredText } from './decisions.js';
import type { GatePoint, RolloutReport } from './model.js';

/**
 * Text safe inside a Markdown table cell and inert as HTML (renderers that pass HTML through
 * must not be handed a record's text as markup).
 */
export function markdownCell(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/\|/g, '\\|')
    .replace(/\r?\n/g, ' ');
}

const clock = (iso: string) => iso.slice(11, 19);
const number = (x: number | undefined) => (x === undefined ? '' : String(+x.toPrecision(4)));

/** The whole report as Markdown. */
export function renderMarkdown(r: RolloutReport): string {
  const phase = r.phase.replace('_', ' ');
  const last = r.traffic.at(-1);
  const lines = [
    `### ${markdownCell(r.service)}: ${markdownCell(r.stable)} → ${markdownCell(r.candidate)}, ${phase}`,
    '',
    `Traffic now: ${last ? formatWeights(last.weights) : 'unknown'}; ran ${formatDuration(r.durationMs)}; rollout \`${r.rolloutId}\` started ${r.startedAt} by ${markdownCell(r.startedBy)}${r.endedAt ? `, ended ${r.endedAt}` : ', still going on'}.`,
    ...(r.reason ? ['', `Why: ${markdownCell(r.reason)}`] : []),
    ...(r.excessFailures !== undefined ? ['', `Users harmed: ${r.excessFailures} failed requests beyond ${markdownCell(r.stable)}'s error rate.`] : []),
    ...(r.safety ? ['', `Safe: 100% on ${markdownCell(r.stable)}, verified ${formatDuration(r.safety.afterMs)} after ${markdownCell(r.safety.fromWhat)} (${clock(r.safety.from)} → ${clock(r.safety.at)}).`] : []),
    ...(r.timeToSafetyMs !== undefined ? ['', `Time to safety, from the fault's start: ${formatDuration(r.timeToSafetyMs)}.`] : []),
    '',
    r.chain.verification.ok ? markdownCell(chainVerdict(r.chain)) : `**${markdownCell(chainVerdict(r.chain))}**`,
  ];
  if (r.decisions.length) {
    lines.push('', '| at | what | who | detail |', '|---|---|---|---|');
    for (const d of r.decisions) lines.push(`| ${clock(d.at)} | ${markdownCell(d.what)} | ${markdownCell(d.actor)}${d.operator ? ' (operator)' : ''} | ${markdownCell(d.detail ?? '')} |`);
  }
  const verdicts = r.gates.map((g) => ({ gate: g.gate, last: g.points.at(-1) })).filter((g): g is { gate: string; last: GatePoint } => g.last !== undefined);
  if (verdicts.length) {
    lines.push('', '| gate | last verdict | evidence |', '|---|---|---|');
    for (const g of verdicts) lines.push(`| ${markdownCell(g.gate)} | ${g.last.verdict} | ${markdownCell(g.last.reason)} |`);
  }
  const checks = r.gates.flatMap((g) => g.points.map((p) => ({ gate: g.gate, p }))).sort((a, b) => Date.parse(a.p.at) - Date.parse(b.p.at));
  if (checks.length) {
    lines.push('', '#### Gate checks on record', '', '| at | step | gate | verdict | value | threshold | baseline | requests (canary / stable) |', '|---|---|---|---|---|---|---|---|');
    for (const { gate, p } of checks) {
      const n = p.samples ? `${p.samples.canary}${p.samples.stable !== undefined ? ` / ${p.samples.stable}` : ''}` : '';
      lines.push(`| ${clock(p.at)} | ${p.step >= 1 ? p.step : ''} | ${markdownCell(gate)} | ${p.verdict} | ${measuredText(p.value, p.bucket)} | ${number(p.threshold)} | ${measuredText(p.baseline, p.baselineBucket)} | ${n} |`);
    }
  }
  if (r.steps.length) {
    lines.push('', '#### Steps', '', '| step | weight | hold | entered | time at step | how it ended |', '|---|---|---|---|---|---|');
    for (const s of r.steps) {
      lines.push(`| ${s.step}/${r.steps.length} | ${s.weight}% | ${s.holdMs !== undefined ? formatDuration(s.holdMs) : ''} | ${s.enteredAt ? clock(s.enteredAt) : ''} | ${s.durationMs !== undefined ? formatDuration(s.durationMs) : ''} | ${s.ended} |`);
    }
  }
  lines.push('');
  return `${lines.join('\n')}\n`;
}
