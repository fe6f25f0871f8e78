/**
 * Portal accounts of a household's members, kept in one JSON file (DIR/accounts.json) that the
 * daemon and the CLI (`citizen user add`, possibly while the node runs) share:
 *
 *   {"version": 1, "accounts": [{"name": "alice", "admin": true, "created": "<ISO 8601>",
 *     "password": {"alg": "scrypt", "N": 131072, "r": 8, "p": 1, "salt": "<b64>", "hash": "<b64>"}}]}
 *
 * Every operation re-reads the file, so no process works from a stale copy. Writers take a
 * lock file (`accounts.json.lock`, O_EXCL) around read-modify-write and replace the file
 * atomically (temp file, fsync, rename) with mode 0600: a crash never leaves half a file and
 * two processes adding at once lose nothing. Reads need no lock (a rename is atomic).
 *
 * Passwords are hashed with scrypt at the OWASP Password Storage Cheat Sheet cost
 * (N=2^17, r=8, p=1; 16-byte salt, 32-byte key). The parameters are stored with each hash so
 * the cost can be raised later: a login with an older, cheaper hash re-hashes it. Each hash
 * holds 128 MiB while it runs, so at most `maxConcurrentHashes` run at once (a Pi has little
 * memory). Verifying an unknown user spends a hash too, so timing does not reveal who exists.
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { AppError } from '../errors.ts';
import { diskProblemOf } from '../../mesh/errors.ts';
import { withFileLock, writeFileAtomically } from './atomic-file.ts';

/** An account as the rest of the program sees it: never with its password hash. */
export interface Account {
  name: string;
  admin: boolean;
  /** ISO 8601. */
  created: string;
}

/** scrypt cost parameters. */
export interface ScryptCost {
  N: number;
  r: number;
  p: number;
}

/** OWASP-recommended scrypt cost (Password Storage Cheat Sheet). */
export const DEFAULT_SCRYPT_COST: Readonly<ScryptCost> = Object.freeze({ N: 2 ** 17, r: 8, p: 1 });
export const MIN_PASSWORD_LENGTH = 8;
export const MAX_PASSWORD_LENGTH = 1024;
const SALT_BYTES = 16;
const KEY_BYTES = 32;
const NAME = /^[a-z0-9-]{1,32}$/;

export interface AccountsOptions {
  /** Lower the scrypt cost, for tests only. Default: {@link DEFAULT_SCRYPT_COST}. */
  scryptCost?: Partial<ScryptCost>;
  /** How many scrypt hashes may run at once (each needs 128·N·r bytes). Default 2. */
  maxConcurrentHashes?: number;
  /** Milliseconds since the epoch, for `created`. Default `Date.now`. */
  now?: () => number;
}

/** The household's accounts file. Every method re-reads the file. */
export interface Accounts {
  /** Create an account. Throws ACCOUNT_NAME_INVALID, PASSWORD_TOO_SHORT/LONG, ACCOUNT_EXISTS. */
  add(name: string, password: string, options?: { admin?: boolean }): Promise<Account>;
  /** The account if the pair is right, else null; as slow for unknown names as for known ones. */
  verify(name: string, password: string): Promise<Account | null>;
  get(name: string): Promise<Account | null>;
  list(): Promise<Account[]>;
  /** Replace a member's password. Throws ACCOUNT_NOT_FOUND or a password error. */
  setPassword(name: string, password: string): Promise<void>;
  hasAdmin(): Promise<boolean>;
}

interface PasswordHash extends ScryptCost {
  alg: 'scrypt';
  salt: string;
  hash: string;
}

interface StoredAccount extends Account {
  password: PasswordHash;
}

interface AccountsFile {
  version: 1;
  accounts: StoredAccount[];
}

/** Throw ACCOUNT_NAME_INVALID unless `name` is a valid member name (SPEC §3). */
export function checkMemberName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new AppError('ACCOUNT_NAME_INVALID', `"${String(name).slice(0, 40)}" is not a valid member name: use 1-32 lowercase letters, digits and '-'`);
  }
}

