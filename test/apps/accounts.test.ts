/**
 * Portal accounts (a shared JSON file, scrypt hashes) and login sessions (in memory, on an
 * injected clock): validation, file safety across instances, expiry without sleeping.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../mesh/clock.ts';
import { createAccounts, DEFAULT_SCRYPT_COST, type Accounts } from '../../apps/daemon/accounts.ts';
import { createSessions } from '../../apps/daemon/sessions.ts';

const REPO = join(import.meta.dirname, '../..');

/** Cheap scrypt for tests; one test below runs the real (OWASP) cost. */
const FAST = { scryptCost: { N: 2 ** 10 } };

async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (error: { code?: string; message?: string }) => {
    assert.equal(error.code, code);
    assert.equal(typeof error.message, 'string');
    return true;
  });
}

describe('accounts', () => {
  let dir: string;
  let path: string;
  let accounts: Accounts;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'citizen-accounts-'));
    path = join(dir, 'accounts.json');
    accounts = createAccounts(path, FAST);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('adds, verifies, gets and lists accounts, never showing a hash', async () => {
    assert.equal(await accounts.hasAdmin(), false);
    assert.deepEqual(await accounts.list(), []);
    const alice = await accounts.add('alice', 'correct horse', { admin: true });
    await accounts.add('bob-2', 'battery staple');
    assert.deepEqual(Object.keys(alice).sort(), ['admin', 'created', 'name']);
    assert.equal(await accounts.hasAdmin(), true);
    assert.deepEqual(
      (await accounts.list()).map((a) => [a.name, a.admin]),
      [['alice', true], ['bob-2', false]],
    );
    assert.deepEqual(await accounts.get('alice'), alice);
    assert.equal(await accounts.get('carol'), null);
    assert.deepEqual(await accounts.verify('alice', 'correct horse'), alice);
    assert.equal(await accounts.verify('alice', 'correct horsE'), null);
    assert.equal(await accounts.verify('carol', 'correct horse'), null);
    assert.equal(await accounts.verify('Not Valid!', 'correct horse'), null);
    for (const account of await accounts.list()) assert.equal('password' in account, false);
  });

  it('refuses bad names, short passwords and duplicates with clear AppError codes', async () => {
    for (const name of ['', 'Alice', 'a b', 'x'.repeat(33), 'émile', 'a/b', '../x']) {
      await rejectsWithCode(accounts.add(name, 'long enough'), 'ACCOUNT_NAME_INVALID');
    }
    await rejectsWithCode(accounts.add('alice', 'short'), 'PASSWORD_TOO_SHORT');
    await rejectsWithCode(accounts.add('alice', 'x'.repeat(1025)), 'PASSWORD_TOO_LONG');
    await accounts.add('alice', 'long enough');
    await rejectsWithCode(accounts.add('alice', 'another one'), 'ACCOUNT_EXISTS');
    await rejectsWithCode(accounts.setPassword('nobody', 'long enough'), 'ACCOUNT_NOT_FOUND');
    await rejectsWithCode(accounts.setPassword('alice', 'short'), 'PASSWORD_TOO_SHORT');
  });

  it('changes a password', async () => {
    await accounts.add('alice', 'first password');
    await accounts.setPassword('alice', 'second password');
    assert.equal(await accounts.verify('alice', 'first password'), null);
    assert.equal((await accounts.verify('alice', 'second password'))?.name, 'alice');
  });

  it('writes the file with mode 0600, leaves no temp or lock files, and stores the scrypt parameters with each hash', async () => {
    await accounts.add('alice', 'correct horse');
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const file = JSON.parse(readFileSync(path, 'utf8'));
    assert.equal(file.version, 1);
    const { password } = file.accounts[0];
    assert.deepEqual({ alg: password.alg, N: password.N, r: password.r, p: password.p }, { alg: 'scrypt', N: 1024, r: 8, p: 1 });
    assert.equal(Buffer.from(password.salt, 'base64').length, 16);
    assert.equal(Buffer.from(password.hash, 'base64').length, 32);
    assert.deepEqual(readdirSync(dir), ['accounts.json']);
  });

  it('uses the OWASP scrypt cost by default (N=2^17, r=8, p=1)', async function () {
    this.timeout(10_000); // two real hashes, about half a second each
    const real = createAccounts(path);
    await real.add('alice', 'correct horse');
    const { password } = JSON.parse(readFileSync(path, 'utf8')).accounts[0];
    assert.deepEqual({ N: password.N, r: password.r, p: password.p }, { ...DEFAULT_SCRYPT_COST });
    assert.equal(password.N, 2 ** 17);
    assert.equal((await real.verify('alice', 'correct horse'))?.name, 'alice');
  });

  it('re-hashes an old, cheaper hash at the next successful login', async () => {
    await accounts.add('alice', 'correct horse');
    const stronger = createAccounts(path, { scryptCost: { N: 2 ** 11 } });
    assert.equal(await stronger.verify('alice', 'wrong horse'), null);
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).accounts[0].password.N, 1024);
    assert.equal((await stronger.verify('alice', 'correct horse'))?.name, 'alice');
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).accounts[0].password.N, 2048);
    assert.equal((await accounts.verify('alice', 'correct horse'))?.name, 'alice', 'a cheaper instance still verifies and never downgrades');
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).accounts[0].password.N, 2048);
  });

  it('verifies Unicode passwords whatever their normalisation form', async () => {
    await accounts.add('alice', 'caf\u00e9 au lait');
    assert.equal((await accounts.verify('alice', 'cafe\u0301 au lait'))?.name, 'alice');
  });

  it('spends a hash on unknown names too (no user enumeration by timing)', async () => {
    const slow = createAccounts(path, { scryptCost: { N: 2 ** 14 } }); // ~40 ms a hash: well above the file read
    await slow.add('alice', 'correct horse');
    // Known and unknown names alternate, so a busy spell of the shared machine slows both alike.
    const samples: Record<string, number[]> = { alice: [], nobody: [] };
    for (let i = 0; i < 5; i++) {
      for (const name of ['alice', 'nobody']) {
        const start = performance.now();
        await slow.verify(name, 'wrong horse');
        samples[name]!.push(performance.now() - start);
      }
    }
    const median = (list: number[]) => [...list].sort((a, b) => a - b)[2]!;
    const known = median(samples.alice!);
    const unknown = median(samples.nobody!);
    assert.ok(unknown > known * 0.5, `unknown ${unknown.toFixed(1)} ms vs known ${known.toFixed(1)} ms`);
  });

  it('sees changes made by another instance (another process) at once', async () => {
    const other = createAccounts(path, FAST);
    await other.add('alice', 'correct horse', { admin: true });
    assert.equal(await accounts.hasAdmin(), true);
    assert.equal((await accounts.verify('alice', 'correct horse'))?.name, 'alice');
  });

  it('loses no account when two instances add at the same time', async () => {
    const a = createAccounts(path, FAST);
    const b = createAccounts(path, FAST);
    const names = Array.from({ length: 16 }, (_, i) => `member-${i}`);
    await Promise.all(names.map((name, i) => (i % 2 ? a : b).add(name, 'correct horse')));
    assert.deepEqual((await accounts.list()).map((x) => x.name).sort(), [...names].sort());
    assert.equal(existsSync(`${path}.lock`), false);
  });

  it('loses no account when two other processes and this one add at the same time', async function () {
    this.timeout(20_000); // starting two Node processes with tsx, bounded
    const script = `
      const { createAccounts } = await import('./apps/daemon/accounts.ts');
      const accounts = createAccounts(process.argv[1], { scryptCost: { N: 1024 } });
      for (let i = 0; i < 10; i++) await accounts.add(process.argv[2] + '-' + i, 'correct horse');`;
    const child = (prefix: string) =>
      new Promise<void>((resolve, reject) =>
        execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, path, prefix], { cwd: REPO }, (error, _out, stderr) =>
          error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(),
        ),
      );
    const here = (async () => {
      for (let i = 0; i < 10; i++) await accounts.add(`here-${i}`, 'correct horse');
    })();
    await Promise.all([child('one'), child('two'), here]);
    const names = (await accounts.list()).map((a) => a.name);
    assert.equal(names.length, 30, names.join(' '));
    assert.equal(new Set(names).size, 30);
    assert.equal(statSync(path).mode & 0o777, 0o600);
  });

  it('takes over a lock left by a process that died', async () => {
    writeFileSync(`${path}.lock`, '2147483646\n'); // no such process
    await accounts.add('alice', 'correct horse');
    assert.equal((await accounts.get('alice'))?.name, 'alice');
  });

  it('refuses a corrupt file instead of overwriting it', async () => {
    writeFileSync(path, '{"version": 1, "accounts": [', { mode: 0o600 });
    await rejectsWithCode(accounts.list(), 'ACCOUNTS_CORRUPT');
    await rejectsWithCode(accounts.add('alice', 'correct horse'), 'ACCOUNTS_CORRUPT');
    assert.equal(readFileSync(path, 'utf8'), '{"version": 1, "accounts": [');
  });

  it('verifies every cost it accepts, and refuses a file asking for more than 256 MiB a hash', async () => {
    // Small N with large p needs more than 128·N·r bytes: the memory limit allowed too little.
    const manyLanes = createAccounts(path, { scryptCost: { N: 2, r: 1, p: 16 } });
    await manyLanes.add('alice', 'correct horse');
    assert.equal((await manyLanes.verify('alice', 'correct horse'))?.name, 'alice');
    // N = 2^20 with r = 32 would allocate 4 GiB for one login.
    const file = JSON.parse(readFileSync(path, 'utf8')) as { accounts: Array<{ password: { N: number; r: number; p: number } }> };
    Object.assign(file.accounts[0]!.password, { N: 2 ** 20, r: 32, p: 1 });
    writeFileSync(path, JSON.stringify(file), { mode: 0o600 });
    await rejectsWithCode(accounts.verify('alice', 'correct horse'), 'ACCOUNTS_CORRUPT');
    assert.throws(() => createAccounts(path, { scryptCost: { N: 2 ** 20, r: 32 } }), { code: 'SCRYPT_COST_INVALID' });
  });
});

