/** Asking before a risky action: interactive terminals get a prompt; scripts must pass --yes. */
import { createInterface } from 'node:readline/promises';
import { UsageError } from '../errors.js';
import type { Io } from './context.js';

/** Resolve true when the action may go ahead; false when the person said no. */
export async function confirm(question: string, yes: boolean | undefined, io: Io, flag = '--yes'): Promise<boolean> {
  if (yes) return true;
  if (!io.stdin.isTTY || io.env.CI) {
    throw new UsageError(`${question.replace(/\?$/, '')}: needs confirmation, and this is not an interactive terminal`, `pass ${flag} to confirm from a script`);
  }
  const rl = createInterface({ input: io.stdin, output: io.stderr });
  try {
    const answer = await rl.question(`${question} [y/N] `);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}
