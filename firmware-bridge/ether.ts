/**
 * The "ether" emulated Meshtastic devices transmit into: every device on one ether hears what
 * the others put on air. Two kinds:
 *
 * - a memory ether, for devices in one process (tests);
 * - a UDP ether, `udp://127.0.0.1:PORT`, for devices in several processes (`citizen radio
 *   emulate --ether ...`). Whoever can bind PORT is the hub and relays each packet to every
 *   other member; members say hello every second and are forgotten after a few silent
 *   seconds. If the hub's process goes away, the next member to try binds PORT and takes
 *   over, so devices can come and go in any order.
 *
 * What travels is one air packet, in a versioned layout of our own:
 *
 *   offset  size  field
 *   0       1     version = 1
 *   1       1     kind: 1 = hello (no more bytes), 2 = packet
 *   2       1     region code of the sender (Meshtastic RegionCode)
 *   3       1     modem preset code of the sender (255 = custom modulation)
 *   4       n     the MeshPacket protobuf as the sender put it on air (decoded, not encrypted)
 *
 * `decodeAirMessage` checks every length and throws BridgeError `ETHER_INVALID`; receivers
 * count and skip what it refuses.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { BridgeError } from './errors.ts';

export const AIR_VERSION = 1;
const KIND_HELLO = 1;
const KIND_PACKET = 2;
/** Largest MeshPacket we relay (a full 233-byte payload with every header field fits well). */
export const MAX_AIR_PACKET = 512;

/** One packet on air. */
export interface AirPacket {
  region: number;
  preset: number;
  /** MeshPacket protobuf bytes. */
  packet: Uint8Array;
}

export type AirMessage = { kind: 'hello' } | ({ kind: 'packet' } & AirPacket);

export function encodeAirMessage(message: AirMessage): Uint8Array {
  if (message.kind === 'hello') return Uint8Array.of(AIR_VERSION, KIND_HELLO);
  const { region, preset, packet } = message;
  if (!Number.isInteger(region) || region < 0 || region > 255 || !Number.isInteger(preset) || preset < 0 || preset > 255) {
    throw new BridgeError('ETHER_INVALID', 'region and preset codes must be 0..255');
  }
  if (packet.length > MAX_AIR_PACKET) throw new BridgeError('ETHER_INVALID', `an air packet carries at most ${MAX_AIR_PACKET} bytes`);
  const out = new Uint8Array(4 + packet.length);
  out.set([AIR_VERSION, KIND_PACKET, region, preset]);
  out.set(packet, 4);
  return out;
}

/** Decodes an ether message; throws BridgeError `ETHER_INVALID` on anything else. */
export function decodeAirMessage(bytes: Uint8Array): AirMessage {
  if (!(bytes instanceof Uint8Array) || bytes.length < 2) throw new BridgeError('ETHER_INVALID', 'ether message shorter than 2 bytes');
  if (bytes[0] !== AIR_VERSION) throw new BridgeError('ETHER_INVALID', `ether message version ${bytes[0]} is not ${AIR_VERSION}`);
  if (bytes[1] === KIND_HELLO) {
    if (bytes.length !== 2) throw new BridgeError('ETHER_INVALID', 'hello carries no body');
    return { kind: 'hello' };
  }
  if (bytes[1] !== KIND_PACKET) throw new BridgeError('ETHER_INVALID', `unknown ether message kind ${bytes[1]}`);
  if (bytes.length < 4) throw new BridgeError('ETHER_INVALID', 'packet message without its header');
  if (bytes.length - 4 > MAX_AIR_PACKET) throw new BridgeError('ETHER_INVALID', 'air packet too large');
  return { kind: 'packet', region: bytes[2]!, preset: bytes[3]!, packet: bytes.slice(4) };
}

/** One device's attachment to an ether. */
export interface EtherPort {
  /** Puts a packet on air; every other port of the ether hears it (asynchronously). */
  transmit(packet: AirPacket): void;
  /** Detaches; nothing is heard afterwards. */
  close(): Promise<void>;
}

/** An ether devices can attach to. */
export interface Ether {
  /** `hear` is called for each packet another port transmits. */
  attach(hear: (packet: AirPacket) => void): Promise<EtherPort>;
  /** Packets dropped because they failed to decode. */
  readonly invalid: number;
}