describe('sessions', () => {
  it('creates random 32-byte ids and finds them', () => {
    const sessions = createSessions({ clock: new ManualClock() });
    const a = sessions.create('alice');
    const b = sessions.create('alice');
    assert.match(a.id, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(Buffer.from(a.id, 'base64url').length, 32);
    assert.notEqual(a.id, b.id);
    assert.equal(sessions.get(a.id)?.user, 'alice');
    assert.equal(sessions.get('not-a-session'), null);
    assert.equal(sessions.get(a.id.slice(0, -1) + (a.id.endsWith('A') ? 'B' : 'A')), null);
  });

  it('ends a session after the idle time, and one in use after the absolute time', () => {
    const clock = new ManualClock();
    const sessions = createSessions({ clock, idleTtlMs: 60_000, absoluteTtlMs: 300_000 });
    const idle = sessions.create('alice');
    const busy = sessions.create('bob');
    assert.equal(busy.expiresAt, clock.now() + 300_000);
    for (let t = 0; t < 4; t++) {
      clock.advance(59_000);
      assert.ok(sessions.get(busy.id), 'used within the idle time: still alive');
    }
    assert.equal(sessions.get(idle.id), null, 'idle for over a minute');
    clock.advance(59_000); // 295 s after creation, used 59 s ago
    assert.ok(sessions.get(busy.id));
    clock.advance(5_000);
    assert.equal(sessions.get(busy.id), null, 'absolute expiry');
  });

  it('destroys one session, or all of a member', () => {
    const sessions = createSessions({ clock: new ManualClock() });
    const a1 = sessions.create('alice');
    const a2 = sessions.create('alice');
    const b = sessions.create('bob');
    assert.equal(sessions.destroy(a1.id), true);
    assert.equal(sessions.destroy(a1.id), false);
    assert.equal(sessions.get(a1.id), null);
    assert.ok(sessions.get(a2.id));
    sessions.create('alice');
    assert.equal(sessions.destroyAllFor('alice'), 2);
    assert.equal(sessions.get(a2.id), null);
    assert.ok(sessions.get(b.id));
    assert.equal(sessions.size, 1);
  });

  it('caps the sessions one member holds, ending the oldest', () => {
    const clock = new ManualClock();
    const sessions = createSessions({ clock, maxPerUser: 3 });
    const ids = Array.from({ length: 5 }, () => {
      clock.advance(1);
      return sessions.create('alice').id;
    });
    assert.deepEqual(
      ids.map((id) => sessions.get(id) !== null),
      [false, false, true, true, true],
    );
  });
});
