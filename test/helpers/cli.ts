/** Run the CLI in-process with captured streams: fast tests of parsing, errors and exit codes. */
import { PassThrough, Writable } from 'node:stream';
import { main } from '../../src/cli/main.js';

/** What a run printed and returned. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

function sink(): Writable & { text: string; isTTY?: boolean } {
  const w = new Writable({
    write(chunk, _enc, done) {
      w.text += String(chunk);
      done();
    },
  }) as Writable & { text: string };
  w.text = '';
  return w;
}

/** `deploy ARGS` in this process, as a script would run it (CI set, no TTY). */
export async function runCli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  const stdout = sink();
  const stderr = sink();
  const code = await main(args, { stdout, stderr, env: { CI: 'true', ...env } }, new PassThrough());
  return { code, stdout: stdout.text, stderr: stderr.text };
}
