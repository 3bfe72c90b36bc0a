/**
 * `deploy report` end to end: real rollouts through nginx with gates on a real Prometheus — one
 * aborted by an operator with a hostile reason, one paused and resumed by an operator and then
 * rolled back by its gate — reported as HTML and Markdown, and the pages opened in a real
 * headless chromium: the charts' canvases are drawn, the decisions list the rollback and its
 * reason, the chain's verdict shows, nothing is fetched and nothing from a record runs.
 *
 * UPDATE_SCREENSHOTS=1 writes the screenshot to docs/deploy-report.png (the README's); otherwise
 * it goes to the sandbox folder.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run as report, type ReportOptions } from '../../commands/report.js';
import { startLoad, type LoadGenerator } from '../../src/sandbox/load.js';
import { createOutput } from '../../src/ui/output.js';
import { type Browser, type BrowserPage, startChromium } from '../helpers/chromium.js';
import { followEvents, startSandbox, waitFor, type Sandbox } from '../helpers/sandbox.js';

const GATES = `prometheus:
  url: PROMETHEUS_URL
  timeout: 1s
gates:
  - name: errors
    type: errorRate
    maxIncrease: 5%
`;
const HOSTILE = '</script><script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> | "quoted" & done';
const SCREENSHOT = resolve(import.meta.dirname, '../../docs/deploy-report.png');

/** Run `deploy report` in this process with captured streams. */
async function runReport(sb: Sandbox, opts: Partial<ReportOptions>): Promise<{ code: number; stdout: string; stderr: string }> {
  const text = { stdout: '', stderr: '' };
  const sink = (k: keyof typeof text) => new Writable({ write: (chunk, _e, done) => ((text[k] += String(chunk)), done()) });
  const streams = { stdout: sink('stdout'), stderr: sink('stderr'), env: { CI: 'true' } };
  const io = { ...streams, stdin: new PassThrough(), clock: Date.now, out: createOutput('text', false, streams) };
  const code = await report({ file: sb.file, output: 'text', color: false, ...opts }, io);
  return { code, ...text };
}

/** Wait for a driver's event; on a timeout say what the driver printed. */
async function untilEvent(run: { stderr: NodeJS.ReadableStream | null }, events: () => Record<string, unknown>[], what: string, match: (e: Record<string, unknown>) => boolean): Promise<void> {
  let stderr = '';
  run.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  await waitFor(what, () => events().some(match), 40_000).catch((e: Error) => {
    throw new Error(`${e.message}; the driver printed: ${stderr.slice(-2000)} ${JSON.stringify(events().slice(-5))}`);
  });
}

/** Each chart: whether it has a canvas, and how many of its pixels are painted, and in which colours. */
const CHART_PIXELS = `[...document.querySelectorAll('.chart')].map((el) => {
  const c = el.querySelector('canvas');
  if (!c) return { id: el.id, canvas: false, text: el.textContent };
  const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const near = (i, rgb) => data[i + 3] > 200 && Math.abs(data[i] - rgb[0]) + Math.abs(data[i + 1] - rgb[1]) + Math.abs(data[i + 2] - rgb[2]) < 60;
  let painted = 0, blue = 0, green = 0, red = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] > 0) painted++;
    if (near(i, [37, 99, 235])) blue++;
    if (near(i, [22, 163, 74])) green++;
    if (near(i, [220, 38, 38])) red++;
  }
  return { id: el.id, canvas: true, width: c.width, height: c.height, painted, blue, green, red };
})`;

const ROWS = (table: string) => `[...document.querySelectorAll('#${table} tbody tr')].map((tr) => ({ kind: tr.dataset.kind, cells: [...tr.cells].map((td) => td.textContent) }))`;

