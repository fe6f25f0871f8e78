/**
 * Two households on emulated Meshtastic radios exchange sealed mail (issue 5, "Done when"):
 * real `citizen start` processes, rose on `meshtastic+serial://` (a socat pseudo-terminal in
 * front of its emulated radio) and oak on `meshtastic+tcp://`; both radios on one in-process
 * ether. Then oak's radio is pulled (its emulator closed) while rose sends, and brought back
 * on the same port: the mail arrives, once. The radios are told to flood nothing: every
 * packet the households hand them is a hop-limit-0 broadcast without want_ack.
 *
 * The radios run ShortTurbo, so sync paces itself to that preset's frame time (Trickle Imin
 * under a second) and the whole file takes well under a minute. It needs socat (.ci/run
 * installs it).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEmulatedDevice, type EmulatedDevice } from '../../firmware-bridge/device-emulator.ts';
import { createMemoryEther } from '../../firmware-bridge/ether.ts';
import type { MeshPacket } from '../../firmware-bridge/meshtastic-protocol.ts';
import { citizen, eventually, login, startNode, stopNode, type RunningNode } from '../helpers/citizen.ts';
import { freePort } from '../helpers/net.ts';
import { waitUntil } from '../radio/link.contract.ts';

describe('mail between households over emulated Meshtastic radios', function () {
  this.timeout(300_000);
  const root = mkdtempSync(join(tmpdir(), 'citizen-radio-mail-'));
  const ether = createMemoryEther();
  const devices: EmulatedDevice[] = [];
  const handed: MeshPacket[] = [];
  const nodes: RunningNode[] = [];
  let socat: ChildProcess | undefined;
  let stopped = false;
  const ptyPath = join(root, 'rose-radio');
  let oakRadioPort = 0;
  const portals = { rose: 0, oak: 0 };

  async function radio(nodeNum: number, port = 0, consoleText = false): Promise<{ device: EmulatedDevice; port: number }> {
    const device = createEmulatedDevice({ nodeNum, region: 'EU_868', preset: 'ShortTurbo' }, { ether });
    device.onClientPacket((p) => handed.push(p));
    devices.push(device);
    return { device, port: await device.listen(port, '127.0.0.1', { consoleText }) };
  }

  function keepPty(port: number): void {
    if (stopped) return;
    socat = spawn('socat', [`PTY,link=${ptyPath},raw,echo=0`, `TCP:127.0.0.1:${port}`], { stdio: 'ignore' });
    socat.on('exit', () => setTimeout(() => keepPty(port), 50));
  }

  before(async function () {
    if (spawnSync('socat', ['-V']).error) this.skip(); // .ci/run installs socat
    const rose = await radio(0x7001, 0, true);
    const oak = await radio(0x7002);
    oakRadioPort = oak.port;
    keepPty(rose.port);
    await waitUntil(() => existsSync(ptyPath), 'the pty', 3000);
    for (const name of ['rose', 'oak'] as const) {
      const dir = join(root, name);
      assert.equal((await citizen(['init', '--name', name, '--data', dir])).code, 0);
      const add = await citizen(['user', 'add', 'alice', '--admin', '--password-stdin', '--data', dir], `alice of ${name}\n`);
      assert.equal(add.code, 0, add.stderr);
      portals[name] = await freePort();
    }
    const link = { rose: `meshtastic+serial://${ptyPath}`, oak: `meshtastic+tcp://127.0.0.1:${oakRadioPort}` };
    for (const name of ['rose', 'oak'] as const) {
      nodes.push(await startNode(['--data', join(root, name), '--portal', `127.0.0.1:${portals[name]}`, '--link', link[name]]));
    }
    await eventually('both households to know each other over the radios', async () => {
      const all = await Promise.all(Object.values(portals).map(async (p) => (await (await fetch(`http://127.0.0.1:${p}/api/status`)).json()) as { households_known: number }));
      return all.every((s) => s.households_known === 2) ? true : undefined;
    }, 60_000);
  });

  afterEach(async function () {
    if (this.currentTest?.state !== 'failed') return;
    for (const [i, n] of nodes.entries()) console.error(`--- ${['rose', 'oak'][i]} output (tail) ---\n${n.output().slice(-2500)}`);
    for (const p of Object.values(portals)) console.error(JSON.stringify(await (await fetch(`http://127.0.0.1:${p}/api/status`)).json()).slice(0, 1500));
  });

  after(async () => {
    stopped = true;
    socat?.kill();
    await Promise.all(nodes.map(stopNode));
    await Promise.all(devices.map((d) => d.close()));
    rmSync(root, { recursive: true, force: true });
  });

  /** One login per portal (the portal rate-limits logins, as it should). */
  const sessions = new Map<number, Awaited<ReturnType<typeof login>>>();
  async function session(portal: number, password: string) {
    let s = sessions.get(portal);
    if (!s) sessions.set(portal, (s = await login(`http://127.0.0.1:${portal}`, 'alice', password)));
    return s;
  }

  async function sendMail(subject: string): Promise<void> {
    const s = await session(portals.rose, 'alice of rose');
    const res = await s('/api/mail', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ to: ['alice@oak'], subject, body: `${subject}: hello over LoRa` }) });
    assert.equal(res.status, 201, await res.text());
  }

  async function oakInbox(): Promise<{ subject: string; from: string }[]> {
    const s = await session(portals.oak, 'alice of oak');
    return (await (await s('/api/mail?folder=inbox')).json()) as never;
  }

  it('alice@rose (serial radio) mails alice@oak (TCP radio): it arrives once, sealed', async () => {
    await sendMail('first');
    const inbox = await eventually('the mail at oak', async () => {
      const mails = await oakInbox();
      return mails.some((m) => m.subject === 'first') ? mails : undefined;
    }, 60_000);
    assert.equal(inbox.filter((m) => m.subject === 'first').length, 1);
    assert.equal(inbox.find((m) => m.subject === 'first')!.from, 'alice@rose');
  });

  it('every packet handed to a radio is a one-hop broadcast within 233 bytes', () => {
    assert.ok(handed.length > 0);
    for (const p of handed) {
      assert.equal(p.to, 0xffffffff);
      assert.equal(p.hopLimit, 0);
      assert.equal(p.wantAck, false);
      assert.ok(p.payloadVariant.case === 'decoded' && p.payloadVariant.value.portnum === 256 && p.payloadVariant.value.payload.length <= 233);
    }
    for (const d of devices) assert.equal(d.stats().rebroadcasts, 0);
  });

  it("pulling oak's radio and bringing it back: mail sent meanwhile arrives, once", async () => {
    await devices[1]!.close();
    await sendMail('while unplugged');
    await new Promise((r) => setTimeout(r, 1000));
    await radio(0x7002, oakRadioPort);
    const inbox = await eventually('the mail at oak after the radio is back', async () => {
      const mails = await oakInbox();
      return mails.some((m) => m.subject === 'while unplugged') ? mails : undefined;
    }, 120_000); // oak's link comes back up: its sync reconciles at Imin (ShortTurbo: under a second)
    assert.equal(inbox.filter((m) => m.subject === 'while unplugged').length, 1);
  });
});
