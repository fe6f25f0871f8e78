/**
 * The `citizen` program as a process, the way scripts run it (SPEC §1–2): under npm's shell,
 * with its output piped into a reader that stops early, with options before the command, and
 * failures nothing caught.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, citizen, eventually, startNode, stopNode, type Run } from '../helpers/citizen.ts';
import { peerIdOfSeed } from '../../gateway/libp2p-link.ts';
import { freePort } from '../helpers/net.ts';

const ROOT = join(import.meta.dirname, '../..');

function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; closeStdout?: boolean; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...options.env } });
    if (options.timeoutMs) {
      const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
      child.on('exit', () => clearTimeout(timer));
    }
    let stdout = '';
    let stderr = '';
    if (options.closeStdout) child.stdout.destroy();
    else child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end();
  });
}

describe('citizen as a process', function () {
  this.timeout(120_000);
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'citizen-proc-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('a node that only dials libp2p peers says so where a listening one lists its addresses', async () => {
    const peer = `/ip4/127.0.0.1/tcp/${await freePort()}/p2p/${await peerIdOfSeed(new Uint8Array(32))}`;
    const node = await startNode(['--data', join(dir, 'data'), '--portal', `127.0.0.1:${await freePort()}`, '--p2p-peer', peer]);
    try {
      assert.match(node.output(), /^libp2p peer 12D3\S+: dials out only \(no --p2p-listen\)$/m);
    } finally {
      assert.equal(await stopNode(node), 0);
    }
  });

  it('stops cleanly when the npm process that started it is terminated (npm start, npx citizen start)', async () => {
    // npm runs the node under `sh -c` and forwards SIGTERM to that shell only: the shell dies,
    // the node is left behind. The shell here is npm's, with a second command so no shell
    // replaces itself by the node.
    const data = join(dir, 'data');
    const port = await freePort();
    const shell = spawn('sh', ['-c', `"${process.execPath}" "${BIN}" start --data "${data}" --portal 127.0.0.1:${port}; exit $?`], {
      cwd: ROOT,
      env: { ...process.env, npm_lifecycle_event: 'start' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    shell.stdout.on('data', (d) => (output += d));
    shell.stderr.on('data', (d) => (output += d));
    const running = join(data, 'node.json');
    let nodePid: number | undefined;
    try {
      await eventually('the node to start', async () => (/Portal: http/.test(output) && existsSync(running) ? true : undefined), 60_000);
      nodePid = (JSON.parse(readFileSync(running, 'utf8')) as { pid: number }).pid;
      assert.notEqual(nodePid, shell.pid, 'the node runs under the shell, as under npm');
      shell.kill('SIGTERM');
      await eventually('the node to stop', async () => (!existsSync(running) && /Stopped\./.test(output) ? true : undefined), 20_000);
      const again = await citizen(['status', '--data', data]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal((JSON.parse(again.stdout) as { running: boolean }).running, false);
    } finally {
      shell.kill('SIGKILL');
      if (nodePid !== undefined) {
        try {
          process.kill(nodePid, 'SIGKILL');
        } catch {
          // stopped, as it should
        }
      }
    }
  });

  it('starts and reports status over a node.json left behind by a node killed hard (power cut, pid reused)', async () => {
    const data = join(dir, 'data');
    assert.equal((await citizen(['init', '--name', 'rose', '--data', data])).code, 0);
    // The pid of a live process that is no node (this test's), and a portal nobody serves.
    const stale = JSON.stringify({ pid: process.pid, portal: `http://127.0.0.1:${await freePort()}` });
    writeFileSync(join(data, 'node.json'), stale);
    const offline = await citizen(['status', '--data', data]);
    assert.equal(offline.code, 0, offline.stderr);
    assert.deepEqual(
      (({ household, running }) => ({ household, running }))(JSON.parse(offline.stdout) as { household: string; running: boolean }),
      { household: 'rose', running: false },
    );
    const port = await freePort();
    const node = await startNode(['--data', data, '--portal', `127.0.0.1:${port}`]);
    try {
      const online = await citizen(['status', '--data', data]);
      assert.equal(online.code, 0, online.stderr);
      assert.equal((JSON.parse(online.stdout) as { running: boolean }).running, true);
      // While it runs, a second node on the same data directory is refused, naming the first.
      const second = await citizen(['start', '--data', data, '--portal', `127.0.0.1:${await freePort()}`]);
      assert.notEqual(second.code, 0);
      assert.match(second.stderr, new RegExp(`^citizen start: a node is already running for .* \\(pid ${node.child.pid}, http://127\\.0\\.0\\.1:${port}\\)\n$`));
    } finally {
      assert.equal(await stopNode(node), 0);
    }
  });

  it('says plainly when the data directory is a file', async () => {
    const file = join(dir, 'not-a-dir');
    writeFileSync(file, 'x');
    for (const args of [['init', '--name', 'rose'], ['start', '--portal', '127.0.0.1:0'], ['status'], ['vouch', 'lilac']]) {
      const r = await citizen([...args, '--data', file]);
      assert.equal(r.code, 1, args.join(' '));
      assert.equal(r.stderr, `citizen ${args[0]}: ${file} is a file, not a data directory\n`);
    }
    const below = await citizen(['init', '--name', 'rose', '--data', join(file, 'rose')]);
    assert.equal(below.code, 1);
    assert.equal(below.stderr, `citizen init: cannot create the household in ${join(file, 'rose')}: part of the path is a file, not a directory\n`);
  });

  it('refuses a bad --link before it creates anything', async () => {
    const data = join(dir, 'fresh');
    for (const link of ['udp://127.0.0.1:7001', 'udp://127.0.0.1:7001?peer=127.0.0.1:7002&preset=Warp', 'carrier-pigeon://loft']) {
      const r = await citizen(['start', '--data', data, '--portal', '127.0.0.1:0', '--link', link]);
      assert.equal(r.code, 2, link);
      assert.match(r.stderr, new RegExp(`^citizen start: --link ${link.replace(/[.?+/]/g, '\\$&')}: invalid link spec .*\n$`));
      assert.equal(existsSync(data), false, `${link}: no household created`);
    }
  });

  it('stops on SIGTERM even while a client holds a request it never finishes', async () => {
    const data = join(dir, 'data');
    const port = await freePort();
    const node = await startNode(['--data', data, '--portal', `127.0.0.1:${port}`]);
    const socket = connect(port, '127.0.0.1');
    try {
      await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
      socket.write('GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n'); // and never the blank line
      await new Promise((resolve) => setTimeout(resolve, 300));
      const started = Date.now();
      const code = await Promise.race([stopNode(node), new Promise<string>((resolve) => setTimeout(() => resolve('still running'), 20_000))]);
      assert.equal(code, 0, node.output());
      assert.ok(Date.now() - started < 20_000);
      assert.match(node.output(), /Stopped\./);
      assert.equal(existsSync(join(data, 'node.json')), false);
    } finally {
      socket.destroy();
      node.child.kill('SIGKILL');
    }
  });

  it('exits, with everything it started stopped, when starting fails half-way', async () => {
    // node.json is written once the portal listens; a directory in its place makes that fail.
    const data = join(dir, 'data');
    assert.equal((await citizen(['init', '--name', 'rose', '--data', data])).code, 0);
    mkdirSync(join(data, 'node.json', 'in-the-way'), { recursive: true });
    const port = await freePort();
    const r = await run(process.execPath, [BIN, 'start', '--data', data, '--portal', `127.0.0.1:${port}`], { timeoutMs: 30_000 });
    assert.equal(r.code, 1, `exits by itself (${r.code === null ? 'killed after 30 s' : r.code}): ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^citizen start: cannot write ${join(data, 'node.json').replace(/[.]/g, '\\.')}: .*\n$`));
    // The portal was closed and the store released: a node starts there once the way is clear.
    rmSync(join(data, 'node.json'), { recursive: true });
    const node = await startNode(['--data', data, '--portal', `127.0.0.1:${port}`]);
    assert.equal(await stopNode(node), 0);
  });

  it('stops cleanly on a SIGTERM that comes the moment it prints its portal', async () => {
    const data = join(dir, 'data');
    for (let round = 0; round < 3; round++) {
      const node = await startNode(['--data', data, '--portal', `127.0.0.1:${await freePort()}`]);
      assert.equal(await stopNode(node), 0, node.output());
      assert.match(node.output(), /Stopped\./);
      assert.equal(existsSync(join(data, 'node.json')), false);
    }
  });

  it('prints no stack trace when its reader closes the pipe early', async () => {
    for (const args of [['--help'], ['airtime', '--preset', 'LongFast', '--bytes', '10']]) {
      const r = await run(process.execPath, [BIN, ...args], { closeStdout: true });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '');
    }
  });

  it('takes --data and --debug before the command too', async () => {
    const data = join(dir, 'rose');
    const init = await citizen(['--data', data, 'init', '--name', 'rose']);
    assert.equal(init.code, 0, init.stderr);
    assert.ok(existsSync(join(data, 'config.json')));
    const status = await citizen([`--data=${data}`, '--debug', 'status']);
    assert.equal(status.code, 0, status.stderr);
    assert.equal((JSON.parse(status.stdout) as { household: string }).household, 'rose');
    const bare = await citizen(['--data', data]);
    assert.equal(bare.code, 2);
    assert.match(bare.stderr, /^Usage: citizen COMMAND/);
  });

  it('reports a failure nothing caught in one line, with the stack only under --debug', async () => {
    const script = (argv: string[]) =>
      `import('./apps/cli/main.ts').then((m) => { m.guardProcess(${JSON.stringify(argv)}); setTimeout(() => { throw new Error('boom\\nsecond line'); }, 0); });`;
    const plain = await run(process.execPath, ['--import', 'tsx', '--import', './bin/node-compat.mjs', '-e', script(['start'])]);
    assert.equal(plain.code, 1);
    assert.equal(plain.stderr, 'citizen start: boom\n');
    const debug = await run(process.execPath, ['--import', 'tsx', '--import', './bin/node-compat.mjs', '-e', script(['start', '--debug'])]);
    assert.equal(debug.code, 1);
    assert.match(debug.stderr, /^citizen start: boom\nError: boom\nsecond line\n\s+at /);
    const rejected = await run(process.execPath, [
      '--import',
      'tsx',
      '--import',
      './bin/node-compat.mjs',
      '-e',
      `import('./apps/cli/main.ts').then((m) => { m.guardProcess(['status']); void Promise.reject(new Error('lost')); });`,
    ]);
    assert.equal(rejected.code, 1);
    assert.equal(rejected.stderr, 'citizen status: lost\n');
  });
});