describe('deploy report in a real browser', () => {
  let sb: Sandbox;
  let load: LoadGenerator | undefined;
  let browser: Browser;
  let aborted: string;
  let rolledBack: string;

  beforeAll(async () => {
    browser = await startChromium();
    sb = await startSandbox(`    steps:
      - weight: 25
        hold: 60s
      - weight: 100
`, GATES, { prometheus: true });
    load = startLoad(`http://${sb.listen}/`, { clients: 8, ratePerSecond: 200 });

    // An operator aborts the first rollout, giving a reason written to break the page.
    const first = sb.deploy(['promote', '--to', 'v2', '-o', 'json']);
    const firstEvents = followEvents(first);
    await untilEvent(first, firstEvents, 'the first rollout at 25%', (e) => e.event === 'step');
    const abort = await sb.deploy(['abort', '--reason', HOSTILE]);
    expect(abort.exitCode, abort.stderr).toBe(0);
    expect((await first).exitCode).toBe(3);
    aborted = String(firstEvents().find((e) => e.event === 'started')!.rolloutId);

    // The second is paused and resumed by an operator, then its gate rolls it back.
    sb.setSteps(`    steps:
      - weight: 20
        hold: 8s
      - weight: 50
        hold: 60s
      - weight: 100
`);
    const second = sb.deploy(['promote', '--to', 'v2', '-o', 'json']);
    const secondEvents = followEvents(second);
    await untilEvent(second, secondEvents, 'the second rollout at 20%', (e) => e.event === 'step');
    const pause = await sb.deploy(['pause']);
    expect(pause.exitCode, pause.stderr).toBe(0);
    expect((await second).exitCode).toBe(4);
    rolledBack = String(secondEvents().find((e) => e.event === 'started')!.rolloutId);
    await new Promise((r) => setTimeout(r, 1_000));
    const resumed = sb.deploy(['resume', '-o', 'json']);
    const resumedEvents = followEvents(resumed);
    await untilEvent(resumed, resumedEvents, 'the second rollout at 50%', (e) => e.event === 'step' && e.weight === 50);
    await new Promise((r) => setTimeout(r, 2_000));
    sb.versions.v2!.setFault({ errorRate: 0.5 });
    const result = await resumed;
    expect(result.exitCode, result.stderr).toBe(3);
    sb.versions.v2!.setFault({ errorRate: 0 });
  }, 120_000);

  afterAll(async () => {
    await load?.stop();
    await browser?.close();
    await sb?.stop();
  });

  const open = async (file: string): Promise<BrowserPage> => {
    const page = await browser.open(pathToFileURL(file).href, 500);
    expect(page.problems, 'exceptions, console errors or CSP reports').toEqual([]);
    // Nothing but the page itself (and data: URLs it makes) is requested at view time.
    expect(page.requests.filter((u) => !u.startsWith('data:'))).toEqual([pathToFileURL(file).href]);
    return page;
  };

  it('the rolled-back rollout (the latest) renders: traffic and gate charts drawn, the rollback and its reason, the pause, the verified chain', async () => {
    const file = join(sb.dir, 'report.html');
    const written = await runReport(sb, { out: file });
    expect(written.code, written.stderr).toBe(0);
    expect(written.stdout).toContain(`wrote the HTML report of rollout ${rolledBack} (rolled back) to ${file}`);
    const html = readFileSync(file, 'utf8');
    expect(html).not.toMatch(/\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?\/\//i);

    const page = await open(file);
    expect(await page.evaluate('document.getElementById("phase").textContent')).toBe('ROLLED BACK');
    const charts = await page.evaluate<{ id: string; canvas: boolean; painted: number; blue: number; green: number; red: number }[]>(CHART_PIXELS);
    expect(charts.map((c) => c.id)).toEqual(['chart-traffic', 'chart-gate-0']);
    const [traffic, gate] = charts;
    expect(traffic).toMatchObject({ canvas: true });
    // The candidate's share (blue), stable's (green) and the rollback's decision line (red) are on the canvas.
    expect(traffic!.blue).toBeGreaterThan(300);
    expect(traffic!.green).toBeGreaterThan(300);
    expect(traffic!.red).toBeGreaterThan(50);
    expect(gate).toMatchObject({ canvas: true });
    expect(gate!.red).toBeGreaterThan(50); // the failed check's dot, the threshold, the rollback line
    expect(gate!.green).toBeGreaterThan(50); // the baseline and the passed check's dot

    const decisions = await page.evaluate<{ kind: string; cells: string[] }[]>(ROWS('decisions-table'));
    const rollback = decisions.find((d) => d.kind === 'rollback');
    expect(rollback?.cells[3]).toBe('rolled back: v1 100%, verified');
    expect(rollback?.cells[5]).toMatch(/^gate errors failed: v2 errors [\d.]+% vs v1 [\d.]+%/);
    expect(decisions.find((d) => d.kind === 'problem')?.cells[3]).toBe('gate errors failed');
    expect(decisions.filter((d) => d.kind === 'step').map((d) => d.cells[3])).toEqual(['step 1/3: v2 at 20%', 'step 2/3: v2 at 50%']);
    const operators = await page.evaluate<{ kind: string; cells: string[] }[]>(ROWS('operator-table'));
    expect(operators.map((d) => d.cells[3])).toEqual(['started v1 → v2', 'paused at step 1/3', 'resumed at step 1/3']);
    expect(operators[1]!.cells[4]).toMatch(/@.+operator$/);

    const chain = await page.evaluate<{ text: string; cls: string }>('({ text: document.getElementById("chain-verdict").textContent, cls: document.getElementById("chain-verdict").className })');
    expect(chain.cls).toBe('chain-ok');
    expect(chain.text).toMatch(/^Audit chain verified: \d+ records in the log, \d+ of them this rollout's\.$/);
    const summary = await page.evaluate<string>('document.getElementById("summary").textContent');
    expect(summary).toMatch(/Safe after[\d.]+m?s: 100% on v1, verified, after gate errors failed/);
    expect(summary).toMatch(/Users harmed\d+ failed requests beyond v1's error rate/);

    const png = await page.screenshot();
    expect(png.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
    expect(png.length).toBeGreaterThan(30_000);
    writeFileSync(process.env.UPDATE_SCREENSHOTS ? SCREENSHOT : join(sb.dir, 'report.png'), png);
  });

  it('the aborted rollout by --rollout: the hostile reason is shown as text and runs nothing', async () => {
    const file = join(sb.dir, 'aborted.html');
    const written = await runReport(sb, { out: file, rollout: aborted });
    expect(written.code, written.stderr).toBe(0);
    const html = readFileSync(file, 'utf8');
    expect(html.match(/<script\b/gi)).toHaveLength(3);
    expect(html).not.toContain('<img');

    const page = await open(file);
    expect(await page.evaluate('typeof window.__pwned')).toBe('undefined');
    expect(await page.evaluate('document.querySelectorAll("img").length')).toBe(0);
    expect(await page.evaluate('document.scripts.length')).toBe(3); // the data, uPlot and the page's script
    expect(await page.evaluate('document.getElementById("phase").textContent')).toBe('ABORTED');
    const decisions = await page.evaluate<{ kind: string; cells: string[] }[]>(ROWS('decisions-table'));
    expect(decisions.find((d) => d.kind === 'rollback')?.cells.slice(3)).toEqual(['aborted: v1 100%, verified', expect.stringMatching(/@/), HOSTILE]);
    const data = await page.evaluate<{ reason: string; rolloutId: string }>('JSON.parse(document.getElementById("report-data").textContent)');
    expect(data).toMatchObject({ reason: HOSTILE, rolloutId: aborted });
  });

  it('Markdown of the same rollout on stdout, for any CI', async () => {
    const md = await runReport(sb, { format: 'markdown' });
    expect(md.code, md.stderr).toBe(0);
    expect(md.stdout).toMatch(/^### patient-api: v1 → v2, rolled back\n\nTraffic now: v1 100%; ran [\dms.]+; rollout `[0-9a-f]{8}` started /);
    expect(md.stdout).toMatch(/\nWhy: gate errors failed: v2 errors [\d.]+% vs v1 [\d.]+%/);
    expect(md.stdout).toMatch(/\n\| [\d:]{8} \| paused at step 1\/3 \| [^|]+ \(operator\) \| by an operator \|\n/);
    expect(md.stdout).toMatch(/\nAudit chain verified: /);
    const hostile = await runReport(sb, { format: 'markdown', rollout: aborted });
    expect(hostile.code, hostile.stderr).toBe(0);
    expect(hostile.stdout).not.toMatch(/<(script|img)/);
  });
});
