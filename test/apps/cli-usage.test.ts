/**
 * Usage errors of the `citizen` command line, in-process: one line naming the fix, exit 2.
 */
import assert from 'node:assert/strict';
import { citizenInProcess as run } from '../helpers/cli-in-process.ts';

describe('citizen usage errors', () => {
  it('says a value is missing where an option follows, and how to give one that starts with a dash, on one line', async () => {
    for (const [argv, message] of [
      [['init', '--name', '-rose'], /^citizen init: --name needs a value, and "-rose" after it is not one \(write --name=-rose if it is\) \(see "citizen init --help"\)$/],
      [['sim', 'x.json', '--compare', '--quiet'], /^citizen sim: --compare needs a value, and "--quiet" after it is not one \(write --compare=--quiet if it is\) \(see "citizen sim --help"\)$/],
    ] as Array<[string[], RegExp]>) {
      const r = await run(...argv);
      assert.equal(r.code, 2, argv.join(' '));
      assert.equal(r.err.length, 1);
      assert.match(r.err[0]!, message);
    }
  });

  it('names an unknown option or a missing value in one line', async () => {
    for (const [argv, message] of [
      [['init', '--bogus'], /^citizen init: Unknown option '--bogus' \(see "citizen init --help"\)$/],
      [['airtime', '--bytes'], /^citizen airtime: --bytes needs a value \(see "citizen airtime --help"\)$/],
      [['status', 'extra'], /^citizen status: Unexpected argument 'extra'\. This command does not take positional arguments \(see "citizen status --help"\)$/],
    ] as Array<[string[], RegExp]>) {
      const r = await run(...argv);
      assert.equal(r.code, 2, argv.join(' '));
      assert.deepEqual(r.out, []);
      assert.equal(r.err.length, 1, argv.join(' '));
      assert.match(r.err[0]!, message);
    }
  });
});
