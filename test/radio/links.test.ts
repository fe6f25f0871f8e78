/**
 * Runs the Link contract (link.contract.ts) against the memory link, the UDP link and the UDP
 * link with LoRa emulation, then tests what is particular to each: memory topologies and
 * loss; UDP peers-only, preset airtime holding (fake sleep), IPv6; and the link-spec parser
 * (table of valid and invalid specs, and a seeded fuzz: FC_SEED=<seed> replays it).
 * Only loopback addresses are used.
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import fc from 'fast-check';
import { createLink, parseLinkSpec } from '../../radio/link-spec.ts';
import type { Clock, Link } from '../../radio/link.ts';
import { findPreset, loraAirtimeMs } from '../../radio/lora-airtime.ts';
import { createMemoryMedium } from '../../radio/memory-link.ts';
import { createUdpLink, type UdpEndpoint, type UdpLink, type UdpLinkOptions } from '../../radio/udp-link.ts';
import { collect, describeLinkContract, settle, waitUntil } from './link.contract.ts';

const clock: Clock = { now: () => 1_790_000_000_000 };

function bindSocket(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    socket.once('error', reject);
    socket.bind(port, host, () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}

const closeSocket = (s: Socket) => new Promise<void>((resolve) => s.close(() => resolve()));

/**
 * `n` UDP ports on `host` that were free a moment ago: all bound to port 0 at once (so they
 * differ), read, then closed. Links bind them right after.
 */
async function freeUdpPorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  const sockets = await Promise.all(Array.from({ length: n }, () => bindSocket(host, 0)));
  const ports = sockets.map((s) => s.address().port);
  await Promise.all(sockets.map(closeSocket));
  return ports;
}

/** Links on `host` where each has every other one as peer. */
async function udpMesh(n: number, extra: Partial<UdpLinkOptions> = {}, deps: { sleep?: (ms: number) => Promise<void> } = {}, host = '127.0.0.1'): Promise<UdpLink[]> {
  const ports = await freeUdpPorts(n, host);
  return ports.map((port, i) =>
    createUdpLink(
      { bind: { host, port }, peers: ports.filter((_, j) => j !== i).map((p) => ({ host, port: p })), ...extra },
      { clock, ...deps },
    ),
  );
}

async function udpStopAndCheckReleased(link: Link): Promise<void> {
  const address = (link as UdpLink).address();
  assert.ok(address && address.port > 0);
  await link.stop();
  assert.equal((link as UdpLink).address(), undefined);
  const again = await bindSocket(address.host, address.port); // throws EADDRINUSE if not released
  await closeSocket(again);
}

describeLinkContract('memory', {
  async create(c) {
    const medium = createMemoryMedium({ clock: c });
    return ['a', 'b', 'c'].map((name) => medium.attach(name));
  },
  async stopAndCheckReleased(link) {
    await link.stop();
    await link.start(); // the name stays attached and usable
    await link.stop();
  },
});

describeLinkContract('udp', {
  create: () => udpMesh(3),
  stopAndCheckReleased: udpStopAndCheckReleased,
});

describeLinkContract('udp with preset=ShortTurbo (airtime wait faked)', {
  create: () => udpMesh(3, { preset: findPreset('ShortTurbo') }, { sleep: async () => {} }),
  stopAndCheckReleased: udpStopAndCheckReleased,
});

