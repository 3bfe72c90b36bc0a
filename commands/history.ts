/** `deploy history`: the audit log, with its hash chain verified; `--archive` moves it to a file. */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { openProject, type GlobalOptions, type Io, type Project } from '../src/cli/context.js';
import { ExitCode, UsageError } from '../src/errors.js';
import { createFileExclusive } from '../src/state/atomic.js';
import { keyId, loadPublicKey, verifySignatures } from '../src/state/signing.js';

/** Options of history. */
export interface HistoryOptions extends GlobalOptions {
  limit?: number;
  /** Write every record to this file (JSON lines), then remove them from a bounded log. */
  archive?: string;
  verify?: boolean;
  /** Ed25519 public key (PEM file) every record must be signed with. */
  publicKey?: string;
}

/**
 * Print the records and the chain's verdict, with the kept head's where the backend keeps one; a
 * broken chain, or a log that disagrees with its head, exits 1.
 */
export async function run(opts: HistoryOptions, io: Io): Promise<number> {
  const project = await openProject(opts, io.clock);
  if (opts.archive !== undefined) return archive(project, resolve(opts.archive), io);
  const publicKey = opts.publicKey !== undefined ? loadPublicKey(resolve(opts.publicKey)) : undefined;
  const records = await project.store.audit.read().catch(() => []);
  const chain = await project.store.audit.verify();
  const signatures = publicKey && chain.ok ? verifySignatures(records, publicKey) : undefined;
  const verdict: typeof chain = signatures && !signatures.ok
    ? { ok: false, records: records.length, brokenAt: signatures.seq, reason: signatures.reason, ...(chain.head ? { head: chain.head } : {}) }
    : chain;
  const head = verdict.head;
  const proves = !verdict.ok
    ? undefined
    : signatures
      ? `every record is signed by key ${keyId(publicKey!)}: the log was not changed by anyone without its private key`
      : 'the hash chain shows no record was changed by someone who could not rewrite the log; anyone able to write it could have rewritten it and every hash after it. Sign the records (audit.signingKey) and check with --public-key to prove more';
  const shown = opts.limit ? records.slice(-opts.limit) : records;
  const c = io.out.color;
  if (io.out.format === 'json') {
    for (const r of shown) io.out.result({ event: 'audit', ...r }, '');
    io.out.result({ event: 'verify', ...verdict, signed: signatures?.ok === true, ...(opts.verify && proves ? { proves } : {}) }, '');
  } else {
    for (const r of shown) {
      const detail = r.detail ? ` ${JSON.stringify(r.detail)}` : '';
      io.stdout.write(`${String(r.seq).padStart(5)}  ${r.at}  ${r.actor}  ${c.bold(r.action)}${r.rolloutId ? c.dim(` [${r.rolloutId}]`) : ''}${detail}\n`);
    }
    const failed = signatures && !signatures.ok ? 'signature check failed' : !verdict.ok && head && !head.ok && verdict.reason === head.reason ? 'the log disagrees with its kept head' : 'chain broken';
    io.stdout.write(
      verdict.ok
        ? c.green(`chain verified: ${verdict.records} records${signatures ? ', every one signed' : ''}\n`)
        : c.red(`${failed} at record ${verdict.brokenAt}: ${verdict.reason}\n`),
    );
    if (head?.ok && head.compared > 0) {
      io.stdout.write(c.green(head.compared === 1
        ? `the head kept in ${head.where} is on the chain: record ${head.seq}\n`
        : `all ${head.compared} heads kept in ${head.where} are on the chain, the latest at record ${head.seq}\n`));
    }
    for (const note of head?.notes ?? []) io.stdout.write(c.yellow(`${note}\n`));
    if (verdict.ok && (opts.verify || signatures)) io.stdout.write(`${proves}\n${head?.proves ? `${head.proves}\n` : ''}`);
  }
  return verdict.ok ? ExitCode.Done : ExitCode.Unexpected;
}

/**
 * Move the audit log of a bounded backend to `file`. The file is written completely and flushed
 * before the backend removes anything, and never replaces an existing file: it may be the
 * previous archive, the only copy of those records.
 */
async function archive(project: Project, file: string, io: Io): Promise<number> {
  const audit = project.store.audit;
  if (!audit.archive) {
    throw new UsageError(
      `the audit log in ${project.store.location} has no size bound, so there is nothing to archive`,
      'its records stay where they are; copy them (`deploy history -o json`) if you want a copy elsewhere',
    );
  }
  const exists = () => new UsageError(`${file} already exists; the archive never overwrites a file`, 'name a new file, e.g. audit-$(date +%Y%m%d).jsonl');
  if (existsSync(file)) throw exists();
  const result = await audit.archive(async (records) => {
    if (!(await createFileExclusive(file, records.map((r) => `${JSON.stringify(r)}\n`).join('')))) throw exists();
  });
  const text = result.records === 0
    ? 'the audit log is empty: nothing to archive\n'
    : `archived ${result.records} records (through record ${result.lastSeq}) to ${file}; the log in the cluster continues from hash ${result.lastHash.slice(0, 12)}…\n`;
  io.out.result({ event: 'archived', file, ...result }, text);
  return ExitCode.Done;
}
