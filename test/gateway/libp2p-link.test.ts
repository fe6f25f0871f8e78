/**
 * The libp2p link (gateway/libp2p-link.ts): the shared Link contract on 127.0.0.1, a plain
 * js-libp2p node (built here, not the project's code) that dials and pings it, and hostile
 * peers — a garbage stream, an oversized frame, a flood of connections — refused, counted,
 * while the link keeps serving.
 */
import assert from 'node:assert/strict';
import { createServer, connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify } from '@libp2p/identify';
import { ping } from '@libp2p/ping';
import { tcp } from '@libp2p/tcp';
import { multiaddr } from '@multiformats/multiaddr';
import { createLibp2p } from 'libp2p';
import type { Clock } from '../../radio/link.ts';
import { createLibp2pLink, encodeFrameHeader, FrameDecoder, peerIdOfSeed, SYNC_PROTOCOL, type Libp2pLink, type Libp2pLinkOptions } from '../../gateway/libp2p-link.ts';
import { freePort } from '../helpers/net.ts';
import { collect, describeLinkContract, waitUntil } from '../radio/link.contract.ts';

const systemClock: Clock = { now: () => Date.now() };

/** `n` links on 127.0.0.1, each configured with every other one as peer. */
async function libp2pMesh(n: number, clock: Clock, extra: Partial<Libp2pLinkOptions> = {}): Promise<Libp2pLink[]> {
  const seeds = Array.from({ length: n }, () => new Uint8Array(randomBytes(32)));
  const ids = await Promise.all(seeds.map(peerIdOfSeed));
  const ports: number[] = [];
  // freePort may hand out a port twice in a row (it is free again once probed): n distinct ones.
  while (ports.length < n) {
    const port = await freePort();
    if (!ports.includes(port)) ports.push(port);
  }
  return Promise.all(
    seeds.map((keySeed, i) =>
      createLibp2pLink(
        {
          keySeed,
          listen: [`/ip4/127.0.0.1/tcp/${ports[i]}`],
          peers: ids.flatMap((id, j) => (j === i ? [] : [`/ip4/127.0.0.1/tcp/${ports[j]}/p2p/${id}`])),
          ...extra,
        },
        { clock },
      ),
    ),
  );
}

/** True once nothing listens on `port` any more (it can be bound again). */
function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

describeLinkContract('libp2p', {
  create: (clock) => libp2pMesh(3, clock),
  async stopAndCheckReleased(link) {
    const port = Number((link as Libp2pLink).addrs()[0]!.split('/')[4]);
    await link.stop();
    assert.equal(await canBind(port), true, `port ${port} is free again`);
  },
});

/** A plain js-libp2p node, as any libp2p tool would be: TCP, Noise, Yamux, identify, ping. */
function plainNode() {
  return createLibp2p({
    addresses: { listen: [] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify(), ping: ping() },
    connectionGater: { denyDialMultiaddr: () => false },
  });
}