describe('radio/memory-link', () => {
  it('delivers asynchronously, never from inside send()', async () => {
    const medium = createMemoryMedium({ clock });
    const [a, b] = [medium.attach('a'), medium.attach('b')];
    await Promise.all([a.start(), b.start()]);
    const inbox = collect(b);
    await a.send(Uint8Array.of(1));
    assert.equal(inbox.frames.length, 0);
    await inbox.waitFor(1);
  });

  it('models who hears whom: a line a - b - c', async () => {
    const medium = createMemoryMedium({ clock });
    const [a, b, c] = ['a', 'b', 'c'].map((n) => medium.attach(n)) as [Link, Link, Link];
    medium.disconnect('a', 'c');
    await Promise.all([a, b, c].map((l) => l.start()));
    const [inA, inB, inC] = [collect(a), collect(b), collect(c)];
    await a.send(Uint8Array.of(1));
    await c.send(Uint8Array.of(3));
    await inB.waitFor(2);
    await settle();
    assert.equal(inA.frames.length, 0);
    assert.equal(inC.frames.length, 0);
    medium.connect('c', 'a');
    await a.send(Uint8Array.of(4));
    await inC.waitFor(1);
  });

  it('with hearsAll: false only connected pairs hear each other', async () => {
    const medium = createMemoryMedium({ clock, hearsAll: false });
    const [a, b, c] = ['a', 'b', 'c'].map((n) => medium.attach(n)) as [Link, Link, Link];
    medium.connect('a', 'b');
    await Promise.all([a, b, c].map((l) => l.start()));
    const [inB, inC] = [collect(b), collect(c)];
    await a.send(Uint8Array.of(1));
    await inB.waitFor(1);
    await settle();
    assert.equal(inC.frames.length, 0);
  });

  it('applies the loss function per receiver', async () => {
    const lost: string[] = [];
    const medium = createMemoryMedium({
      clock,
      loss: (from, to) => {
        const drop = to === 'c';
        if (drop) lost.push(`${from}->${to}`);
        return drop;
      },
    });
    const [a, b, c] = ['a', 'b', 'c'].map((n) => medium.attach(n)) as [Link, Link, Link];
    await Promise.all([a, b, c].map((l) => l.start()));
    const [inB, inC] = [collect(b), collect(c)];
    await a.send(Uint8Array.of(1));
    await inB.waitFor(1);
    await settle();
    assert.equal(inC.frames.length, 0);
    assert.deepEqual(lost, ['a->c']);
    medium.setLoss(undefined);
    await a.send(Uint8Array.of(2));
    await inC.waitFor(1);
  });

  it('a receiver with a smaller MTU drops and counts a larger frame', async () => {
    const medium = createMemoryMedium({ clock });
    const big = medium.attach('big', { mtu: 1000 });
    const small = medium.attach('small');
    assert.throws(() => medium.attach('zero', { mtu: 0 }), { code: 'LINK_OPTIONS_INVALID' });
    await Promise.all([big.start(), small.start()]);
    const inbox = collect(small);
    await big.send(new Uint8Array(300));
    await waitUntil(() => small.stats().dropped === 1, 'the large frame to be dropped');
    assert.equal(inbox.frames.length, 0);
  });

  it('reports rssi/snr and airtime when configured; names are unique', async () => {
    const medium = createMemoryMedium({ clock });
    const preset = findPreset('LongFast');
    const a = medium.attach('a', { airtimeMs: (n) => loraAirtimeMs(preset, n) });
    const b = medium.attach('b', { rssi: -110, snr: 4.5 });
    assert.throws(() => medium.attach('a'), { code: 'LINK_NAME_TAKEN' });
    assert.throws(() => medium.attach(''), { code: 'LINK_NAME_INVALID' });
    assert.equal(a.spec, 'memory://a');
    await Promise.all([a.start(), b.start()]);
    const inbox = collect(b);
    await a.send(new Uint8Array(20));
    await inbox.waitFor(1);
    assert.deepEqual(inbox.frames[0]!.meta, { from: 'a', receivedAt: clock.now(), rssi: -110, snr: 4.5 });
    assert.equal(a.stats().airtimeMs, loraAirtimeMs(preset, 20));
  });
});

