/**
 * The household's data directory: config, keys, accounts and the store, laid out as
 *
 *   DIR/config.json            household name and settings (version 1)
 *   DIR/keys/household.json    the household's secret keys (mode 0600)
 *   DIR/keys/members/NAME.json each member's secret keys (mode 0600)
 *   DIR/accounts.json          portal accounts (see accounts.ts)
 *   DIR/store/                 LevelDB record store
 *   DIR/node.json              present while a node runs: its pid and portal address
 *
 * Secret files are written atomically (temp file, fsync, rename) so a power cut never leaves
 * half a key, and are readable by the owner only.
 */
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeSync, unlinkSync, chmodSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Identity } from '../../mesh/identity.ts';
import { isValidName } from '../../mesh/directory.ts';
import { AppError } from '../errors.ts';
import { diskProblemOf, errorChain } from '../../mesh/errors.ts';
import { diskProblemAt } from '../../mesh/level-database.ts';

export interface HouseholdConfig {
  version: 1;
  household: string;
  created: string;
}

export interface RunningNode {
  pid: number;
  portal: string;
}

/** Write `data` to an open file and sync it to disk; the file is closed whatever happens. */
function writeAndClose(fd: number, data: string): void {
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Write a file atomically with the given mode. */
export function writeFileAtomic(path: string, data: string, mode = 0o600): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeAndClose(fd, data);
    chmodSync(tmp, mode);
    renameSync(tmp, path);
  } catch (err) {
    // Half a file left by a full disk would only take more of it.
    try {
      unlinkSync(tmp);
    } catch {
      // gone already
    }
    throw err;
  }
}

/**
 * Create `path` holding `data`, unless it exists: the temp file is complete and synced before
 * it is linked into place, and link() fails if the name is taken, so of two processes racing
 * to create it exactly one wins and no one sees half a file. Returns false if it existed.
 */
export function createFileExclusive(path: string, data: string, mode = 0o600): boolean {
  const tmp = `${path}.${randomUUID()}.tmp`;
  const fd = openSync(tmp, 'wx', mode);
  try {
    writeAndClose(fd, data);
    chmodSync(tmp, mode);
    linkSync(tmp, path);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    // File systems without hard links (FAT, exFAT on a USB stick): an exclusive open instead.
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS') return createFileWithOpen(path, data, mode);
    throw err;
  } finally {
    unlinkSync(tmp);
  }
}

function createFileWithOpen(path: string, data: string, mode: number): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'wx', mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  writeAndClose(fd, data);
  return true;
}

/** Turn a host name into a valid household name, e.g. "Rose-Pi.local" → "rose-pi". */
export function nameFromHost(host = hostname()): string {
  const name = host.split('.')[0]!.toLowerCase().replace(/[^a-z0-9-]/g, '-').replace(/^-+|-+$/g, '').slice(0, 32);
  return isValidName(name) ? name : 'household';
}

/**
 * Why a file-system call failed, in words (for errors about the data directory). `path`: where
 * it wrote, to ask the file system when the error itself is unclear.
 */
export function fsReason(cause: unknown, path?: string): string {
  const disk = diskProblemOf(cause) ?? (path !== undefined ? diskProblemAt(path) : null);
  if (disk) return disk === 'full' ? 'the disk is full' : 'the file system is read-only';
  for (const err of errorChain(cause)) {
    switch (err.code) {
      case 'EACCES':
      case 'EPERM':
        return 'permission denied';
      case 'ENOTDIR':
        return 'part of the path is a file, not a directory';
      case 'ENOENT':
        return 'no such file or directory';
      case 'EISDIR':
        return 'it is a directory';
    }
  }
  return ((cause as Error)?.message ?? String(cause)).split('\n')[0]!;
}

export class DataDir {
  constructor(readonly path: string) {}

  get configPath(): string {
    return join(this.path, 'config.json');
  }
  get storePath(): string {
    return join(this.path, 'store');
  }
  get accountsPath(): string {
    return join(this.path, 'accounts.json');
  }
  get runningPath(): string {
    return join(this.path, 'node.json');
  }
  private get keysPath(): string {
    return join(this.path, 'keys');
  }

  isInitialised(): boolean {
    return existsSync(this.configPath);
  }

