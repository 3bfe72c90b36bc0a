/**
 * What most commands open first: the config, the state store and, when they move traffic, the
 * router. Kept here so every command (and the console) opens them the same way.
 */
import { isAbsolute, resolve } from 'node:path';
import { loadConfig, type LoadedConfig } from '../config/load.js';
import { validateState, type RolloutState } from '../engine/state.js';
import { LocalStateStore } from '../state/local.js';
import type { StateStore } from '../state/store.js';
import type { Output, Streams } from '../ui/output.js';

/** Options every command takes. */
export interface GlobalOptions {
  file: string;
  output: 'text' | 'json';
  color: boolean;
}

/** The streams, clock and output of one command run (injected so tests drive commands in-process). */
export interface Io extends Streams {
  out: Output;
  clock: () => number;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
}

/** An opened project: config and state. */
export interface Project extends LoadedConfig {
  store: StateStore<RolloutState>;
  leaseMs: number;
}

/** Default driver lease. */
export const DEFAULT_LEASE_MS = 30_000;

/** Load the config and open its state store (nothing is written). */
export function openProject(opts: Pick<GlobalOptions, 'file'>, clock: () => number = Date.now): Project {
  const loaded = loadConfig(opts.file);
  const state = loaded.config.state;
  const dir = state?.dir ?? '.deploy';
  const store = new LocalStateStore<RolloutState>(isAbsolute(dir) ? dir : resolve(loaded.dir, dir), { clock, validate: validateState });
  return { ...loaded, store, leaseMs: state?.lease ?? DEFAULT_LEASE_MS };
}