describe('radio/udp-link', () => {
  const started: Link[] = [];
  afterEach(async () => {
    await Promise.all(started.splice(0).map((l) => l.stop()));
  });

  it('drops and counts frames from an address that is not a peer', async () => {
    const [a, b] = await udpMesh(2);
    started.push(a!, b!);
    await Promise.all([a!.start(), b!.start()]);
    const inbox = collect(a!);
    const stranger = await bindSocket('127.0.0.1', 0);
    try {
      await new Promise<void>((resolve, reject) =>
        stranger.send(Uint8Array.of(6, 6, 6), a!.address()!.port, '127.0.0.1', (err) => (err ? reject(err) : resolve())),
      );
      await waitUntil(() => a!.stats().dropped === 1, 'the stranger frame to be dropped');
      assert.equal(inbox.frames.length, 0);
      assert.equal(a!.stats().framesIn, 0);
      await b!.send(Uint8Array.of(1));
      await inbox.waitFor(1);
      assert.equal(inbox.frames[0]!.meta.from, `127.0.0.1:${b!.address()!.port}`);
    } finally {
      await closeSocket(stranger);
    }
  });

  it('with a preset: MTU 255, LoRa bit rate, sends serialised and held for their airtime (fake sleep)', async () => {
    const preset = findPreset('ShortTurbo');
    const sleeps: { ms: number; release: () => void }[] = [];
    const sleep = (ms: number) => new Promise<void>((release) => sleeps.push({ ms, release }));
    const hooked: number[] = [];
    const [a, b] = await udpMesh(2, { preset, beforeSend: async (ms) => void hooked.push(ms) }, { sleep });
    started.push(a!, b!);
    await Promise.all([a!.start(), b!.start()]);
    assert.equal(a!.mtu, 255);
    assert.ok(Math.abs(a!.bitRate - 21875) < 1, `ShortTurbo raw bit rate, got ${a!.bitRate}`);
    const inbox = collect(b!);
    const air10 = loraAirtimeMs(preset, 10);
    const air40 = loraAirtimeMs(preset, 40);
    let firstDone = false;
    const first = a!.send(new Uint8Array(10).fill(1)).then(() => (firstDone = true));
    const second = a!.send(new Uint8Array(40).fill(2));
    await waitUntil(() => sleeps.length === 1, 'the first frame to go on air');
    assert.equal(sleeps[0]!.ms, air10);
    assert.deepEqual(hooked, [air10]);
    await settle();
    assert.equal(sleeps.length, 1, 'the second send waits for the first');
    assert.equal(inbox.frames.length, 0, 'nothing arrives before its airtime is over');
    assert.equal(firstDone, false);
    sleeps[0]!.release();
    await first;
    await inbox.waitFor(1);
    await waitUntil(() => sleeps.length === 2, 'the second frame to go on air');
    assert.equal(sleeps[1]!.ms, air40);
    assert.deepEqual(hooked, [air10, air40]);
    sleeps[1]!.release();
    await second;
    await inbox.waitFor(2);
    assert.deepEqual(inbox.frames.map((f) => f.frame.length), [10, 40]);
    assert.equal(a!.stats().airtimeMs, air10 + air40);
  });

  it('with a preset: a beforeSend refusal rejects that send only; a stop while on air rejects LINK_DOWN', async () => {
    const sleeps: (() => void)[] = [];
    let refuse = true;
    const [a, b] = await udpMesh(
      2,
      {
        preset: findPreset('LongFast'),
        beforeSend: async () => {
          if (refuse) throw new Error('over budget');
        },
      },
      { sleep: () => new Promise<void>((release) => sleeps.push(release)) },
    );
    started.push(a!, b!);
    await Promise.all([a!.start(), b!.start()]);
    await assert.rejects(a!.send(Uint8Array.of(1)), /over budget/);
    assert.equal(a!.stats().framesOut, 0);
    refuse = false;
    const onAir = a!.send(Uint8Array.of(2));
    await waitUntil(() => sleeps.length === 1, 'the frame to go on air');
    await a!.stop();
    sleeps[0]!();
    await assert.rejects(onAir, { code: 'LINK_DOWN' });
  });

  it('with a preset and the real timer: a send takes its airtime (bounded: ShortTurbo, 10 bytes ≈ 14 ms)', async () => {
    const preset = findPreset('ShortTurbo');
    const [a, b] = await udpMesh(2, { preset });
    started.push(a!, b!);
    await Promise.all([a!.start(), b!.start()]);
    const airtime = loraAirtimeMs(preset, 10);
    assert.ok(airtime > 5 && airtime < 50, `airtime ${airtime} ms`);
    const t0 = performance.now();
    await a!.send(new Uint8Array(10));
    const elapsed = performance.now() - t0;
    assert.ok(elapsed >= airtime - 1, `held ${elapsed} ms for an airtime of ${airtime} ms`);
    assert.ok(elapsed < 1000, `took ${elapsed} ms`);
  });

  it('works over IPv6 loopback [::1]', async function () {
    let links: UdpLink[];
    try {
      links = await udpMesh(2, {}, {}, '::1');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EADDRNOTAVAIL' || (err as NodeJS.ErrnoException).code === 'EAFNOSUPPORT') this.skip();
      throw err;
    }
    const [a, b] = links as [UdpLink, UdpLink];
    started.push(a, b);
    await Promise.all([a.start(), b.start()]);
    assert.match(a.spec, /^udp:\/\/\[::1\]:\d+\?peer=\[::1\]:\d+$/);
    const inbox = collect(b);
    await a.send(Uint8Array.of(1, 2));
    await inbox.waitFor(1);
    assert.equal(inbox.frames[0]!.meta.from, `[::1]:${a.address()!.port}`);
  });

  it('drops and counts a frame from a peer that is larger than its MTU (preset 255 < 1200)', async () => {
    const [portA, portB] = (await freeUdpPorts(2)) as [number, number];
    const host = '127.0.0.1';
    const lora = createUdpLink({ bind: { host, port: portA }, peers: [{ host, port: portB }], preset: findPreset('ShortTurbo') }, { clock, sleep: async () => {} });
    const fast = createUdpLink({ bind: { host, port: portB }, peers: [{ host, port: portA }] }, { clock });
    started.push(lora, fast);
    await Promise.all([lora.start(), fast.start()]);
    const inbox = collect(lora);
    await fast.send(new Uint8Array(300));
    await waitUntil(() => lora.stats().dropped === 1, 'the oversize frame to be dropped');
    await fast.send(new Uint8Array(255));
    await inbox.waitFor(1);
    assert.equal(inbox.frames.length, 1);
    assert.equal(inbox.frames[0]!.frame.length, 255);
  });

  it('concurrent start() calls bind one socket; stop() during start waits for it', async () => {
    const [a, b] = await udpMesh(2, {});
    started.push(a!, b!);
    let ups = 0;
    a!.on('up', () => ups++);
    await Promise.all([a!.start(), a!.start(), a!.start()]);
    assert.equal(ups, 1);
    const starting = b!.start();
    await b!.stop();
    await starting;
    assert.equal(b!.up, false);
    await udpStopAndCheckReleased(a!);
  });

  it('fails to start with LINK_START_FAILED when the port is taken', async () => {
    const taken = await bindSocket('127.0.0.1', 0);
    try {
      const link = createUdpLink({ bind: { host: '127.0.0.1', port: taken.address().port }, peers: [{ host: '127.0.0.1', port: 9 }] }, { clock });
      await assert.rejects(link.start(), { code: 'LINK_START_FAILED' });
      assert.equal(link.up, false);
    } finally {
      await closeSocket(taken);
    }
  });

  it('rejects bad options with LINK_OPTIONS_INVALID', () => {
    const bind: UdpEndpoint = { host: '127.0.0.1', port: 0 };
    const peer: UdpEndpoint = { host: '127.0.0.1', port: 4000 };
    for (const options of [
      { bind, peers: [] },
      { bind: { host: 'localhost', port: 0 }, peers: [peer] },
      { bind, peers: [{ host: '127.0.0.1', port: 0 }] },
      { bind, peers: [{ host: '::1', port: 4000 }] },
      { bind: { host: '127.0.0.1', port: 70000 }, peers: [peer] },
    ]) {
      assert.throws(() => createUdpLink(options, { clock }), { code: 'LINK_OPTIONS_INVALID' }, JSON.stringify(options));
    }
  });
});

