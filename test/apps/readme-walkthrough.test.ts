/**
 * README.md followed word for word, as a new household or an outside checker does: the
 * commands it shows, run the way it shows them, do what it says they do.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commonOptions } from '../../apps/cli/command.ts';
import { commands } from '../../apps/cli/main.ts';
import { citizen, eventually } from '../helpers/citizen.ts';
import { citizenInProcess } from '../helpers/cli-in-process.ts';
import { freePort } from '../helpers/net.ts';

const ROOT = join(import.meta.dirname, '../..');

describe('the README, followed word for word', function () {
  this.timeout(120_000);
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'citizen-readme-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('npm start, then Ctrl-C: the node stops cleanly (the terminal signals npm and the node, and npm passes it on again)', async () => {
    // Ctrl-C sends SIGINT to the whole foreground process group: npm and the node it execs.
    // npm forwards the signal to its child as well, so the node gets it twice, a moment apart.
    // The second one used to find no handler and kill the node half-way through stopping:
    // no "Stopped.", node.json left behind.
    const data = join(dir, 'data');
    const port = await freePort();
    const npm = spawn('npm', ['start', '--', '--data', data, '--portal', `127.0.0.1:${port}`], {
      cwd: ROOT,
      detached: true, // its own process group, as a terminal's foreground job
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    npm.stdout.on('data', (d) => (output += d));
    npm.stderr.on('data', (d) => (output += d));
    // 'close' comes once every holder of npm's output pipes is gone: npm and the node it started.
    let closed = false;
    npm.on('close', () => (closed = true));
    const running = join(data, 'node.json');
    try {
      await eventually('the node to start', async () => (/Portal: http/.test(output) && existsSync(running) ? true : undefined), 60_000);
      process.kill(-npm.pid!, 'SIGINT');
      // Real processes on real time: a clean stop takes a few seconds (3 s for HTTP requests at most).
      await eventually('npm and the node to exit', async () => (closed ? true : undefined), 30_000);
      assert.match(output, /Stopping \(SIGINT\)\.\.\.\nStopped\.\n/, output);
      assert.equal(existsSync(running), false, 'node.json is removed by a clean stop');
      const after = await citizen(['status', '--data', data]);
      assert.equal(after.code, 0, after.stderr);
      assert.equal((JSON.parse(after.stdout) as { running: boolean }).running, false);
    } finally {
      try {
        process.kill(-npm.pid!, 'SIGKILL');
      } catch {
        // the group is gone, as it should be
      }
    }
  });

  it('every "npx citizen" line of the README names a command and flags that exist', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const lines = readme.split('\n').filter((l) => /^\s+(?:echo .*\| )?npx citizen /.test(l));
    assert.ok(lines.length >= 20, `README lines with npx citizen: ${lines.length}`);
    for (const line of lines) {
      const words = line.replace(/\s+#.*$/, '').replace(/^.*?npx citizen /, '').split(/\s+/);
      const command = commands.find((c) => c.name === words[0]);
      assert.ok(command, `unknown command in README: ${line.trim()}`);
      for (const word of words.filter((w) => w.startsWith('--'))) {
        const flag = word.slice(2).split('=')[0]!;
        assert.ok(flag in commonOptions || flag in command.options, `citizen ${command.name} has no --${flag} (README: ${line.trim()})`);
      }
    }
  });

  it('citizen COMMAND --help: the options follow "Options:" without a blank line, for every command', async () => {
    for (const command of commands) {
      const run = await citizenInProcess(command.name, '--help');
      assert.equal(run.code, 0);
      assert.match(run.out.join('\n'), /\nOptions:\n {2}\S/, `citizen ${command.name} --help`);
    }
  });

  it('citizen radio probe with something that is no radio spec names the radio forms, not a UDP example', async () => {
    const run = await citizenInProcess('radio', 'probe', '192.168.1.50');
    assert.equal(run.code, 2);
    assert.deepEqual(run.err, ['citizen radio: "192.168.1.50" is not a radio: use meshtastic+serial://PATH or meshtastic+tcp://HOST[:PORT]']);
    // A radio spec that is malformed keeps the parser's reason.
    const port = await citizenInProcess('radio', 'probe', 'meshtastic+tcp://127.0.0.1:99999');
    assert.equal(port.code, 2);
    assert.match(port.err.join('\n'), /^citizen radio: invalid link spec "meshtastic\+tcp:\/\/127\.0\.0\.1:99999": .*port/);
  });
});
