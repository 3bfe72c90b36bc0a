/**
 * Crash-safe file writes for the local state backend. A killed driver must leave every file either
 * as it was or as it was meant to be, never half written: state and lock files are written to a
 * temporary file in the same directory, flushed, and renamed (or hard-linked) into place, and the
 * directory is flushed so the new name itself survives a power loss.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Mode of files the backend creates: state may name services and hosts, so owner-only. */
const FILE_MODE = 0o600;

/** Mode of the state directory: only its owner may read the state or take the lock. */
const DIR_MODE = 0o700;

/** Error codes of `link` on filesystems that have no hard links. */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/** The `code` of a Node system error, if it is one. */
export function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error
    ? String((error as { code: unknown }).code)
    : undefined;
}

/**
 * A temporary path next to `path`. Same directory, because rename and link are only atomic within
 * one filesystem; dot-prefixed, so directory listings (operator requests) can skip it.
 */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/** Create the state directory (and its parents) if missing, owner-only. */
export async function ensureDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: DIR_MODE });
}

/**
 * Flush a directory, making renames, links and unlinks in it durable. Filesystems that cannot
 * fsync a directory (some network mounts) report EINVAL or EISDIR; there is nothing more to do there.
 */
export async function fsyncDir(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (error) {
    if (!['EINVAL', 'EISDIR', 'EPERM', 'ENOTSUP'].includes(errorCode(error) ?? '')) throw error;
  } finally {
    await handle?.close();
  }
}

/** Create `path` with `flag`, write all of `data` and flush it to disk before closing. */
async function writeDurable(path: string, data: string | Uint8Array, flag: string, mode = FILE_MODE): Promise<void> {
  const handle = await open(path, flag, mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Replace `path` with `data` atomically: readers see the old content or the new, never a mix,
 * and after a crash the file holds one of the two.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode?: number): Promise<void> {
  const temp = tempPathFor(path);
  try {
    await writeDurable(temp, data, 'wx', mode);
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await fsyncDir(dirname(path));
}

/**
 * Create `path` holding `data` only if it does not exist yet; false when it already exists.
 *
 * The content is written to a temporary file first and hard-linked into place, so the file
 * appears complete or not at all: a plain exclusive create (`wx`) would let a concurrent reader
 * see it empty for a moment and mistake a lock being taken for a corrupt one. Filesystems
 * without hard links fall back to the exclusive create.
 */
export async function createFileExclusive(path: string, data: string | Uint8Array): Promise<boolean> {
  const temp = tempPathFor(path);
  try {
    await writeDurable(temp, data, 'wx');
    await link(temp, path);
  } catch (error) {
    const code = errorCode(error);
    if (code === 'EEXIST') return false;
    if (!NO_HARD_LINKS.has(code ?? '')) throw error;
    try {
      await writeDurable(path, data, 'wx');
    } catch (fallbackError) {
      if (errorCode(fallbackError) === 'EEXIST') return false;
      throw fallbackError;
    }
  } finally {
    await unlink(temp).catch(() => undefined);
  }
  await fsyncDir(dirname(path));
  return true;
}
