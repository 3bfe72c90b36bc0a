/**
 * A server process a sandbox or test owns (Prometheus, moto): started without detaching, so
 * execa's cleanup kills it if the owner dies first; the tail of its output kept for error
 * messages; stopped with SIGTERM and, past a deadline, SIGKILL.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { execa, type Result } from 'execa';

/** A running server process. */
export interface ServerProcess {
  /** Resolves once the process has exited, however it ended. */
  readonly exited: Promise<void>;
  /** How it ended, once it has. */
  result(): Result | undefined;
  /** The last lines it printed. */
  output(): string;
  /** SIGTERM and wait; SIGKILL after `timeoutMs`. */
  stop(timeoutMs: number): Promise<void>;
  /** SIGKILL without waiting. */
  kill(): void;
}

/** Start `binary args`, keeping the last `tailLines` lines of its output. */
export function spawnServer(binary: string, args: string[], tailLines = 30): ServerProcess {
  const subprocess = execa(binary, args, { reject: false, buffer: false, stdin: 'ignore' });
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    lines.push(...String(chunk).split('\n').filter(Boolean));
    lines.splice(0, Math.max(0, lines.length - tailLines));
  };
  subprocess.stdout?.on('data', keep);
  subprocess.stderr?.on('data', keep);
  let result: Result | undefined;
  const exited = subprocess.then((r) => {
    result = r;
  });
  return {
    exited,
    result: () => result,
    output: () => lines.join('\n'),
    async stop(timeoutMs) {
      if (result === undefined) subprocess.kill('SIGTERM');
      const forced = await Promise.race([exited.then(() => false), delay(timeoutMs, true, { ref: false })]);
      if (forced) {
        subprocess.kill('SIGKILL');
        await exited;
      }
    },
    kill: () => subprocess.kill('SIGKILL'),
  };
}
