/**
 * Typed errors. Each carries the process exit code of the CLI contract and a hint naming the
 * next thing to do; only the entry point turns them into an exit.
 */

/** Exit codes of the CLI contract (PRODUCT.md). */
export const ExitCode = {
  Done: 0,
  Unexpected: 1,
  BadInput: 2,
  RolledBack: 3,
  Paused: 4,
  Locked: 5,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Base of every error Cutover reports on purpose. */
export class CutoverError extends Error {
  /** @param hint the next command or fix, shown under the message. */
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    readonly hint?: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Bad usage or bad configuration: exit 2, nothing changed. */
export class UsageError extends CutoverError {
  constructor(message: string, hint?: string) {
    super(message, ExitCode.BadInput, hint);
  }
}

/** Another driver holds the rollout's lock: exit 5. */
export class LockedError extends CutoverError {
  constructor(message: string, hint?: string) {
    super(message, ExitCode.Locked, hint);
  }
}

/** A router, workload or state backend failed in a way that is not the user's input: exit 1. */
export class OperationError extends CutoverError {
  constructor(message: string, hint?: string) {
    super(message, ExitCode.Unexpected, hint);
  }
}
