/**
 * Usage errors of the `citizen` command line, in-process: one line naming the fix, exit 2.
 */
import assert from 'node:assert/strict';
import { citizenInProcess as run } from '../helpers/cli-in-process.ts';

describe('citizen usage errors', () => {
  it('keeps the hint of a value that starts with a dash on the one line it prints', async () => {
    const r = await run('init', '--name', '-rose');
    assert.equal(r.code, 2);
    assert.equal(r.err.length, 1);
    assert.doesNotMatch(r.err[0]!, /\n/);
    assert.match(r.err[0]!, /^citizen init: Option '--name' argument is ambiguous\. .*use '--name=-XYZ'\. \(see "citizen init --help"\)$/);
  });

  it('names an unknown option or a missing value in one line', async () => {
    for (const [argv, message] of [
      [['init', '--bogus'], /^citizen init: Unknown option '--bogus' \(see "citizen init --help"\)$/],
      [['airtime', '--bytes'], /^citizen airtime: Option '--bytes <value>' argument missing \(see "citizen airtime --help"\)$/],
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
