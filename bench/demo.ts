/**
 * Time to safety in the sandbox: runs `deploy demo` (real nginx and Prometheus with 1 s scrapes)
 * `BENCH_DEMO_RUNS` times (default 3) and reports, for the bad release, the time from the first
 * failing request to 100% on stable (verified) and the failed requests users got meanwhile.
 */
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';

const runs = Number(process.env.BENCH_DEMO_RUNS ?? 3);
const deploy = join(resolve(import.meta.dirname, '../..'), 'bin', 'deploy');
const rows: { timeToSafetyMs: number; badRequests: number; excessFailures: number; requests: number }[] = [];

for (let i = 0; i < runs; i++) {
  const r = spawnSync(deploy, ['demo', '--hold', '2s', '-o', 'json'], { encoding: 'utf8', env: { ...process.env, CI: 'true' }, timeout: 600_000 });
  const summary = r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((e) => e.event === 'summary');
  if (r.status !== 0 || !summary || typeof summary.timeToSafetyMs !== 'number') {
    console.error(`demo run ${i + 1} failed (exit ${r.status}):\n${r.stderr.slice(-2000)}`);
    process.exitCode = 1;
    continue;
  }
  rows.push({ timeToSafetyMs: summary.timeToSafetyMs, badRequests: summary.badRequests as number, excessFailures: summary.excessFailures as number, requests: summary.requests as number });
}

console.log(`\ntime to safety in the sandbox demo (500 req/s through nginx, 1 s scrapes, 1 s checks, the 0.1-point rule, fault: 30% errors at 25%)\n`);
console.log(`${'run'.padEnd(6)} ${'time to safety'.padStart(15)} ${'bad requests'.padStart(13)} ${'excess (gate)'.padStart(14)}  target`);
rows.forEach((r, i) => console.log(`${String(i + 1).padEnd(6)} ${(r.timeToSafetyMs / 1000).toFixed(2).padStart(13)} s ${String(r.badRequests).padStart(13)} ${String(r.excessFailures).padStart(14)}  < 10 s ${r.timeToSafetyMs < 10_000 ? 'met' : 'MISSED'}`));
if (rows.length) {
  const worst = Math.max(...rows.map((r) => r.timeToSafetyMs));
  console.log(`worst of ${rows.length}: ${(worst / 1000).toFixed(2)} s`);
}