  /** Create the household identity and config; refuses to overwrite an existing one. */
  init(household: string): { config: HouseholdConfig; identity: Identity } {
    if (!isValidName(household)) {
      throw new AppError('NAME_INVALID', `"${household}" is not a valid household name: use 1-32 lowercase letters, digits and '-'`);
    }
    if (this.isInitialised() || existsSync(join(this.keysPath, 'household.json'))) {
      throw new AppError('ALREADY_INITIALISED', `${this.path} already holds a household; refusing to overwrite it`, 409);
    }
    this.checkIsDirectory();
    const identity = Identity.generate();
    const config: HouseholdConfig = { version: 1, household, created: new Date().toISOString() };
    // The key first, created only if absent: another `init` or first `start` may be racing us.
    let created = false;
    const keyPath = join(this.keysPath, 'household.json');
    try {
      mkdirSync(join(this.keysPath, 'members'), { recursive: true, mode: 0o700 });
      created = createFileExclusive(keyPath, JSON.stringify(identity.exportSecret()));
      if (created) writeFileAtomic(this.configPath, JSON.stringify(config, null, 2) + '\n', 0o644);
    } catch (cause) {
      // A key without a config (the disk filled up in between) would make every later `init`
      // refuse ("already holds a household") and `start` ask for `init`: take the key back.
      if (created) {
        try {
          unlinkSync(keyPath);
        } catch {
          // already gone
        }
      }
      throw new AppError('DATA_DIR_UNWRITABLE', `cannot create the household in ${this.path}: ${fsReason(cause, this.path)}`, 500, { cause });
    }
    if (!created) throw new AppError('ALREADY_INITIALISED', `${this.path} already holds a household; refusing to overwrite it`, 409);
    return { config, identity };
  }

  /** Refuses a data directory path that names a file. */
  private checkIsDirectory(): void {
    let isDirectory = true;
    try {
      isDirectory = statSync(this.path).isDirectory();
    } catch {
      // absent: created on demand
    }
    if (!isDirectory) throw new AppError('DATA_DIR_INVALID', `${this.path} is a file, not a data directory`);
  }

  readConfig(): HouseholdConfig {
    this.checkIsDirectory();
    if (!this.isInitialised()) {
      throw new AppError('NOT_INITIALISED', `no household in ${this.path}: run "citizen init --name NAME" first`, 404);
    }
    const config = this.readJson(this.configPath) as Partial<HouseholdConfig> | null;
    if (typeof config !== 'object' || config === null || config.version !== 1 || typeof config.household !== 'string' || !isValidName(config.household)) {
      throw new AppError('CONFIG_INVALID', `${this.configPath} is not a valid version-1 config`);
    }
    return config as HouseholdConfig;
  }

  householdIdentity(): Identity {
    return this.readIdentity(join(this.keysPath, 'household.json'));
  }

  /** A member's identity, created on first use. */
  memberIdentity(name: string): Identity {
    if (!isValidName(name)) throw new AppError('NAME_INVALID', `"${name}" is not a valid member name`);
    const path = join(this.keysPath, 'members', `${name}.json`);
    if (existsSync(path)) return this.readIdentity(path);
    const identity = Identity.generate();
    let created: boolean;
    try {
      mkdirSync(join(this.keysPath, 'members'), { recursive: true, mode: 0o700 });
      // The node and `citizen user add` may both create it: the first one's key is the member's.
      created = createFileExclusive(path, JSON.stringify(identity.exportSecret()));
    } catch (cause) {
      throw new AppError('DATA_DIR_UNWRITABLE', `cannot save ${name}'s keys in ${this.keysPath}: ${fsReason(cause, this.keysPath)}`, 500, { cause });
    }
    if (!created) return this.readIdentity(path);
    return identity;
  }

  private readIdentity(path: string): Identity {
    try {
      return Identity.importSecret(this.readJson(path));
    } catch (cause) {
      if (cause instanceof AppError) throw cause;
      throw new AppError('KEY_FILE_INVALID', `${path} is not a valid key file`, 500, { cause });
    }
  }

  private readJson(path: string): unknown {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (cause) {
      throw new AppError('FILE_UNREADABLE', `cannot read ${path}: ${(cause as Error).message}`, 500, { cause });
    }
    try {
      return JSON.parse(text);
    } catch (cause) {
      throw new AppError('FILE_CORRUPT', `${path} is not valid JSON`, 500, { cause });
    }
  }

  /** The running node's address, if one is running (a stale file from a dead process is ignored). */
  runningNode(): RunningNode | null {
    if (!existsSync(this.runningPath)) return null;
    try {
      const info = JSON.parse(readFileSync(this.runningPath, 'utf8')) as RunningNode;
      // Left by a node that died with this process's pid (a restart after a power cut).
      if (info.pid === process.pid) return null;
      process.kill(info.pid, 0);
      return info;
    } catch {
      return null;
    }
  }

  markRunning(info: RunningNode): void {
    try {
      writeFileAtomic(this.runningPath, JSON.stringify(info) + '\n', 0o644);
    } catch (cause) {
      throw new AppError('DATA_DIR_UNWRITABLE', `cannot write ${this.runningPath}: ${fsReason(cause, this.path)}`, 500, { cause });
    }
  }

  clearRunning(): void {
    try {
      unlinkSync(this.runningPath);
    } catch {
      // already gone
    }
  }
}
