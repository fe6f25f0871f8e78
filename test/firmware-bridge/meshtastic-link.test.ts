/**
 * The Meshtastic link (firmware-bridge/meshtastic-link.ts) against emulated devices: the
 * whole Link contract over TCP, then what is particular to it — frames handed to the radio
 * are one-hop PRIVATE_APP broadcasts (hop limit 0, no want_ack) within 233 bytes and never
 * rebroadcast; airtime from the radio's own preset; region UNSET refused clearly; drops and
 * emulator restarts reconnect; a radio that never finishes the handshake; garbage and
 * undecodable frames from the radio; packets on other ports; and the serial path over a
 * pseudo-terminal (socat). Loopback only; backoff and timeouts shortened.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, connect, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, toBinary } from '@bufbuild/protobuf';
import { createEmulatedDevice, type EmulatedDevice } from '../../firmware-bridge/device-emulator.ts';
import { createMemoryEther, type Ether } from '../../firmware-bridge/ether.ts';
import { createMeshtasticLink, type MeshtasticLink } from '../../firmware-bridge/meshtastic-link.ts';
import { Mesh, type MeshPacket } from '../../firmware-bridge/meshtastic-protocol.ts';
import { encodeStreamFrame } from '../../firmware-bridge/stream-codec.ts';
import { parseLinkSpec, type MeshtasticSerialLinkSpec, type MeshtasticTcpLinkSpec } from '../../radio/link-spec.ts';
import type { Clock, Link } from '../../radio/link.ts';
import { findPreset, loraAirtimeMs } from '../../radio/lora-airtime.ts';
import { collect, describeLinkContract, settle, waitUntil } from '../radio/link.contract.ts';

const fast = { minBackoffMs: 20, maxBackoffMs: 200, handshakeTimeoutMs: 2000, queueStatusTimeoutMs: 1000 };

function tcpSpec(port: number): MeshtasticTcpLinkSpec {
  return parseLinkSpec(`meshtastic+tcp://127.0.0.1:${port}`) as MeshtasticTcpLinkSpec;
}

const devicesOf = new Map<Link, EmulatedDevice>();
let contractDevices: EmulatedDevice[] = [];

describeLinkContract('meshtastic+tcp (emulated devices)', {
  async create(clock) {
    await Promise.all(contractDevices.splice(0).map((d) => d.close()));
    const ether = createMemoryEther();
    const links: Link[] = [];
    for (let i = 0; i < 3; i++) {
      const device = createEmulatedDevice({ nodeNum: 0x4000 + i, region: 'EU_868', preset: 'ShortTurbo' }, { ether });
      contractDevices.push(device);
      const link = createMeshtasticLink(tcpSpec(await device.listen(0)), { clock }, fast);
      devicesOf.set(link, device);
      links.push(link);
    }
    return links;
  },
  async stopAndCheckReleased(link) {
    const device = devicesOf.get(link)!;
    assert.equal(device.clientCount(), 1);
    await link.stop();
    await waitUntil(() => device.clientCount() === 0, 'the emulator to see the client go');
  },
});

describe('firmware-bridge/meshtastic-link', function () {
  this.timeout(10_000);
  const clock: Clock = { now: () => 1_790_000_000_000 };
  const cleanup: (() => Promise<unknown> | void)[] = [];
  after(async () => {
    await Promise.all(contractDevices.splice(0).map((d) => d.close()));
  });
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  async function device(ether: Ether, options: Parameters<typeof createEmulatedDevice>[0] = {}) {
    const d = createEmulatedDevice({ region: 'EU_868', ...options }, { ether });
    const port = await d.listen(0);
    cleanup.push(() => d.close());
    return { device: d, port };
  }

  function link(port: number, extra: Partial<Parameters<typeof createMeshtasticLink>[1]> = {}, options = {}): MeshtasticLink {
    const l = createMeshtasticLink(tcpSpec(port), { clock, ...extra }, { ...fast, ...options });
    cleanup.push(() => l.stop());
    return l;
  }

  it('hands the radio one-hop PRIVATE_APP broadcasts: hop limit 0, no want_ack, ≤ 233 bytes; never rebroadcast', async () => {
    const ether = createMemoryEther();
    const a = await device(ether, { nodeNum: 0x5001 });
    const b = await device(ether, { nodeNum: 0x5002 });
    const c = await device(ether, { nodeNum: 0x5003 });
    const handed: MeshPacket[] = [];
    a.device.onClientPacket((p) => handed.push(p));
    const la = link(a.port);
    const lb = link(b.port);
    await Promise.all([la.start(), lb.start()]);
    assert.equal(la.mtu, 233);
    const inbox = collect(lb);
    await la.send(new Uint8Array(233).fill(5));
    await la.send(Uint8Array.of(1));
    await inbox.waitFor(2);
    await settle();
    assert.equal(handed.length, 2);
    for (const p of handed) {
      assert.equal(p.to, 0xffffffff);
      assert.equal(p.hopLimit, 0);
      assert.equal(p.hopStart, 0);
      assert.equal(p.wantAck, false);
      assert.equal(p.payloadVariant.case, 'decoded');
      assert.equal(p.payloadVariant.case === 'decoded' && p.payloadVariant.value.portnum, 256);
      assert.ok(p.payloadVariant.case === 'decoded' && p.payloadVariant.value.payload.length <= 233);
    }
    for (const d of [a, b, c]) assert.equal(d.device.stats().rebroadcasts, 0, 'no device floods our frames');
    assert.equal(c.device.stats().heard, 2, 'a third radio hears them once each');
    assert.equal(inbox.frames[0]!.meta.from, '!00005001');
    assert.equal(inbox.frames[0]!.meta.rssi, -90);
  });

  it("computes airtime from the radio's own preset and region; reports the radio", async () => {
    const ether = createMemoryEther();
    const a = await device(ether, { nodeNum: 0x5101, preset: 'ShortTurbo', region: 'US' });
    await device(ether, { nodeNum: 0x5102, preset: 'ShortTurbo', region: 'US' });
    const la = link(a.port);
    await la.start();
    const info = la.radioInfo()!;
    assert.equal(info.region, 'US');
    assert.equal(info.preset, 'SHORT_TURBO');
    assert.equal(info.nodeId, '!00005101');
    assert.equal(info.firmwareVersion, '2.6.11.emulated');
    assert.ok(Math.abs(la.bitRate - 21875) < 1);
    await la.send(new Uint8Array(100));
    // 16-byte header + Data protobuf (portnum 256: 3 bytes, payload tag and length: 2 bytes) + 100.
    assert.equal(la.stats().airtimeMs, loraAirtimeMs(findPreset('ShortTurbo'), 16 + 5 + 100));
    assert.equal(la.radioReports().queueMax, 16);
  });

  it('passes each frame through beforeSend with its airtime when given', async () => {
    const ether = createMemoryEther();
    const a = await device(ether, { preset: 'LongFast' });
    const seen: number[] = [];
    const la = link(a.port, { beforeSend: async (ms) => void seen.push(ms) });
    await la.start();
    await la.send(new Uint8Array(10));
    assert.deepEqual(seen, [loraAirtimeMs(findPreset('LongFast'), 16 + 5 + 10)]);
  });

  it("the radio's own air-utilisation report feeds the duty-cycle governor", async () => {
    const ether = createMemoryEther();
    const a = await device(ether, { nodeNum: 0x5601, region: 'EU_868' }); // 10% at 869.525 MHz, half of it ours
    await device(ether, { nodeNum: 0x5602, region: 'EU_868' });
    // A timer that never fires: a send that has to wait for budget stays pending, visibly.
    const waits: number[] = [];
    const timer = { setTimeout: (_: () => void, ms: number) => void waits.push(ms), clearTimeout: () => undefined };
    const la = link(a.port, { timer });
    await la.start();
    await la.send(Uint8Array.of(1)); // within budget: goes at once
    a.device.reportTelemetry({ airUtilTx: 5, channelUtilization: 7 }); // the radio says: 5% of the hour used
    await waitUntil(() => la.radioReports().airUtilTx === 5, 'the report to arrive');
    assert.equal(la.radioReports().channelUtilization, 7);
    let sent = false;
    void la.send(Uint8Array.of(2)).then(() => (sent = true));
    await settle();
    assert.equal(sent, false, 'the budget is spent: the send waits');
    assert.ok(waits.some((ms) => ms > 1000), `waiting for the window to move on: ${waits.join(', ')}`);
    assert.equal(la.stats().framesOut, 1);
  });

  it('a radio in region UNSET: start rejects REGION_UNSET and says how to set it', async () => {
    const a = await device(createMemoryEther(), { region: 'UNSET' });
    const la = link(a.port);
    await assert.rejects(la.start(), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'REGION_UNSET');
      assert.match(err.message, /citizen radio configure meshtastic\+tcp:\/\/127\.0\.0\.1:\d+ --region/);
      return true;
    });
    assert.equal(la.up, false);
    await waitUntil(() => a.device.clientCount() === 0, 'the connection to be closed');
  });

  it('no radio there: start rejects LINK_START_FAILED at once', async () => {
    const { freePort } = await import('../helpers/net.ts');
    const la = link(await freePort());
    await assert.rejects(la.start(), { code: 'LINK_START_FAILED' });
  });

  it('a radio that never finishes the handshake: start rejects within the timeout', async () => {
    const server: Server = createServer((s) => {
      s.write('INFO | booting...\r\n');
      s.on('data', () => s.write(encodeStreamFrame(Uint8Array.of(0x1a, 0x02, 0x08, 0x01)))); // my_info only, never complete
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise<void>((r) => server.close(() => r())));
    server.on('connection', (s) => cleanup.push(() => void s.destroy()));
    const la = link((server.address() as { port: number }).port, {}, { handshakeTimeoutMs: 150 });
    const t0 = Date.now();
    await assert.rejects(la.start(), (err: Error & { code?: string }) => err.code === 'LINK_START_FAILED' && /handshake/.test(err.message));
    assert.ok(Date.now() - t0 < 2000);
  });

  it('reconnects with backoff after a drop and after the emulator restarts; frames flow again', async () => {
    const ether = createMemoryEther();
    const a = await device(ether, { nodeNum: 0x5201 });
    const b = await device(ether, { nodeNum: 0x5202 });
    const la = link(a.port);
    const lb = link(b.port);
    await Promise.all([la.start(), lb.start()]);
    const events: string[] = [];
    la.on('up', () => events.push('up'));
    la.on('down', () => events.push('down'));
    const inbox = collect(lb);
    a.device.dropClients(); // as when the radio reboots
    await waitUntil(() => events.length === 2, 'down and up again');
    assert.deepEqual(events, ['down', 'up']);
    await la.send(Uint8Array.of(1));
    await inbox.waitFor(1);
    // Pull the device: close the emulator, bring a new one up on the same port.
    await a.device.close();
    await waitUntil(() => !la.up, 'the link to go down');
    await assert.rejects(la.send(Uint8Array.of(2)), { code: 'LINK_DOWN' });
    const again = createEmulatedDevice({ nodeNum: 0x5201, region: 'EU_868' }, { ether });
    cleanup.push(() => again.close());
    await again.listen(a.port);
    await waitUntil(() => la.up, 'the link to come back', 5000);
    await la.send(Uint8Array.of(3));
    await inbox.waitFor(2);
    assert.deepEqual(inbox.frames.map((f) => f.frame[0]), [1, 3]);
    const back = collect(la);
    await lb.send(Uint8Array.of(4));
    await back.waitFor(1);
    assert.ok(la.bridgeStats().reconnects >= 2);
  });

  it('garbage, an oversize header and an undecodable protobuf from the radio are counted and skipped', async () => {
    const ether = createMemoryEther();
    const a = await device(ether, { nodeNum: 0x5301 });
    const b = await device(ether, { nodeNum: 0x5302 });
    // A proxy in front of device a that salts what the radio says with junk.
    const proxy = createServer((client) => {
      const upstream = connect(a.port, '127.0.0.1');
      client.on('data', (d) => upstream.write(d));
      upstream.on('data', (d) => {
        client.write('DEBUG | noise\r\n');
        client.write(Uint8Array.of(0x94, 0xc3, 0x7f, 0x00));
        client.write(encodeStreamFrame(Uint8Array.of(0xff, 0xff, 0xff, 0xff)));
        client.write(d);
      });
      const end = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('close', end).on('error', end);
      upstream.on('close', end).on('error', end);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise<void>((r) => proxy.close(() => r())));
    const la = link((proxy.address() as { port: number }).port);
    const lb = link(b.port);
    await Promise.all([la.start(), lb.start()]);
    const inbox = collect(la);
    await lb.send(Uint8Array.of(4, 2));
    await inbox.waitFor(1);
    assert.deepEqual(inbox.frames[0]!.frame, Uint8Array.of(4, 2));
    const s = la.bridgeStats();
    assert.ok(s.badProtobufs >= 1, `bad protobufs ${s.badProtobufs}`);
    assert.ok(s.skippedBytes > 10, `skipped ${s.skippedBytes}`);
    await la.stop();
  });

  it('packets on other ports, to one node, or undecodable are ignored and counted, not delivered', async () => {
    const ether = createMemoryEther();
    const a = await device(ether, { nodeNum: 0x5401 });
    const la = link(a.port);
    await la.start();
    const inbox = collect(la);
    const probe = await ether.attach(() => undefined);
    cleanup.push(() => probe.close());
    const air = (id: number, init: Partial<Parameters<typeof create<typeof Mesh.MeshPacketSchema>>[1]>) => ({
      region: 3,
      preset: 0,
      packet: toBinary(Mesh.MeshPacketSchema, create(Mesh.MeshPacketSchema, { from: 0x9001, to: 0xffffffff, id, ...init } as never)),
    });
    probe.transmit(air(1, { payloadVariant: { case: 'decoded', value: { portnum: 1, payload: new TextEncoder().encode('hi') } } }));
    probe.transmit(air(2, { to: 0x5401, payloadVariant: { case: 'decoded', value: { portnum: 256, payload: Uint8Array.of(1) } } }));
    probe.transmit(air(3, { payloadVariant: { case: 'encrypted', value: Uint8Array.of(1, 2, 3) } }));
    probe.transmit(air(4, { payloadVariant: { case: 'decoded', value: { portnum: 256, payload: Uint8Array.of(7) } } }));
    await inbox.waitFor(1);
    await settle();
    assert.deepEqual(inbox.frames.map((f) => [...f.frame]), [[7]]);
    assert.equal(la.bridgeStats().ignored, 3);
  });

  describe('over a serial port (a pseudo-terminal from socat)', () => {
    let socat: ChildProcess | undefined;
    afterEach(() => {
      socat?.kill();
      socat = undefined;
    });

    it('a meshtastic+serial link on a pty exchanges frames with a TCP link', async function () {
      if (spawnSync('socat', ['-V']).error) this.skip(); // .ci/run installs socat
      const ether = createMemoryEther();
      const a = createEmulatedDevice({ nodeNum: 0x5501, region: 'EU_868' }, { ether });
      cleanup.push(() => a.close());
      const serialPort = await a.listen(0, '127.0.0.1', { consoleText: true });
      const b = await device(ether, { nodeNum: 0x5502 });
      const pty = join(tmpdir(), `citizen-pty-${process.pid}-${Date.now()}`);
      socat = spawn('socat', [`PTY,link=${pty},raw,echo=0`, `TCP:127.0.0.1:${serialPort}`], { stdio: 'ignore' });
      await waitUntil(() => existsSync(pty), 'socat to make the pty', 3000);
      const ls = createMeshtasticLink(parseLinkSpec(`meshtastic+serial://${pty}`) as MeshtasticSerialLinkSpec, { clock }, fast);
      cleanup.push(() => ls.stop());
      const lt = link(b.port);
      await Promise.all([ls.start(), lt.start()]);
      assert.equal(ls.radioInfo()!.nodeId, '!00005501');
      const [inS, inT] = [collect(ls), collect(lt)];
      await ls.send(Uint8Array.of(1, 2, 3));
      await lt.send(new Uint8Array(233).fill(9));
      await Promise.all([inT.waitFor(1), inS.waitFor(1)]);
      assert.deepEqual(inT.frames[0]!.frame, Uint8Array.of(1, 2, 3));
      assert.deepEqual(inS.frames[0]!.frame, new Uint8Array(233).fill(9));
      assert.ok(ls.bridgeStats().skippedBytes > 0, 'the console text was skipped');
    });
  });
});
