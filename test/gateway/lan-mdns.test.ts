/**
 * `--lan`: households on one LAN find each other with mDNS and sync over libp2p (issue 7).
 * Multicast must never reach the machine's real networks, so the test builds its own LAN:
 * two network namespaces joined by a veth pair (iproute2; .ci/run installs it), each running
 * a real `citizen start --lan` with no peer configured. The households must learn each other
 * (directory and bound libp2p peer) through discovery alone.
 *
 * Needs root (or CAP_NET_ADMIN) for `ip netns`; where that is not permitted the test is
 * skipped with the reason printed.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, citizen, eventually } from '../helpers/citizen.ts';

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

/** GET a node's /api/status from inside its namespace (its portal is on the namespace's loopback). */
function statusIn(ns: string, port: number): Promise<{ households_known: number; p2p: { peers: { household: string | null }[] } }> {
  const script = `fetch('http://127.0.0.1:${port}/api/status').then((r) => r.text()).then((t) => process.stdout.write(t), () => process.exit(1))`;
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script]);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('close', (code) => {
      try {
        if (code !== 0) throw new Error(`status in ${ns}: exit ${code}`);
        resolve(JSON.parse(out));
      } catch (err) {
        reject(err);
      }
    });
  });
}

describe('--lan: mDNS discovery between households in their own network namespaces (issue 7)', function () {
  this.timeout(120_000);
  const tag = `cz${process.pid % 100000}`;
  const spaces = [`${tag}a`, `${tag}b`];
  const addrs = ['10.237.77.1', '10.237.77.2'];
  const root = mkdtempSync(join(tmpdir(), 'citizen-lan-'));
  const children: ChildProcess[] = [];
  const outputs: string[] = ['', ''];
  let created = false;

  before(async function () {
    try {
      ip('netns', 'add', spaces[0]!);
      created = true;
      ip('netns', 'add', spaces[1]!);
    } catch (err) {
      console.log(`    skipped: "ip netns" is not available or not permitted here (${(err as Error).message.split('\n')[0]})`);
      this.skip();
    }
    ip('link', 'add', `${tag}x`, 'type', 'veth', 'peer', 'name', `${tag}y`);
    ip('link', 'set', `${tag}x`, 'netns', spaces[0]!);
    ip('link', 'set', `${tag}y`, 'netns', spaces[1]!);
    for (const [i, ns] of spaces.entries()) {
      const dev = i === 0 ? `${tag}x` : `${tag}y`;
      ip('-n', ns, 'addr', 'add', `${addrs[i]}/24`, 'dev', dev);
      ip('-n', ns, 'link', 'set', dev, 'up', 'multicast', 'on');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      // mDNS goes to 224.0.0.251: without a default route it needs one of its own.
      ip('-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', dev);
    }
    const names = ['rose', 'oak'];
    await Promise.all(names.map(async (name) => assert.equal((await citizen(['init', '--name', name, '--data', join(root, name)])).code, 0)));
    for (const [i, name] of names.entries()) {
      const child = spawn(
        'ip',
        ['netns', 'exec', spaces[i]!, process.execPath, BIN, 'start', '--data', join(root, name), '--portal', '127.0.0.1:8080', '--lan', '--p2p-listen', `/ip4/${addrs[i]}/tcp/4001`],
        { env: { ...process.env, CITIZEN_DATA: '', CITIZEN_LAN_INTERVAL_MS: '1000' } },
      );
      child.stdout!.on('data', (d) => (outputs[i] += d));
      child.stderr!.on('data', (d) => (outputs[i] += d));
      children.push(child);
    }
    await eventually('both nodes up', async () => (outputs.every((o) => /Portal: http/.test(o)) ? true : undefined), 60_000, 200).catch((err) => {
      throw new Error(`${(err as Error).message}\n${outputs.join('\n---\n')}`);
    });
  });

  after(async () => {
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null) return resolve();
            c.on('close', () => resolve());
            c.kill('SIGTERM');
          }),
      ),
    );
    if (created) for (const ns of spaces) try { ip('netns', 'del', ns); } catch { /* already gone */ }
    rmSync(root, { recursive: true, force: true });
  });

  it('the households find each other by mDNS and sync, each peer bound to its household', async () => {
    await eventually(
      'rose and oak to know each other over the LAN',
      async () => {
        const [rose, oak] = await Promise.all([statusIn(spaces[0]!, 8080), statusIn(spaces[1]!, 8080)]);
        const bound = (s: typeof rose, name: string) => s.p2p.peers.some((p) => p.household === name);
        return rose.households_known === 2 && oak.households_known === 2 && bound(rose, 'oak') && bound(oak, 'rose') ? true : undefined;
      },
      60_000,
      500,
    );
  });
});
