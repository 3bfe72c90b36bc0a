/**
 * Text shapes of the console: bars, sparklines, numbers and widths. Pure wording and geometry —
 * which bar, which value and which verdict comes from the model.
 */
import { formatDuration } from '../../config/units.js';
import { compactCount } from '../numbers.js';
import type { GateLine, Share } from './model.js';

/** Width of the left label column ("traffic ", "gates   "). */
export const LABEL_WIDTH = 9;

const SPARKS = '▁▂▃▄▅▆▇█';

/** A sparkline of `values` in at most `width` cells, scaled between their minimum and maximum. */
export function sparkline(values: number[], width: number): string {
  const recent = values.slice(-Math.max(0, width));
  if (recent.length === 0) return '';
  const lo = Math.min(...recent);
  const hi = Math.max(...recent);
  return recent.map((v) => SPARKS[hi === lo ? 3 : Math.round(((v - lo) / (hi - lo)) * (SPARKS.length - 1))]).join('');
}

/**
 * Cells of a split bar, one segment per share, summing to `width`. A share above zero always gets
 * at least one cell: 1% of traffic on the candidate must be visible.
 */
export function splitCells(shares: Share[], width: number): number[] {
  const cells = shares.map((s) => (s.percent > 0 ? Math.max(1, Math.round((s.percent / 100) * width)) : 0));
  let over = cells.reduce((a, b) => a + b, 0) - width;
  while (over !== 0 && cells.length) {
    // Take from (or give to) the widest segment, which the rounding affects least.
    const widest = cells.indexOf(Math.max(...cells));
    cells[widest]! -= Math.sign(over);
    over -= Math.sign(over);
  }
  return cells;
}

/** A progress bar: `fraction` of `width` filled. */
export function progressCells(fraction: number, width: number): { filled: number; empty: number } {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return { filled, empty: width - filled };
}

/** `95%`, `0.5%`, `33.33%`. */
export function percent(p: number): string {
  return `${+p.toFixed(2)}%`;
}

export { compactCount, requestCount } from '../numbers.js';

/** A gate's value in its unit: error rates in %, P99 in ms, a query's plain number. */
export function gateValue(type: GateLine['type'], v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '—';
  if (type === 'errorRate' || type === 'journey') return `${+v.toFixed(v < 1 ? 3 : 2)}%`;
  if (type === 'latencyP99') return v >= 1000 ? `${+(v / 1000).toFixed(2)}s` : v < 100 ? `${+v.toPrecision(3)}ms` : `${Math.round(v)}ms`;
  return String(+v.toPrecision(4));
}

/** Gates whose value passes below its threshold: error rates, latencies, failed journeys. */
const LOWER_IS_BETTER: readonly GateLine['type'][] = ['errorRate', 'latencyP99', 'journey'];

/**
 * `0.21% < 0.62%`: the value, how it compares, the threshold. The comparison is drawn only when
 * it agrees with a decided verdict: beside "inconclusive", "0% < 5%" would read as a pass, and a
 * gate the ladder failed on the evidence of the whole rollout may still sit below this step's
 * line — those get a neutral "vs".
 */
export function valueVsThreshold(g: GateLine): string {
  // A P99 from a histogram is said by its bucket (`≤5ms`, `>10s`) and compared by that bound.
  const compared = g.bucket ? (g.bucket.upper ?? g.bucket.lower) : g.value;
  const value = g.bucket ? `${g.bucket.upper !== undefined ? '≤' : '>'}${gateValue(g.type, compared)}` : gateValue(g.type, g.value);
  if (g.threshold === undefined) return value;
  let rel = compared === undefined ? 'vs' : compared < g.threshold ? '<' : compared > g.threshold ? '>' : '=';
  const decided = g.verdict === 'passed' || g.verdict === 'failed';
  const agrees = !LOWER_IS_BETTER.includes(g.type) || (g.verdict === 'passed' ? rel !== '>' : rel === '>');
  if (!decided || !agrees) rel = 'vs';
  return `${value} ${rel} ${gateValue(g.type, g.threshold)}`;
}

/** `n 5.2k/4.1k`: requests seen against requests needed, while that is still the question. */
export function sampleText(g: GateLine): string {
  if (!g.samples) return '';
  // A decided gate needs no more requests: "n 437/1.6k" beside "failed" would read as unfinished.
  const open = g.verdict === 'inconclusive' && g.samples.needed !== undefined;
  return `n ${compactCount(g.samples.canary)}${open ? `/${compactCount(g.samples.needed!)}` : ''}`;
}

/** `0.4 s`, `6.2 s`, `1m5s`: a time to safety. */
export function seconds(ms: number): string {
  return ms < 60_000 ? `${+(ms / 1000).toFixed(1)} s` : formatDuration(Math.round(ms / 1000) * 1000);
}

/** `2m10s`, rounded to the second above a minute so the countdown does not flicker. */
export function timeLeft(ms: number): string {
  return formatDuration(ms >= 60_000 ? Math.round(ms / 1000) * 1000 : ms < 1000 ? ms : Math.ceil(ms / 1000) * 1000);
}

/** Pad or cut `text` to exactly `width` cells. */
export function fit(text: string, width: number): string {
  return text.length > width ? `${text.slice(0, Math.max(0, width - 1))}…` : text.padEnd(width);
}
