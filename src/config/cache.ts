/**
 * Validated configs kept between runs, so a command started again on the same deploy.yaml skips
 * the YAML parser and the schema (most of a short command's start-up).
 *
 * Sound because validation depends on the file's text and the build alone: no environment
 * variable, no other file. An entry is keyed by the build id the bundle carries and a digest of
 * the text, so an edited file or a new build validates afresh. Without a build id (the compiled
 * modules run directly after a bare `tsc`, or the sources under test) nothing is kept or read.
 *
 * Entries live in the user's cache (~/.cache/cutover/configs/<build id>/, or under
 * XDG_CACHE_HOME), files readable by the user only; a new build removes the others' folders. A
 * cache that cannot be read or written is no cache: the file is validated as if it were new.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Config } from './schema.js';

/** Above this many entries for one build, its folder is emptied (tests write thousands of one-off files). */
const MAX_ENTRIES = 2_000;

let buildId: string | null | undefined;

/** The bundle's build id, written beside its chunks by scripts/bundle.mjs; null when not bundled. */
function ownBuildId(): string | null {
  if (buildId === undefined) {
    try {
      buildId = readFileSync(join(import.meta.dirname, 'build-id'), 'utf8').trim() || null;
    } catch {
      buildId = null;
    }
  }
  return buildId;
}

function entryPath(text: string): string | undefined {
  const id = ownBuildId();
  if (!id) return undefined;
  const root = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'cutover', 'configs');
  return join(root, id, `${createHash('sha256').update(text).digest('hex')}.json`);
}

/** The cache's entry for `text`: the config it validated to before by this build, and how to keep it. */
export function cachedConfig(text: string): { config: Config | undefined; keep(config: Config): void } {
  const path = entryPath(text);
  return { config: path ? read(path) : undefined, keep: (config) => path && keep(path, config) };
}

function read(path: string): Config | undefined {
  try {
    const entry = JSON.parse(readFileSync(path, 'utf8')) as { config?: unknown };
    return entry.config && typeof entry.config === 'object' ? (entry.config as Config) : undefined;
  } catch {
    return undefined;
  }
}

function keep(path: string, config: Config): void {
  const dir = dirname(path);
  try {
    let entries: string[] | undefined;
    try {
      entries = readdirSync(dir);
    } catch {
      // A build's first entry: its folder is new, and the folders of earlier builds go.
      const root = dirname(dir);
      for (const old of safeList(root)) rmSync(join(root, old), { recursive: true, force: true });
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    }
    if (entries && entries.length >= MAX_ENTRIES) for (const name of entries) rmSync(join(dir, name), { force: true });
    const partial = `${path}.${process.pid}.tmp`;
    writeFileSync(partial, JSON.stringify({ config }), { mode: 0o600 });
    renameSync(partial, path);
  } catch {
    // An unwritable cache costs the next run its validation, nothing else.
  }
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