/** An in-process ether. */
export function createMemoryEther(): Ether {
  const ports = new Set<(packet: AirPacket) => void>();
  return {
    invalid: 0,
    async attach(hear) {
      ports.add(hear);
      let open = true;
      return {
        transmit(packet) {
          if (!open) return;
          for (const other of [...ports]) {
            if (other !== hear) setImmediate(() => ports.has(other) && other({ ...packet, packet: packet.packet.slice() }));
          }
        },
        async close() {
          open = false;
          ports.delete(hear);
        },
      };
    },
  };
}

/** Where a UDP ether lives. */
export interface UdpEtherAddress {
  host: string;
  port: number;
}

/** Parses `udp://HOST:PORT` (IPv4 literal). Throws BridgeError `ETHER_SPEC_INVALID`. */
export function parseEtherSpec(spec: string): UdpEtherAddress {
  const m = /^udp:\/\/([0-9.]+):(\d{1,5})$/.exec(spec);
  if (!m || isIP(m[1]!) !== 4 || Number(m[2]) < 1 || Number(m[2]) > 65535) {
    throw new BridgeError('ETHER_SPEC_INVALID', `ether must be udp://IPV4:PORT, e.g. udp://127.0.0.1:4500, got "${spec}"`);
  }
  return { host: m[1]!, port: Number(m[2]) };
}

/** Timings of a UDP ether (tests shorten them). */
export interface UdpEtherOptions {
  helloMs?: number;
  /** A member silent this long is forgotten by the hub. */
  forgetMs?: number;
}

function bindUdp(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', (err) => {
      socket.close();
      reject(err);
    });
    socket.bind(port, host, () => {
      socket.removeAllListeners('error');
      socket.on('error', () => undefined);
      resolve(socket);
    });
  });
}

/** A UDP ether shared between processes (see the file header). */
export function createUdpEther(address: UdpEtherAddress, options: UdpEtherOptions = {}): Ether & { isHub(): boolean } {
  const helloMs = options.helloMs ?? 1000;
  const forgetMs = options.forgetMs ?? 3500;
  let invalid = 0;
  let hub: Socket | undefined;
  const members = new Map<string, { address: string; port: number; seen: number }>();

  function relay(msg: Buffer, from: RemoteInfo): void {
    let message: AirMessage;
    try {
      message = decodeAirMessage(msg);
    } catch {
      invalid++;
      return;
    }
    const key = `${from.address}:${from.port}`;
    const now = Date.now();
    members.set(key, { address: from.address, port: from.port, seen: now });
    if (message.kind !== 'packet') return;
    for (const [k, m] of members) {
      if (now - m.seen > forgetMs) members.delete(k);
      else if (k !== key) hub?.send(msg, m.port, m.address);
    }
  }

  async function tryHub(): Promise<void> {
    if (hub) return;
    try {
      hub = await bindUdp(address.host, address.port);
      hub.on('message', relay);
    } catch {
      // Someone else is the hub.
    }
  }

  return {
    get invalid() {
      return invalid;
    },
    isHub: () => hub !== undefined,
    async attach(hear) {
      await tryHub();
      const socket = await bindUdp(address.host === '0.0.0.0' ? '127.0.0.1' : address.host, 0);
      socket.on('message', (msg, from) => {
        if (from.port !== address.port) return;
        let message: AirMessage;
        try {
          message = decodeAirMessage(msg);
        } catch {
          invalid++;
          return;
        }
        if (message.kind === 'packet') hear({ region: message.region, preset: message.preset, packet: message.packet });
      });
      const hello = () => socket.send(encodeAirMessage({ kind: 'hello' }), address.port, address.host);
      hello();
      const timer = setInterval(() => {
        void tryHub();
        hello();
      }, helloMs);
      timer.unref();
      let open = true;
      return {
        transmit(packet) {
          if (open) socket.send(encodeAirMessage({ kind: 'packet', ...packet }), address.port, address.host);
        },
        async close() {
          if (!open) return;
          open = false;
          clearInterval(timer);
          await new Promise<void>((resolve) => socket.close(() => resolve()));
          if (hub) {
            const h = hub;
            hub = undefined;
            members.clear();
            await new Promise<void>((resolve) => h.close(() => resolve()));
          }
        },
      };
    },
  };
}
