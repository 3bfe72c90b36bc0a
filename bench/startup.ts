/**
 * `npm run bench`: figures the product is held to, measured on this machine. Not a test: it
 * prints a table and asserts nothing. For now: cold start of `deploy --help` and of
 * `deploy status` on local state (median of 15 runs), beside `node -e 0`, as ratios to it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const root = resolve(import.meta.dirname, '../..');
const deploy = join(root, 'bin', 'deploy');

const warmed = new Set<string>();

/** Milliseconds of one run of a command (the first call also runs it once to warm the file and compile caches). */
function timeOnce(cmd: string, args: string[]): number[] {
  const opts = { env: { ...process.env, CI: 'true' }, stdio: 'ignore' as const };
  const key = `${cmd} ${args.join(' ')}`;
  if (!warmed.has(key)) {
    spawnSync(cmd, args, opts);
    warmed.add(key);
  }
  const t0 = performance.now();
  const r = spawnSync(cmd, args, opts);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}`);
  return [performance.now() - t0];
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

// Interleaved, so a machine busy for a moment weighs on every row alike.
const commands: [string, string, string[], number | undefined][] = [
  ['node -e 0', process.execPath, ['-e', '0'], undefined],
  ['deploy --help', deploy, ['--help'], 2],
  ['deploy status (local state)', deploy, ['status', '-f', file], 3],
];
const runs = commands.map(() => [] as number[]);
for (let round = 0; round < RUNS; round++) commands.forEach(([, cmd, args], i) => runs[i]!.push(...timeOnce(cmd, args)));

console.log(`cold start, median of ${RUNS} interleaved runs (node ${process.version}, ${process.platform}/${process.arch})\n`);
console.log(`${'command'.padEnd(30)} ${'median'.padStart(8)} ${'min'.padStart(8)} ${'max'.padStart(8)}  ${'× node'.padStart(7)}  target`);
const base = median(runs[0]!);
commands.forEach(([name, , , target], i) => {
  const xs = runs[i]!;
  const m = median(xs);
  const ratio = m / base;
  const verdict = target === undefined ? '' : `≤ ${target}× node -e 0 ${ratio <= target ? 'met' : 'MISSED'}`;
  console.log(`${name.padEnd(30)} ${m.toFixed(1).padStart(6)}ms ${Math.min(...xs).toFixed(1).padStart(6)}ms ${Math.max(...xs).toFixed(1).padStart(6)}ms  ${ratio.toFixed(2).padStart(6)}×  ${verdict}`);
});
