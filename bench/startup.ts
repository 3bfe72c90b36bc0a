/**
 * `npm run bench`: figures the product is held to, measured on this machine. Not a test: it
 * prints a table and asserts nothing. For now: cold start of `deploy --help` and of
 * `deploy status` on local state (median of 15 runs), beside `node -e 0`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const root = resolve(import.meta.dirname, '../..');
const deploy = join(root, 'bin', 'deploy');

/** Milliseconds of each of `RUNS` runs of a command (after one warm-up run for the file cache). */
function time(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): number[] {
  const opts = { env: { ...process.env, CI: 'true', ...env }, stdio: 'ignore' as const };
  spawnSync(cmd, args, opts);
  return Array.from({ length: RUNS }, () => {
    const t0 = performance.now();
    const r = spawnSync(cmd, args, opts);
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}`);
    return performance.now() - t0;
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

// A config on the none router with a finished rollout, so status reads real local state.
const dir = mkdtempSync(join(tmpdir(), 'cutover-bench-'));
const file = join(dir, 'deploy.yaml');
writeFileSync(
  file,
  `service: patient-api\nstable: v1\nversions:\n  v1: { endpoints: ["127.0.0.1:9001"] }\n  v2: { endpoints: ["127.0.0.1:9002"] }\nrouter:\n  type: none\nstrategy:\n  canary:\n    steps:\n      - weight: 50\n        hold: 10ms\n      - weight: 100\n`,
);
spawnSync(deploy, ['promote', '--to', 'v2', '-f', file], { stdio: 'ignore', env: { ...process.env, CI: 'true' } });

const rows: [string, number[], number | undefined][] = [
  ['node -e 0', time(process.execPath, ['-e', '0']), undefined],
  ['deploy --help', time(deploy, ['--help']), 150],
  ['deploy status (local state)', time(deploy, ['status', '-f', file]), 300],
];

console.log(`cold start, median of ${RUNS} runs (node ${process.version}, ${process.platform}/${process.arch})\n`);
console.log(`${'command'.padEnd(30)} ${'median'.padStart(8)} ${'min'.padStart(8)} ${'max'.padStart(8)}  target`);
for (const [name, xs, target] of rows) {
  const m = median(xs);
  const verdict = target === undefined ? '' : `< ${target} ms ${m < target ? 'met' : 'MISSED'}`;
  console.log(`${name.padEnd(30)} ${m.toFixed(1).padStart(6)}ms ${Math.min(...xs).toFixed(1).padStart(6)}ms ${Math.max(...xs).toFixed(1).padStart(6)}ms  ${verdict}`);
}
