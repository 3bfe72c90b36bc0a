/**
 * The report as one self-contained HTML page for a change record: the tables are written here as
 * escaped HTML (readable with scripts off, in a mail client, in a printout), the charts are drawn
 * in the page by uPlot, whose minified build is inlined with its stylesheet. Nothing is fetched
 * when the page is opened: its Content-Security-Policy allows no source but the page's own two
 * scripts (by hash) and inline styles, so neither a forgotten link nor text from a record that
 * slipped through escaping could load or run anything.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { formatDuration } from '../config/units.js';
import { formatWeights } from '../ui/plain.js';
import { chainVerdict, measuredText } from './decisions.js';
import type { Decision, GateSeries, RolloutReport } from './model.js';
import { PAGE_SCRIPT } from './page-script.js';

/** Text as HTML, for element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/**
 * JSON that can sit inside a `<script>` element: no `<` (so no `</script>` or `<!--` from a
 * record's text ends or changes the element), no `>` or `&`, and the two line separators that
 * older engines took for line ends.
 */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** uPlot's minified build and stylesheet, read from the installed package. */
function uplotAssets(): { js: string; css: string } {
  const require = createRequire(import.meta.url);
  const dist = (file: string) => readFileSync(require.resolve(`uplot/dist/${file}`), 'utf8');
  const js = dist('uPlot.iife.min.js');
  // Inlined code must not be able to close its own element.
  if (/<\/script/i.test(js)) throw new Error('uPlot\'s build contains "</script" and cannot be inlined');
  return { js, css: dist('uPlot.min.css') };
}

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
const time = (iso: string) => `${iso.slice(11, 23)}`;
const PHASE_TEXT: Record<string, string> = {
  promoted: 'PROMOTED', rolled_back: 'ROLLED BACK', aborted: 'ABORTED', paused: 'PAUSED', failed: 'FAILED', holding: 'IN PROGRESS', progressing: 'IN PROGRESS', pending: 'NOT STARTED',
};

/** The whole page. */
export function renderHtml(r: RolloutReport): string {
  const { js, css } = uplotAssets();
  const csp = `default-src 'none'; script-src ${sha256(js)} ${sha256(PAGE_SCRIPT)}; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'`;
  const e = escapeHtml;
  const title = `${r.service} ${r.stable} → ${r.candidate}: ${PHASE_TEXT[r.phase] ?? r.phase}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${e(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(title)} · rollout ${e(r.rolloutId)}</title>
<style>${css}</style>
<style>${PAGE_CSS}</style>
</head>
<body>
<header>
<h1>${e(r.service)}: ${e(r.stable)} → ${e(r.candidate)} <span class="phase phase-${e(r.phase)}" id="phase">${e(PHASE_TEXT[r.phase] ?? r.phase)}</span></h1>
<p class="sub">Rollout <code>${e(r.rolloutId)}</code> · started ${e(r.startedAt)} by ${e(r.startedBy)}${r.endedAt ? ` · ended ${e(r.endedAt)}` : ' · still going on'} · times in UTC</p>
</header>
${summary(r)}
<section id="traffic"><h2>Traffic split</h2>
<p class="note">Each version's share of requests after every verified router write. Dashed lines are decisions: <span class="k-step">step</span>, <span class="k-pause">pause</span>, <span class="k-operator">operator</span>, <span class="k-rollback">rollback</span>, <span class="k-promoted">promotion</span>.</p>
<div class="chart" id="chart-traffic"></div></section>
<section id="gates"><h2>Gates</h2>
<p class="note">The audit log records a gate when its verdict changes and with the evidence of a rollback; the state adds its latest check. Dots are coloured by verdict: <span class="v-passed">passed</span>, <span class="v-inconclusive">inconclusive</span>, <span class="v-failed">failed</span>, <span class="v-error">error</span>.</p>
${r.gates.length ? r.gates.map(gateSection).join('\n') : '<p>No gate was checked in this rollout.</p>'}
</section>
<section id="decisions"><h2>Decisions</h2>
${decisionTable(r.decisions, r, 'decisions-table')}
</section>
<section id="operators"><h2>Operator actions</h2>
${r.decisions.some((d) => d.operator) ? decisionTable(r.decisions.filter((d) => d.operator), r, 'operator-table') : '<p>No operator acted on this rollout.</p>'}
</section>
<section id="steps"><h2>Steps</h2>
${stepTable(r)}
</section>
<section id="chain"><h2>Audit chain</h2>
<p id="chain-verdict" class="${r.chain.verification.ok ? 'chain-ok' : 'chain-broken'}">${e(chainVerdict(r.chain))}</p>
</section>
<footer>Made by <code>deploy report</code> at ${e(r.generatedAt)} from the audit log and the stored state. The report's data is in the page as JSON (<code>#report-data</code>).</footer>
<script type="application/json" id="report-data">${scriptJson(r)}</script>
<script>${js}</script>
<script>${PAGE_SCRIPT}</script>
</body>
</html>
`;
}