describe('radio/link-spec', () => {
  it('parses udp specs', () => {
    assert.deepEqual(parseLinkSpec('udp://127.0.0.1:4000?peer=127.0.0.1:4001&peer=10.0.0.2:4000'), {
      kind: 'udp',
      spec: 'udp://127.0.0.1:4000?peer=127.0.0.1:4001&peer=10.0.0.2:4000',
      bind: { host: '127.0.0.1', port: 4000 },
      peers: [
        { host: '127.0.0.1', port: 4001 },
        { host: '10.0.0.2', port: 4000 },
      ],
    });
    const lora = parseLinkSpec('udp://0.0.0.0:4000?peer=127.0.0.1:4001&preset=long_fast&region=eu868');
    assert.equal(lora.kind === 'udp' && lora.preset, 'LongFast');
    assert.equal(lora.kind === 'udp' && lora.region, 'EU868');
    const v6 = parseLinkSpec('udp://[::1]:4000?peer=[::1]:4001&peer=%5B::1%5D:4002');
    assert.deepEqual(v6.kind === 'udp' && v6.peers, [
      { host: '::1', port: 4001 },
      { host: '::1', port: 4002 },
    ]);
  });

  it('recognises Meshtastic specs', () => {
    assert.deepEqual(parseLinkSpec('meshtastic+serial:///dev/ttyUSB0'), { kind: 'meshtastic-serial', spec: 'meshtastic+serial:///dev/ttyUSB0', path: '/dev/ttyUSB0' });
    assert.deepEqual(parseLinkSpec('meshtastic+serial://COM3').kind, 'meshtastic-serial');
    assert.deepEqual(parseLinkSpec('meshtastic+tcp://radio.local:4403'), { kind: 'meshtastic-tcp', spec: 'meshtastic+tcp://radio.local:4403', host: 'radio.local', port: 4403 });
    assert.deepEqual(parseLinkSpec('meshtastic+tcp://127.0.0.1'), { kind: 'meshtastic-tcp', spec: 'meshtastic+tcp://127.0.0.1', host: '127.0.0.1', port: 4403 });
    assert.deepEqual(parseLinkSpec('meshtastic+tcp://[::1]:5000'), { kind: 'meshtastic-tcp', spec: 'meshtastic+tcp://[::1]:5000', host: '::1', port: 5000 });
  });

  const invalid: [string, RegExp][] = [
    ['', /SCHEME:\/\//],
    ['127.0.0.1:4000', /SCHEME:\/\//],
    ['tcp://127.0.0.1:4000', /unknown scheme "tcp"/],
    ['udp://127.0.0.1:4000', /at least one peer/],
    ['udp://127.0.0.1?peer=127.0.0.1:4001', /has no port/],
    ['udp://127.0.0.1:99999?peer=127.0.0.1:4001', /outside 0..65535/],
    ['udp://127.0.0.1:4000?peer=127.0.0.1:0', /outside 1..65535/],
    ['udp://127.0.0.1:4000?peer=127.0.0.1:999999', /port 999999 is outside 1..65535/],
    ['meshtastic+tcp://127.0.0.1:999999', /port 999999 is outside/],
    ['meshtastic+serial://%00%0a%3F', /device path contains spaces or control characters/],
    ['meshtastic+serial:///dev/tty%20USB0', /device path contains spaces or control characters/],
    ['udp://127.0.0.1:4x?peer=127.0.0.1:4001', /not a number/],
    ['udp://localhost:4000?peer=127.0.0.1:4001', /must be an IP address/],
    ['udp://::1:4000?peer=[::1]:4001', /must be in brackets/],
    ['udp://[127.0.0.1]:4000?peer=127.0.0.1:4001', /not an IPv6 address/],
    ['udp://127.0.0.1:4000?peer=[::1]:4001', /IP family/],
    ['udp://127.0.0.1:4000?peer=127.0.0.1:4001&peer=127.0.0.1:4001', /given twice/],
    ['udp://127.0.0.1:4000?peer=127.0.0.1:4001&preset=VeryFast', /unknown preset "VeryFast"/],
    ['udp://127.0.0.1:4000?peer=127.0.0.1:4001&preset=LongFast&preset=LongSlow', /preset is given twice/],
    ['udp://127.0.0.1:4000?peer=127.0.0.1:4001&region=EU868', /region only applies with a preset/],
    ['udp://127.0.0.1:4000?peer=127.0.0.1:4001&preset=LongFast&region=EU 868', /not a region name/],
    ['udp://127.0.0.1:4000?peer=127.0.0.1:4001&colour=red', /unknown parameter "colour"/],
    ['udp://127.0.0.1:4000?peer', /has no value/],
    ['udp://127.0.0.1:4000?peer=%E0%A4%A', /percent-encoding/],
    ['udp://127.0.0.1:4000/path?peer=127.0.0.1:4001', /path or fragment/],
    ['meshtastic+serial://', /needs a device path/],
    ['meshtastic+serial:///dev/tty USB0', /spaces/],
    ['meshtastic+tcp://', /has no host/],
    ['meshtastic+tcp://bad_host!:4403', /not a host name or IP address/],
    ['meshtastic+tcp://host:4403/path', /only HOST\[:PORT\]/],
    ['udp://127.0.0.1:4000?peer=' + '1'.repeat(5000), /longer than 4096/],
  ];
  for (const [spec, message] of invalid) {
    it(`rejects ${JSON.stringify(spec.slice(0, 60))}`, () => {
      assert.throws(() => parseLinkSpec(spec), (err: unknown) => {
        assert.equal((err as { code?: unknown }).code, 'LINK_SPEC_INVALID');
        assert.match((err as Error).message, message);
        return true;
      });
    });
  }

  it('fuzz: any string parses or throws RadioError LINK_SPEC_INVALID, nothing else', () => {
    const seed = Number(process.env.FC_SEED ?? 20261126);
    const pieces = fc.constantFrom('udp://', 'meshtastic+serial://', 'meshtastic+tcp://', '127.0.0.1', '[::1]', '[', ']', ':', '4000', '65536', '?', '&', '=', 'peer=', 'preset=', 'region=', 'LongFast', '%', '%zz', '/', '#', ' ');
    const specs = fc.oneof(
      fc.string({ maxLength: 80 }),
      fc.array(pieces, { maxLength: 12 }).map((p) => p.join('')),
      fc.tuple(fc.array(pieces, { maxLength: 8 }), fc.string({ maxLength: 10 })).map(([p, s]) => p.join('') + s),
    );
    try {
      fc.assert(
        fc.property(specs, (spec) => {
          try {
            const parsed = parseLinkSpec(spec);
            assert.ok(['udp', 'meshtastic-serial', 'meshtastic-tcp'].includes(parsed.kind));
          } catch (err) {
            assert.equal((err as { name?: unknown }).name, 'RadioError', String(err));
            assert.equal((err as { code?: unknown }).code, 'LINK_SPEC_INVALID');
          }
        }),
        { seed, numRuns: 2000 },
      );
    } catch (err) {
      console.error(`link-spec fuzz failed; replay with FC_SEED=${seed}`);
      throw err;
    }
  });

  it('createLink builds udp links and refuses the Meshtastic kinds', async () => {
    const link = createLink('udp://127.0.0.1:0?peer=127.0.0.1:9&preset=ShortTurbo', { clock, beforeSend: async () => {} });
    assert.equal(link.spec, 'udp://127.0.0.1:0?peer=127.0.0.1:9&preset=ShortTurbo');
    assert.equal(link.mtu, 255);
    await link.start();
    try {
      assert.ok(link.address()!.port > 0);
    } finally {
      await link.stop();
    }
    assert.equal(createLink('udp://127.0.0.1:0?peer=127.0.0.1:9', { clock }).mtu, 1200);
    assert.throws(() => createLink('meshtastic+tcp://127.0.0.1', { clock }), { code: 'LINK_KIND_UNSUPPORTED' });
    assert.throws(() => createLink('nope', { clock }), { code: 'LINK_SPEC_INVALID' });
  });
});
