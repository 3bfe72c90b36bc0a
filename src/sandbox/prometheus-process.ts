/**
 * A real Prometheus on loopback, for the sandbox and the integration tests: it scrapes the sample
 * services, or serves series backfilled with promtool so a test knows every sample exactly.
 * Starting again on the same data directory and port picks up where a stopped or killed server
 * left off, which is how the tests take Prometheus away in the middle of a rollout.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { execa } from 'execa';
import { stringify } from 'yaml';
import { OperationError, UsageError } from '../errors.js';
import { freePort } from './ports.js';
import { spawnServer } from './server-process.js';

/** One scrape job of the generated prometheus.yml. */
export interface ScrapeTarget {
  job: string;
  /** `host:port` endpoints serving `/metrics`; loopback only. */
  targets: string[];
  /** Labels added to every series of these targets, such as `{ version: 'v2' }`. */
  labels?: Record<string, string>;
}

/** How to start a Prometheus of one's own. */
export interface PrometheusProcessOptions {
  /** Holds prometheus.yml and the TSDB (`<dataDir>/data`); reused by a restart. */
  dataDir: string;
  /** Loopback port; a free one when absent. Pass the previous port to restart in place. */
  port?: number;
  scrapeTargets?: ScrapeTarget[];
  /** Scrape and rule evaluation interval. Default 1000 ms, the sandbox's time-to-safety setting. */
  scrapeIntervalMs?: number;
  /** Default `prometheus` from PATH. */
  binary?: string;
}

/** A running Prometheus started by `startPrometheus`. */
export interface PrometheusProcess {
  /** Base URL of its HTTP API, `http://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  /** Resolves once the process has exited, however it ended. */
  readonly exited: Promise<void>;
  /** SIGTERM and wait for the exit (SIGKILL after 10 s); also just waits after `kill()`. */
  stop(): Promise<void>;
  /** SIGKILL without waiting, to simulate a crashed Prometheus; await `exited` before restarting. */
  kill(): void;
}

const READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;
const OUTPUT_TAIL_LINES = 30;
const INSTALL_HINT = 'install it with `apt-get install -y prometheus` (Debian ships prometheus and promtool)';

/**
 * Write prometheus.yml into `dataDir`, start Prometheus on 127.0.0.1 and wait for `/-/ready`.
 * With scrape targets it also waits for their first scrape. Retention is ten years because
 * backfilled test blocks must never be dropped as too old.
 * @throws UsageError when the binary is missing; OperationError, with the tail of Prometheus'
 *   output, when it exits or is not ready within 15 s — a test must never run without it.
 */
export async function startPrometheus(options: PrometheusProcessOptions): Promise<PrometheusProcess> {
  const binary = options.binary ?? 'prometheus';
  const port = options.port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  const configFile = path.join(options.dataDir, 'prometheus.yml');
  await mkdir(path.join(options.dataDir, 'data'), { recursive: true });
  await writeFile(configFile, renderConfig(options));

  const server = spawnServer(
    binary,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${path.join(options.dataDir, 'data')}`,
      '--storage.tsdb.retention.time=3650d',
      `--web.listen-address=127.0.0.1:${port}`,
      '--web.enable-lifecycle',
    ],
    OUTPUT_TAIL_LINES,
  );

  const targets = (options.scrapeTargets ?? []).reduce((n, t) => n + t.targets.length, 0);
  const ready = await waitUntilReady(url, targets, () => server.result() !== undefined);
  if (!ready) {
    server.kill();
    await server.exited;
    const result = server.result();
    if (result?.code === 'ENOENT') throw new UsageError(`${binary} not found on PATH`, INSTALL_HINT);
    const why = result?.signal === 'SIGKILL' ? `not ready (or not scraping) within ${READY_TIMEOUT_MS / 1000} s` : 'exited during start-up';
    throw new OperationError(`Prometheus on 127.0.0.1:${port} ${why}:\n${server.output()}`, `its files are in ${options.dataDir}`);
  }

  return {
    url,
    port,
    exited: server.exited,
    stop: () => server.stop(STOP_TIMEOUT_MS),
    kill: () => server.kill(),
  };
}

/** What to backfill and with which promtool. */
export interface BackfillOptions {
  /** The same directory later given to `startPrometheus`. */
  dataDir: string;
  /** OpenMetrics text, timestamps in seconds; `# EOF` is appended when missing. */
  openmetrics: string;
  /** Default `promtool` from PATH. */
  binary?: string;
}

/**
 * Turn OpenMetrics text into TSDB blocks in `<dataDir>/data` with `promtool tsdb create-blocks-from
 * openmetrics`, so tests query exactly known samples. Run it while the server is stopped: a running
 * Prometheus only loads new blocks at its next start. Samples of one series must be in time order.
 * @throws UsageError when promtool is missing; OperationError with promtool's output when it fails.
 */
export async function backfillOpenMetrics(options: BackfillOptions): Promise<void> {
  const binary = options.binary ?? 'promtool';
  const dataPath = path.join(options.dataDir, 'data');
  await mkdir(dataPath, { recursive: true });
  const file = path.join(options.dataDir, `backfill-${Date.now()}.om`);
  // promtool rejects a file without the OpenMetrics terminator.
  const text = options.openmetrics.trimEnd();
  await writeFile(file, /(^|\n)# EOF$/.test(text) ? `${text}\n` : `${text}\n# EOF\n`);

  const result = await execa(binary, ['tsdb', 'create-blocks-from', 'openmetrics', file, dataPath], { reject: false, all: true });
  if (result.code === 'ENOENT') throw new UsageError(`${binary} not found on PATH`, INSTALL_HINT);
  if (result.failed) {
    const tail = String(result.all ?? '').split('\n').slice(-OUTPUT_TAIL_LINES).join('\n');
    throw new OperationError(`${binary} could not backfill ${file}:\n${tail}`);
  }
}

/** prometheus.yml: one static job per scrape target. */
function renderConfig(options: PrometheusProcessOptions): string {
  const interval = `${options.scrapeIntervalMs ?? 1000}ms`;
  return stringify({
    // An unset timeout defaults to 10 s, which Prometheus refuses when it exceeds the interval.
    global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
    scrape_configs: (options.scrapeTargets ?? []).map((t) => ({
      job_name: t.job,
      static_configs: [{ targets: t.targets, ...(t.labels ? { labels: t.labels } : {}) }],
    })),
  });
}

/**
 * Poll until `/-/ready` answers 200 and each of the `targets` has been scraped once (true), or
 * the process exits or the time is up (false). Prometheus 2.42 hands discovered targets to the
 * scraper only every 5 s, so "ready" alone would leave a sandbox without samples for seconds.
 */
async function waitUntilReady(url: string, targets: number, hasExited: () => boolean): Promise<boolean> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let serving = false;
  while (Date.now() < deadline && !hasExited()) {
    try {
      if (!serving) {
        const response = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1_000) });
        await response.body?.cancel();
        serving = response.ok;
      }
      if (serving && (targets === 0 || (await scrapedTargets(url)) >= targets)) return true;
    } catch {
      // Not listening yet.
    }
    await delay(50);
  }
  return false;
}

/** Active targets that have had a first scrape, whether it succeeded or not. */
async function scrapedTargets(url: string): Promise<number> {
  const response = await fetch(`${url}/api/v1/targets?state=active`, { signal: AbortSignal.timeout(1_000) });
  const body = (await response.json()) as { data?: { activeTargets?: { health?: string }[] } };
  return (body.data?.activeTargets ?? []).filter((t) => t.health !== undefined && t.health !== 'unknown').length;
}