describe('libp2p link: ordinary libp2p peers and hostile ones', function () {
  this.timeout(30_000);
  let gateway: Libp2pLink;
  let addr: string;

  beforeEach(async () => {
    gateway = await createLibp2pLink(
      {
        keySeed: new Uint8Array(randomBytes(32)),
        listen: [`/ip4/127.0.0.1/tcp/${await freePort()}`, `/ip4/127.0.0.1/tcp/${await freePort()}/ws`],
        limits: { maxConnectionsPerHost: 6, connectionsPerHostPerSecond: 50, strangerFramesPerSecond: 200, maxBacklogFrames: 1000 },
      },
      { clock: systemClock },
    );
    await gateway.start();
    addr = gateway.addrs().find((a) => !a.includes('/ws'))!;
  });

  afterEach(() => gateway.stop());

  it('tells its peer id and full multiaddrs (TCP and WebSockets) ending in /p2p/<id>', () => {
    const addrs = gateway.addrs();
    assert.equal(addrs.length, 2);
    for (const a of addrs) assert.ok(a.endsWith(`/p2p/${gateway.peerId}`), a);
    assert.ok(addrs.some((a) => a.includes('/ws/')));
  });

  it('a plain js-libp2p node dials the gateway, pings it and sees the sync protocol', async () => {
    const node = await plainNode();
    try {
      const rtt = await node.services.ping.ping(multiaddr(addr));
      assert.ok(rtt >= 0 && rtt < 5000, `rtt ${rtt}`);
      const peer = node.getPeers()[0]!;
      assert.equal(peer.toString(), gateway.peerId);
      await waitUntil(() => node.getConnections(peer).length > 0, 'connection');
      const protocols = (await node.peerStore.get(peer)).protocols;
      assert.ok(protocols.includes(SYNC_PROTOCOL), protocols.join(' '));
      assert.ok(protocols.includes('/ipfs/ping/1.0.0'));
      // Its handshake is over, and a connection that was made is no failed handshake.
      await waitUntil(() => gateway.gatewayStats().handshaking === 0, 'the handshake counted as done');
      await node.hangUp(peer);
      await waitUntil(() => gateway.gatewayStats().connections === 0, 'the connection closed');
      assert.deepEqual(gateway.gatewayStats().refused, {});
    } finally {
      await node.stop();
    }
  });

  it('a plain node can send frames on the sync protocol and hear broadcasts', async () => {
    const node = await plainNode();
    try {
      const inbox = collect(gateway);
      const stream = await node.dialProtocol(multiaddr(addr), SYNC_PROTOCOL);
      const frame = Uint8Array.from([1, 2, 3]);
      const out = new Uint8Array(1 + frame.length);
      out.set(encodeFrameHeader(frame.length));
      out.set(frame, 1);
      stream.send(out);
      await inbox.waitFor(1);
      assert.deepEqual(inbox.frames[0]!.frame, frame);
      assert.equal(inbox.frames[0]!.meta.from, node.peerId.toString());
    } finally {
      await node.stop();
    }
  });

  it('a sync stream the peer closes is closed here too: the peer can open another on the same connection, again and again', async () => {
    const node = await plainNode();
    try {
      const inbox = collect(gateway);
      for (let i = 1; i <= 4; i++) {
        const stream = await node.dialProtocol(multiaddr(addr), SYNC_PROTOCOL);
        stream.send(Uint8Array.from([1, i]));
        await stream.close();
        await inbox.waitFor(i);
      }
      assert.deepEqual(inbox.frames.map((f) => [...f.frame]), [[1], [2], [3], [4]]);
      assert.equal(node.getConnections().length, 1, 'all on one connection');
      const open = () => gateway.node()!.getConnections()[0]!.streams.filter((s) => s.protocol === SYNC_PROTOCOL && s.direction === 'inbound');
      await waitUntil(() => open().length === 0, 'no inbound sync stream left open at the gateway');
    } finally {
      await node.stop();
    }
  });

  it('an oversized frame resets the stream and hangs up; the gateway keeps serving', async () => {
    const node = await plainNode();
    try {
      const stream = await node.dialProtocol(multiaddr(addr), SYNC_PROTOCOL);
      stream.send(encodeFrameHeader(gateway.mtu + 1));
      stream.send(new Uint8Array(1000));
      await waitUntil(() => (gateway.gatewayStats().hung_up.oversized ?? 0) === 1, 'hang-up', 5000);
      assert.equal(gateway.gatewayStats().dropped.oversized, 1);
      assert.equal(gateway.stats().framesIn, 0);
      await waitUntil(() => node.getConnections().length === 0, 'the connection closed', 5000);
      // Still serving: the same (now well-behaved) peer pings again.
      assert.ok((await node.services.ping.ping(multiaddr(addr))) >= 0);
    } finally {
      await node.stop();
    }
  });

  it('a garbage stream (bad length prefix) is refused and counted', async () => {
    const node = await plainNode();
    try {
      const stream = await node.dialProtocol(multiaddr(addr), SYNC_PROTOCOL);
      stream.send(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff]));
      await waitUntil(() => (gateway.gatewayStats().dropped.malformed ?? 0) === 1, 'malformed', 5000);
      assert.equal(gateway.gatewayStats().hung_up.malformed, 1);
    } finally {
      await node.stop();
    }
  });

  it('a stranger over its frame rate is slowed to it, losing nothing', async () => {
    const node = await plainNode();
    try {
      const inbox = collect(gateway);
      const stream = await node.dialProtocol(multiaddr(addr), SYNC_PROTOCOL);
      const began = Date.now();
      for (let i = 0; i < 600; i++) stream.send(Uint8Array.from([2, i >> 8, i & 0xff]));
      await inbox.waitFor(600, 10_000);
      const tookMs = Date.now() - began;
      // The bucket holds two seconds (400 frames); the other 200 come at 200 frames/s.
      assert.ok(tookMs >= 800, `600 frames in ${tookMs} ms`);
      assert.deepEqual(inbox.frames.map((f) => (f.frame[0]! << 8) | f.frame[1]!), Array.from({ length: 600 }, (_, i) => i));
      assert.ok(gateway.gatewayStats().throttled >= 1);
      assert.equal(gateway.stats().dropped, 0);
    } finally {
      await node.stop();
    }
  });

  it('a peer pushing far past its rate at once is hung up on', async () => {
    const node = await plainNode();
    try {
      const stream = await node.dialProtocol(multiaddr(addr), SYNC_PROTOCOL);
      const burst = new Uint8Array(1500 * 2);
      for (let i = 0; i < 1500; i++) burst.set([1, i & 0xff], i * 2);
      stream.send(burst);
      await waitUntil(() => (gateway.gatewayStats().hung_up.rate ?? 0) === 1, 'rate hang-up', 5000);
    } finally {
      await node.stop();
    }
  });

  it('raw TCP garbage and a connection flood are refused and counted; an honest peer still gets in', async () => {
    const port = Number(addr.split('/')[4]);
    const open = (garbage: boolean) => {
      const s = connect(port, '127.0.0.1');
      s.on('error', () => undefined);
      if (garbage) s.write(Buffer.from('\x05hello')); // a multistream-select message without its newline
      return s;
    };
    const garbage = Array.from({ length: 10 }, () => open(true));
    await waitUntil(() => (gateway.gatewayStats().refused['handshake-failed'] ?? 0) === 10, 'garbage refused', 5000);
    // Silent connections hold a handshake slot until they time out: six per host, no more.
    const silent = Array.from({ length: 20 }, () => open(false));
    await waitUntil(() => (gateway.gatewayStats().refused['host-limit'] ?? 0) === 14, 'flood refused', 5000);
    for (const s of [...garbage, ...silent]) s.destroy();
    await waitUntil(() => gateway.gatewayStats().handshaking === 0, 'the flood closed', 5000);
    const node = await plainNode();
    try {
      const rtt = await node.services.ping.ping(multiaddr(addr));
      assert.ok(rtt >= 0, 'the honest peer pings the gateway after the flood');
    } finally {
      await node.stop();
    }
  });

  it('refuses a host opening connections faster than its rate', async () => {
    const port = Number(addr.split('/')[4]);
    const n = 250;
    const began = Date.now();
    const sockets = Array.from({ length: n }, () => {
      const s = connect(port, '127.0.0.1');
      s.on('error', () => undefined);
      s.write(Buffer.from('\x05hello'));
      return s;
    });
    const seen = () => Object.values(gateway.gatewayStats().refused).reduce((a, b) => a + b, 0);
    await waitUntil(() => seen() === n, 'every attempt refused', 10_000);
    const elapsedS = (Date.now() - began) / 1000;
    for (const s of sockets) s.destroy();
    // A burst of 100 (two seconds of 50/s) plus what refilled while the attempts came in.
    const allowed = 100 + Math.ceil(50 * elapsedS);
    assert.ok((gateway.gatewayStats().refused['host-rate'] ?? 0) >= n - allowed, JSON.stringify(gateway.gatewayStats().refused));
  });
});