/** The facts a reader looks for first. */
function summary(r: RolloutReport): string {
  const e = escapeHtml;
  const last = r.traffic.at(-1);
  const facts: [string, string][] = [
    ['Outcome', `${PHASE_TEXT[r.phase] ?? r.phase}${r.reason ? `: ${r.reason}` : ''}`],
    ['Versions', `${r.stable} (stable) → ${r.candidate} (candidate); serving now: ${r.serving}`],
    ['Traffic now', last ? formatWeights(last.weights) : 'unknown'],
    ['Duration', `${formatDuration(r.durationMs)}${r.endedAt ? '' : ' so far'}`],
  ];
  if (r.safety) facts.push(['Safe after', `${formatDuration(r.safety.afterMs)}: 100% on ${r.stable}, verified, after ${r.safety.fromWhat} (${time(r.safety.from)} → ${time(r.safety.at)})`]);
  if (r.timeToSafetyMs !== undefined) facts.push(['Time to safety', `${formatDuration(r.timeToSafetyMs)} from the fault's start`]);
  if (r.excessFailures !== undefined) facts.push(['Users harmed', `${r.excessFailures} failed requests beyond ${r.stable}'s error rate`]);
  facts.push(['Audit chain', r.chain.verification.ok ? `verified (${r.chain.verification.records} records)` : `BROKEN at record ${r.chain.verification.brokenAt}`]);
  return `<dl class="facts" id="summary">${facts.map(([k, v]) => `<div><dt>${e(k)}</dt><dd>${e(v)}</dd></div>`).join('')}</dl>`;
}

/** One gate: its chart (when it recorded values) and every recorded check. */
function gateSection(g: GateSeries, index: number): string {
  const e = escapeHtml;
  const n = (x: number | undefined) => (x === undefined ? '' : e(String(+x.toPrecision(4))));
  const hasValues = g.points.some((p) => p.value !== undefined);
  const rows = g.points.map((p) => {
    const s = p.samples;
    const requests = s ? `${s.canary}${s.stable !== undefined ? ` / ${s.stable}` : ''}` : '';
    const evidence = s?.evidence !== undefined && s.rollbackAt !== undefined ? `${n(s.evidence)} of ${n(s.rollbackAt)}` : '';
    return `<tr class="v-row-${e(p.verdict)}"><td>${e(time(p.at))}</td><td>${p.step >= 1 ? p.step : ''}</td><td class="v-${e(p.verdict)}">${e(p.verdict)}</td><td>${e(measuredText(p.value, p.bucket))}</td><td>${n(p.threshold)}</td><td>${e(measuredText(p.baseline, p.baselineBucket))}</td><td>${e(requests)}</td><td>${evidence}</td><td>${e(p.reason)}</td></tr>`;
  });
  return `<div class="gate" data-gate="${e(g.gate)}"><h3>${e(g.gate)}${g.type ? ` <small>${e(g.type)}</small>` : ''}</h3>
${hasValues ? `<div class="chart" id="chart-gate-${index}"></div>` : '<p class="note">No measured value on record for this gate: its verdicts are below.</p>'}
<table class="gate-table"><thead><tr><th>at</th><th>step</th><th>verdict</th><th>value</th><th>threshold</th><th>baseline</th><th>requests (canary / stable)</th><th>evidence / rollback at</th><th>reason</th></tr></thead>
<tbody>${rows.join('')}</tbody></table></div>`;
}

