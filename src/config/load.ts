/**
 * Loads deploy.yaml. A file the schema accepted before, unchanged and read by the same build, is
 * taken from the cache of validated configs (cache.ts) without loading the YAML parser or the
 * schema; any other is parsed and validated (parse.ts), and kept when valid.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { cachedConfig } from './cache.js';
import type { Config } from './schema.js';

/** A loaded config with where it came from. */
export interface LoadedConfig {
  config: Config;
  /** Absolute path of the file. */
  path: string;
  /** Folder relative paths in the config are resolved against. */
  dir: string;
}

/** Read and validate a config file; throws UsageError listing every problem. */
export async function loadConfig(file: string): Promise<LoadedConfig> {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(
      code === 'ENOENT' ? `${file}: no such file` : `${file}: cannot be read (${code ?? String(e)})`,
      code === 'ENOENT' ? 'run `deploy init` to write one, or pass its path with -f/--file' : undefined,
    );
  }
  const cached = cachedConfig(text);
  let config = cached.config;
  if (!config) {
    const { parseConfig } = await import('./parse.js');
    config = parseConfig(text, file);
    cached.keep(config);
  }
  return { config, path, dir: dirname(path) };
}