/** Throw PASSWORD_TOO_SHORT / PASSWORD_TOO_LONG unless `password` has an acceptable length (in characters). */
export function checkPassword(password: unknown): asserts password is string {
  if (typeof password !== 'string') throw new AppError('PASSWORD_INVALID', 'the password must be a string');
  const length = [...password].length;
  if (length < MIN_PASSWORD_LENGTH) {
    throw new AppError('PASSWORD_TOO_SHORT', `the password is too short: use at least ${MIN_PASSWORD_LENGTH} characters`);
  }
  if (length > MAX_PASSWORD_LENGTH) {
    throw new AppError('PASSWORD_TOO_LONG', `the password is too long: use at most ${MAX_PASSWORD_LENGTH} characters`);
  }
}

function publicView(account: StoredAccount): Account {
  return { name: account.name, admin: account.admin, created: account.created };
}

/** The most memory one hash may take (128·N·r bytes): the default cost takes 128 MiB. */
const MAX_SCRYPT_BYTES = 256 * 1024 * 1024;

function isSaneCost(cost: ScryptCost): boolean {
  const { N, r, p } = cost;
  return (
    Number.isInteger(N) && N >= 2 && N <= 2 ** 20 && (N & (N - 1)) === 0 && Number.isInteger(r) && r >= 1 && r <= 32 && Number.isInteger(p) && p >= 1 && p <= 16 &&
    scryptBytes(cost) <= MAX_SCRYPT_BYTES
  );
}

/** What scrypt allocates for a cost: V (128·N·r) and B (128·r·p), plus its scratch (OpenSSL's count). */
function scryptBytes(cost: ScryptCost): number {
  return 128 * cost.r * (cost.N + cost.p + 2);
}

function scryptAsync(password: string, salt: Buffer, cost: ScryptCost): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // Node refuses above maxmem (default 32 MiB): allow what this cost needs, and a little more.
    const options = { N: cost.N, r: cost.r, p: cost.p, maxmem: scryptBytes(cost) + 64 * 1024 };
    scrypt(password.normalize('NFC'), salt, KEY_BYTES, options, (error, key) => (error ? reject(error) : resolve(key)));
  });
}

function parseFile(text: string, path: string): AccountsFile {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (cause) {
    throw new AppError('ACCOUNTS_CORRUPT', `${path} is not valid JSON; fix or remove it`, 500, { cause });
  }
  const file = data as Partial<AccountsFile> | null;
  if (!file || file.version !== 1 || !Array.isArray(file.accounts)) {
    throw new AppError('ACCOUNTS_CORRUPT', `${path} is not a version-1 accounts file`, 500);
  }
  for (const a of file.accounts) {
    const ok =
      a && typeof a.name === 'string' && typeof a.admin === 'boolean' && typeof a.created === 'string' &&
      a.password?.alg === 'scrypt' && typeof a.password.salt === 'string' && typeof a.password.hash === 'string' && isSaneCost(a.password);
    if (!ok) throw new AppError('ACCOUNTS_CORRUPT', `${path} holds an account entry that is not valid`, 500);
  }
  return file as AccountsFile;
}

/** A counting semaphore: bounds how many scrypt hashes (128 MiB each) run at once. */
function createLimiter(max: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: Array<() => void> = [];
  return async (fn) => {
    if (running >= max) await new Promise<void>((resolve) => waiting.push(resolve));
    running++;
    try {
      return await fn();
    } finally {
      running--;
      waiting.shift()?.();
    }
  };
}

/**
 * Open the accounts file at `path` (created on the first `add`; its directory must exist).
 * Nothing is cached: each call reads the file again.
 */
