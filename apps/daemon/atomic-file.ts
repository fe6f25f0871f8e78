/**
 * Safe updates of a small file that several processes share (the accounts file: the daemon
 * and `citizen user add` may both write it): a replace that is all-or-nothing even on a power
 * cut, and a lock file so read-modify-write cycles from two processes do not overwrite each
 * other. The lock is advisory and best effort: a lock left by a crashed process is taken over
 * once its process is gone (or after LOCK_STALE_MS).
 */
import { randomUUID } from 'node:crypto';
import { open, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { AppError } from '../errors.ts';

/** How long {@link withFileLock} waits for another holder before giving up. */
export const LOCK_WAIT_MS = 10_000;
/** A lock file older than this is left over from a crash (no holder keeps it nearly so long). */
export const LOCK_STALE_MS = 30_000;

/**
 * Replace `path` with `text` atomically: write a temp file with `mode` (whatever the umask),
 * fsync it, rename it over `path`, fsync the directory.
 */
export async function writeFileAtomically(path: string, text: string, mode: number): Promise<void> {
  const tmp = `${path}.${randomUUID()}.tmp`;
  const handle = await open(tmp, 'wx', mode);
  try {
    try {
      await handle.writeFile(text);
      await handle.chmod(mode);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (error) {
    // A full disk stops the write half-way: the half-written temp file must not stay behind.
    await rm(tmp, { force: true });
    throw error;
  }
  try {
    const dir = await open(dirname(path), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch {
    // Some file systems cannot fsync a directory; the rename itself is still atomic.
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Whether a lock file is left over: too old, or its process no longer exists. */
async function isStaleLock(lock: string): Promise<boolean> {
  try {
    const [info, text] = await Promise.all([stat(lock), readFile(lock, 'utf8')]);
    if (Date.now() - info.mtimeMs > LOCK_STALE_MS) return true;
    const pid = Number.parseInt(text, 10);
    if (!Number.isInteger(pid) || pid <= 0) return false; // its holder is writing its pid right now
    try {
      process.kill(pid, 0);
      return false;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === 'ESRCH';
    }
  } catch {
    return false; // gone already: just try again
  }
}

/**
 * Run `fn` while holding `${path}.lock` (created with O_EXCL, holding this process's pid).
 * Waits (polling) up to LOCK_WAIT_MS for another holder, then throws FILE_LOCKED (503).
 */
export async function withFileLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const lock = `${path}.lock`;
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const handle = await open(lock, 'wx', 0o600);
      try {
        await handle.writeFile(`${process.pid}\n`);
      } catch (error) {
        // A lock without its pid (a full disk) would read as "being taken" to everyone for LOCK_STALE_MS.
        await handle.close();
        await rm(lock, { force: true });
        throw error;
      }
      await handle.close();
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      if (await isStaleLock(lock)) {
        await rm(lock, { force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new AppError('FILE_LOCKED', `${lock} has been held for over ${LOCK_WAIT_MS / 1000} s; if no citizen process is running, remove it`, 503);
      }
      await delay(10 + Math.random() * 40);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { force: true });
  }
}