/** Decisions as a table, newest last. */
function decisionTable(decisions: Decision[], r: RolloutReport, id: string): string {
  const e = escapeHtml;
  const start = Date.parse(r.startedAt);
  const rows = decisions.map((d) => `<tr class="kind-${d.kind}" data-kind="${d.kind}" data-seq="${d.seq}"><td>${e(time(d.at))}</td><td>+${e(formatDuration(Math.max(0, Date.parse(d.at) - start)))}</td><td>${d.step ?? ''}</td><td class="what">${e(d.what)}</td><td>${e(d.actor)}${d.operator ? ' <span class="badge">operator</span>' : ''}</td><td class="detail">${e(d.detail ?? '')}</td></tr>`);
  return `<table id="${id}"><thead><tr><th>at (UTC)</th><th>since start</th><th>step</th><th>what</th><th>who</th><th>why / detail</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

/** The plan's steps with their times. */
function stepTable(r: RolloutReport): string {
  const e = escapeHtml;
  const rows = r.steps.map((s) => `<tr><td>${s.step}/${r.steps.length}</td><td>${s.weight}%</td><td>${s.holdMs !== undefined ? e(formatDuration(s.holdMs)) : ''}</td><td>${s.enteredAt ? e(time(s.enteredAt)) : ''}</td><td>${s.durationMs !== undefined ? e(formatDuration(s.durationMs)) : ''}</td><td>${e(s.ended)}</td></tr>`);
  return `<table id="steps-table"><thead><tr><th>step</th><th>weight</th><th>hold</th><th>entered</th><th>time at step</th><th>how it ended</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

const PAGE_CSS = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #111827; margin: 0 auto; padding: 24px 32px; max-width: 1180px; background: #fff; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #e5e7eb; padding-bottom: 4px; } h3 { font-size: 15px; margin: 16px 0 6px; } h3 small { color: #6b7280; font-weight: normal; }
.sub, .note, footer { color: #4b5563; } footer { margin-top: 32px; font-size: 12px; }
.phase { font-size: 14px; vertical-align: middle; padding: 3px 10px; border-radius: 4px; color: #fff; background: #6b7280; letter-spacing: .04em; }
.phase-promoted { background: #15803d; } .phase-rolled_back, .phase-aborted, .phase-failed { background: #b91c1c; } .phase-paused { background: #b45309; } .phase-holding, .phase-progressing { background: #1d4ed8; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 8px 24px; margin: 16px 0; }
.facts div { border-left: 3px solid #d1d5db; padding-left: 10px; } .facts dt { font-size: 12px; color: #6b7280; text-transform: uppercase; letter-spacing: .05em; } .facts dd { margin: 0; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin: 6px 0 12px; } th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #e5e7eb; vertical-align: top; } th { background: #f9fafb; font-weight: 600; }
td.detail, td:last-child { overflow-wrap: anywhere; }
.kind-rollback td, .kind-problem td { background: #fef2f2; } .kind-pause td { background: #fffbeb; } .kind-operator td { background: #f5f3ff; } .kind-promoted td { background: #f0fdf4; }
.badge { font-size: 11px; background: #ede9fe; color: #5b21b6; border-radius: 3px; padding: 0 5px; }
.v-passed, .k-promoted { color: #15803d; font-weight: 600; } .v-failed, .k-rollback { color: #b91c1c; font-weight: 600; } .v-inconclusive, .k-pause { color: #b45309; font-weight: 600; } .v-error, .k-operator { color: #6d28d9; font-weight: 600; } .k-step { color: #1d4ed8; font-weight: 600; }
.chart { margin: 4px 0 8px; min-height: 40px; } .chart-error { color: #b91c1c; }
.chain-ok { color: #15803d; font-weight: 600; } .chain-broken { color: #b91c1c; font-weight: 600; }
code { font-size: 13px; background: #f3f4f6; padding: 0 4px; border-radius: 3px; }
@media print { body { padding: 0; } section { break-inside: avoid-page; } }
`;