export function createAccounts(path: string, options: AccountsOptions = {}): Accounts {
  const cost: ScryptCost = { ...DEFAULT_SCRYPT_COST, ...options.scryptCost };
  if (!isSaneCost(cost)) throw new AppError('SCRYPT_COST_INVALID', 'scrypt cost: N must be a power of two up to 2^20, r 1-32, p 1-16, and 128·N·r at most 256 MiB', 500);
  const now = options.now ?? Date.now;
  const limit = createLimiter(Math.max(1, options.maxConcurrentHashes ?? 2));
  const dummySalt = randomBytes(SALT_BYTES);
  // Serialise this instance's writers so they queue in memory instead of polling the lock file.
  let writeQueue: Promise<unknown> = Promise.resolve();

  async function read(): Promise<AccountsFile> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, accounts: [] };
      throw new AppError('ACCOUNTS_UNREADABLE', `cannot read ${path}: ${(error as Error).message}`, 500, { cause: error });
    }
    return parseFile(text, path);
  }

  function update<T>(change: (file: AccountsFile) => T): Promise<T> {
    const run = writeQueue
      .then(() =>
        withFileLock(path, async () => {
          const file = await read();
          const result = change(file);
          await writeFileAtomically(path, JSON.stringify(file, null, 2) + '\n', 0o600);
          return result;
        }),
      )
      .catch((error: unknown) => {
        const disk = diskProblemOf(error);
        if (!disk) throw error;
        throw new AppError(
          disk === 'full' ? 'DISK_FULL' : 'DISK_READ_ONLY',
          `cannot save ${path}: the disk is ${disk === 'full' ? 'full' : 'read-only'}; nothing was changed`,
          507,
          { cause: error },
        );
      });
    writeQueue = run.catch(() => undefined);
    return run;
  }

  async function hashPassword(password: string): Promise<PasswordHash> {
    const salt = randomBytes(SALT_BYTES);
    const key = await limit(() => scryptAsync(password, salt, cost));
    return { alg: 'scrypt', ...cost, salt: salt.toString('base64'), hash: key.toString('base64') };
  }

  async function matches(password: string, stored: PasswordHash): Promise<boolean> {
    const expected = Buffer.from(stored.hash, 'base64');
    const key = await limit(() => scryptAsync(password, Buffer.from(stored.salt, 'base64'), stored));
    return expected.length === key.length && timingSafeEqual(key, expected);
  }

  const weakerThanConfigured = (h: PasswordHash) => h.N < cost.N || h.r < cost.r || h.p < cost.p;

  async function get(name: string): Promise<Account | null> {
    const found = (await read()).accounts.find((a) => a.name === name);
    return found ? publicView(found) : null;
  }

  return {
    async add(name, password, addOptions = {}) {
      checkMemberName(name);
      checkPassword(password);
      if (await get(name)) throw new AppError('ACCOUNT_EXISTS', `there is already an account named "${name}"`, 409);
      const hashed = await hashPassword(password); // slow: outside the lock
      return update((file) => {
        if (file.accounts.some((a) => a.name === name)) throw new AppError('ACCOUNT_EXISTS', `there is already an account named "${name}"`, 409);
        const account: StoredAccount = { name, admin: addOptions.admin === true, created: new Date(now()).toISOString(), password: hashed };
        file.accounts.push(account);
        return publicView(account);
      });
    },

    async verify(name, password) {
      const stored = typeof name === 'string' ? (await read()).accounts.find((a) => a.name === name) : undefined;
      if (!stored || typeof password !== 'string' || password.length > 4 * MAX_PASSWORD_LENGTH) {
        // Spend the same work as a real check, so a wrong name answers as slowly as a wrong password.
        await limit(() => scryptAsync(String(password).slice(0, 64), dummySalt, cost));
        return null;
      }
      if (!(await matches(password, stored.password))) return null;
      if (weakerThanConfigured(stored.password)) {
        try {
          const stronger = await hashPassword(password);
          await update((file) => {
            const current = file.accounts.find((a) => a.name === name);
            if (current && current.password.hash === stored.password.hash) current.password = stronger;
          });
        } catch {
          // The old hash still works; upgrading it can wait for the next login.
        }
      }
      return publicView(stored);
    },

    get: (name) => get(name),

    async list() {
      return (await read()).accounts.map(publicView);
    },

    async setPassword(name, password) {
      checkPassword(password);
      if (!(await get(name))) throw new AppError('ACCOUNT_NOT_FOUND', `there is no account named "${name}"`, 404);
      const hashed = await hashPassword(password);
      await update((file) => {
        const account = file.accounts.find((a) => a.name === name);
        if (!account) throw new AppError('ACCOUNT_NOT_FOUND', `there is no account named "${name}"`, 404);
        account.password = hashed;
      });
    },

    async hasAdmin() {
      return (await read()).accounts.some((a) => a.admin);
    },
  };
}