describe('libp2p frame codec', () => {
  it('refuses a peer multiaddr whose /p2p/ part is not a peer id', async () => {
    await assert.rejects(
      createLibp2pLink({ keySeed: new Uint8Array(32), listen: [], peers: ['/ip4/127.0.0.1/tcp/1/p2p/notapeerid'] }, { clock: systemClock }),
      (err: { code?: string; message: string }) => err.code === 'LINK_OPTIONS_INVALID' && /not a libp2p peer id/.test(err.message),
    );
  });

  it('dials a peer that listens on WebSockets only, and frames go both ways (on Node.js 20 too)', async () => {
    const port = await freePort();
    const listener = await createLibp2pLink({ keySeed: new Uint8Array(randomBytes(32)), listen: [`/ip4/127.0.0.1/tcp/${port}/ws`] }, { clock: systemClock });
    await listener.start();
    const wsAddr = listener.addrs()[0]!;
    assert.match(wsAddr, /\/ws\/p2p\//);
    const dialer = await createLibp2pLink({ keySeed: new Uint8Array(randomBytes(32)), listen: [], peers: [wsAddr] }, { clock: systemClock });
    try {
      const heardByListener = collect(listener);
      const heardByDialer = collect(dialer);
      await dialer.start();
      await waitUntil(() => listener.gatewayStats().connections === 1, 'the WebSockets connection', 10_000);
      await dialer.send(Uint8Array.from([1, 2, 3]));
      await heardByListener.waitFor(1, 10_000);
      assert.deepEqual([...heardByListener.frames[0]!.frame], [1, 2, 3]);
      await listener.send(Uint8Array.from([4, 5]));
      await heardByDialer.waitFor(1, 10_000);
      assert.deepEqual([...heardByDialer.frames[0]!.frame], [4, 5]);
    } finally {
      await dialer.stop();
      await listener.stop();
    }
  });

  it('a peer that has just dialled us hears our answer to its first frame, sent before our sender to it is open', async () => {
    const port = await freePort();
    const listener = await createLibp2pLink({ keySeed: new Uint8Array(randomBytes(32)), listen: [`/ip4/127.0.0.1/tcp/${port}`] }, { clock: systemClock });
    await listener.start();
    const dialer = await createLibp2pLink({ keySeed: new Uint8Array(randomBytes(32)), listen: [], peers: [listener.addrs()[0]!] }, { clock: systemClock });
    try {
      // Answered from inside the frame event: the listener's own stream to the dialer is still opening.
      const off = listener.on('frame', () => {
        off();
        assert.equal(listener.gatewayStats().peers[0]?.sending, false, 'the answer goes before the sender is open');
        void listener.send(Uint8Array.from([9, 9]));
      });
      const heardByDialer = collect(dialer);
      await dialer.start();
      await dialer.send(Uint8Array.from([1]));
      await heardByDialer.waitFor(1, 10_000);
      assert.deepEqual([...heardByDialer.frames[0]!.frame], [9, 9]);
    } finally {
      await dialer.stop();
      await listener.stop();
    }
  });

  it('a port it cannot listen on: a one-line reason, no listener left open, and it comes up once the port is free', async () => {
    const free = await freePort();
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const busy = (taken.address() as { port: number }).port;
    const link = await createLibp2pLink({ keySeed: new Uint8Array(randomBytes(32)), listen: [`/ip4/127.0.0.1/tcp/${free}`, `/ip4/127.0.0.1/tcp/${busy}`] }, { clock: systemClock });
    try {
      await assert.rejects(link.start(), (err: { code?: string; message: string }) => {
        assert.equal(err.code, 'LINK_START_FAILED');
        assert.match(err.message, new RegExp(`cannot listen on /ip4/127\\.0\\.0\\.1/tcp/${busy}: listen EADDRINUSE`));
        assert.doesNotMatch(err.message, /\n|\bat /, 'no stack trace in the message');
        return true;
      });
      assert.equal(link.up, false);
      assert.equal(await canBind(free), true, 'the port it did open was closed again');
      await new Promise<void>((resolve) => taken.close(() => resolve()));
      await link.start();
      assert.equal(link.up, true);
      assert.equal(link.addrs().length, 2);
    } finally {
      taken.close();
      await link.stop();
    }
  });

  it('decodes frames split anywhere and joined anyhow', () => {
    const frames = [new Uint8Array(0), Uint8Array.from([7]), new Uint8Array(300).fill(9), new Uint8Array(16_384).fill(1)];
    const bytes = Buffer.concat(frames.flatMap((f) => [encodeFrameHeader(f.length), f]));
    for (const step of [1, 2, 7, 1000, bytes.length]) {
      const d = new FrameDecoder(16_384);
      const out: Uint8Array[] = [];
      for (let i = 0; i < bytes.length; i += step) out.push(...d.push(bytes.subarray(i, i + step)));
      assert.deepEqual(out, frames);
    }
  });

  it('refuses a length over the MTU and a prefix over 3 bytes', () => {
    assert.throws(() => new FrameDecoder(100).push(encodeFrameHeader(101)), { name: 'GatewayError', code: 'FRAME_OVERSIZED' });
    assert.throws(() => new FrameDecoder(100).push(Uint8Array.from([0x80, 0x80, 0x80, 0x01])), { code: 'FRAME_MALFORMED' });
  });
});
