/** `deploy history`: the audit log, with its hash chain verified. */
import { openProject, type GlobalOptions, type Io } from '../src/cli/context.js';
import { ExitCode } from '../src/errors.js';

/** Options of history. */
export interface HistoryOptions extends GlobalOptions {
  limit?: number;
}

/** Print the records and the chain's verdict; a broken chain exits 1. */
export async function run(opts: HistoryOptions, io: Io): Promise<number> {
  const project = openProject(opts, io.clock);
  const records = await project.store.audit.read().catch(() => []);
  const verdict = await project.store.audit.verify();
  const shown = opts.limit ? records.slice(-opts.limit) : records;
  const c = io.out.color;
  if (io.out.format === 'json') {
    for (const r of shown) io.out.result({ event: 'audit', ...r }, '');
    io.out.result({ event: 'verify', ...verdict }, '');
  } else {
    for (const r of shown) {
      const detail = r.detail ? ` ${JSON.stringify(r.detail)}` : '';
      io.stdout.write(`${String(r.seq).padStart(5)}  ${r.at}  ${r.actor}  ${c.bold(r.action)}${r.rolloutId ? c.dim(` [${r.rolloutId}]`) : ''}${detail}\n`);
    }
    io.stdout.write(
      verdict.ok
        ? c.green(`chain verified: ${verdict.records} records\n`)
        : c.red(`chain broken at record ${verdict.brokenAt}: ${verdict.reason}\n`),
    );
  }
  return verdict.ok ? ExitCode.Done : ExitCode.Unexpected;
}
