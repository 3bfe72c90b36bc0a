/**
 * Synthetic patient journeys: a short list of HTTP steps (log in → view records → check
 * medications …) or a command of the user's, run against the candidate and against stable at
 * every `interval`. Each run is a pass or a fail, and the runs are judged with the error-rate
 * ladder's statistics (`ladder.ts`): a candidate whose journeys fail more than stable's is rolled
 * back on evidence, and a step passes once its runs rule out the gate's margin.
 *
 * Each version is reached where only the probe goes: at its own endpoints from deploy.yaml, or
 * at `url` with `{{version}}` filled in — never through the weighted route, where a run would
 * land on whichever version the split picked.
 */
import type { GateConfig } from '../config/schema.js';
import { emptyMemory, type LadderMemory } from './ladder.js';

/** A journey gate as validated. */
export type JourneyGate = Extract<GateConfig, { type: 'journey' }>;

/** One step of one run. */
export interface JourneyStepResult {
  name: string;
  ok: boolean;
  ms: number;
  status?: number;
  error?: string;
}

/** One run of a journey against one version. */
export interface JourneyRun {
  version: string;
  ok: boolean;
  ms: number;
  steps: JourneyStepResult[];
  /** The first step that failed, and why. */
  failure?: string;
}

/** What a journey gate carries between checks: when it last ran, and the ladder over its runs (which counts them per step). */
export interface JourneyMemory {
  /** When the last runs started (epoch ms). */
  lastRunAt?: number;
  ladder: LadderMemory;
}

/** Default time one step of a journey (or the whole command) may take. */
export const DEFAULT_JOURNEY_TIMEOUT_MS = 10_000;
/** Default allowed rise of the journey's failure rate before 100%: 20 points (≈ 25 clean runs rule it out). */
export const DEFAULT_JOURNEY_MAX_INCREASE = 0.2;

/** A fresh memory. */
export function emptyJourneyMemory(): JourneyMemory {
  return { ladder: emptyMemory() };
}

/** Where a version is reached: `url` with the version filled in, or its first endpoint. */
export function journeyBase(gate: JourneyGate, version: string, endpoints: Record<string, string[] | undefined>): string {
  if (gate.url) return gate.url.replaceAll('{{version}}', encodeURIComponent(version)).replace(/\/+$/, '');
  const endpoint = endpoints[version]?.[0];
  if (!endpoint) throw new Error(`version ${version} has no endpoints and gate ${gate.name} has no url`);
  return `http://${endpoint}`;
}

/** Run the journey once against `version` at `base`. */
export async function runJourney(gate: JourneyGate, version: string, base: string): Promise<JourneyRun> {
  const timeoutMs = gate.timeout ?? DEFAULT_JOURNEY_TIMEOUT_MS;
  const started = performance.now();
  if (gate.command) {
    const { execa } = await import('execa');
    const [file, ...args] = gate.command;
    const r = await execa(file!, args, { reject: false, timeout: timeoutMs, env: { CUTOVER_VERSION: version, CUTOVER_BASE_URL: base }, stdin: 'ignore' });
    const ms = Math.round(performance.now() - started);
    const ok = r.exitCode === 0;
    const why = r.timedOut ? `timed out after ${timeoutMs}ms` : r.exitCode === undefined ? (r.shortMessage ?? 'did not run') : `exit ${r.exitCode}`;
    const last = `${r.stderr ?? ''}`.trim().split('\n').at(-1)?.slice(0, 200);
    return { version, ok, ms, steps: [{ name: file!, ok, ms, ...(ok ? {} : { error: `${why}${last ? `: ${last}` : ''}` }) }], ...(ok ? {} : { failure: `${file} ${why}${last ? `: ${last}` : ''}` }) };
  }
  const steps: JourneyStepResult[] = [];
  // A cookie set by one step (a login) goes with the next ones, as a browser's would.
  const cookies = new Map<string, string>();
  for (const step of gate.steps ?? []) {
    const t0 = performance.now();
    const name = step.name ?? `${step.method ?? 'GET'} ${step.path}`;
    try {
      const headers: Record<string, string> = { ...gate.headers, ...step.headers };
      if (cookies.size) headers.cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
      const res = await fetch(base + step.path, { method: step.method ?? 'GET', headers, ...(step.body !== undefined ? { body: step.body } : {}), signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
      const text = await res.text();
      for (const c of res.headers.getSetCookie()) {
        const [pair] = c.split(';');
        const eq = pair!.indexOf('=');
        if (eq > 0) cookies.set(pair!.slice(0, eq).trim(), pair!.slice(eq + 1).trim());
      }
      const expected = step.expect ?? [200];
      const statusOk = (Array.isArray(expected) ? expected : [expected]).includes(res.status);
      const bodyOk = step.contains === undefined || text.includes(step.contains);
      const ms = Math.round(performance.now() - t0);
      const error = !statusOk ? `HTTP ${res.status}, expected ${[expected].flat().join(' or ')}` : !bodyOk ? `the answer lacks ${JSON.stringify(step.contains)}` : undefined;
      steps.push({ name, ok: !error, ms, status: res.status, ...(error ? { error } : {}) });
      if (error) break;
    } catch (e) {
      const err = e as Error;
      const error = err.name === 'TimeoutError' ? `no answer within ${timeoutMs}ms` : ((err.cause as Error | undefined)?.message ?? err.message);
      steps.push({ name, ok: false, ms: Math.round(performance.now() - t0), error });
      break;
    }
  }
  const failed = steps.find((s) => !s.ok);
  return { version, ok: !failed, ms: Math.round(performance.now() - started), steps, ...(failed ? { failure: `step "${failed.name}": ${failed.error}` } : {}) };
}
