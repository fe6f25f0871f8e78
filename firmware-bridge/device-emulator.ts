/**
 * A software Meshtastic device: it speaks the firmware's client API (stream framing,
 * ToRadio/FromRadio) on TCP like a Wi-Fi board on port 4403, and puts packets "on air" into an
 * ether (./ether.ts) that other emulated devices hear. `citizen radio emulate` runs one; tests
 * run several in one process. What it does, following the firmware's PhoneAPI and router:
 *
 * - `want_config_id`: my_info, own node info, metadata, 8 channels, each config section, each
 *   module config section, the other nodes it has heard, then `config_complete_id` (nonce
 *   69420: no other nodes; 69421: nodes only). Packets reach a client only after that; heard
 *   while no client is ready, up to 32 wait (the firmware's to-phone queue);
 * - a packet from the client: `from` becomes the device's number, a missing id is assigned,
 *   a want-ack broadcast with hop limit 0 gets the default hop limit (as the firmware does),
 *   `hop_start = hop_limit`; answered with a QueueStatus naming its id, then put on air
 *   (held for its LoRa time on air when `airtime` is on), then answered with a Routing ACK
 *   (for a broadcast the firmware's implicit ACK, which clients such as @meshtastic/core wait for). Over 233 bytes of payload: Routing error TOO_LARGE. Region UNSET: the
 *   radio is off, Routing error NO_INTERFACE;
 * - heard packets: duplicates (same sender and id) dropped; other regions and presets are
 *   not heard (different frequency or modulation); with `loss`, that share is lost on air; with hop limit left, rebroadcast once with
 *   one hop less (managed flooding, so a test can see whether a client's packet was flooded);
 * - admin packets to itself: set/get config (LoRa region and preset), owner, channel,
 *   metadata, begin/commit edit; heartbeat: answered with a QueueStatus.
 *
 * It never crashes on input: undecodable frames and protobufs are counted and skipped.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { setTimeout as sleepReal } from 'node:timers/promises';
import { create, fromBinary, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { loraAirtimeMs } from '../radio/lora-airtime.ts';
import { BridgeError } from './errors.ts';
import type { AirPacket, Ether, EtherPort } from './ether.ts';
import {
  Admin,
  BROADCAST_NUM,
  Config,
  CONFIG_ONLY_NONCE,
  decodeAdmin,
  decodeToRadio,
  DEFAULT_HOP_LIMIT,
  encodeAdmin,
  encodeFromRadio,
  MAX_APP_PAYLOAD,
  Mesh,
  modulationOf,
  nodeIdOf,
  NODES_ONLY_NONCE,
  PACKET_HEADER_BYTES,
  Portnums,
  presetCodeOf,
  Telemetry,
  regionCodeOf,
  type MeshPacket,
} from './meshtastic-protocol.ts';
import { createStreamDecoder, encodeStreamFrame } from './stream-codec.ts';

/** Firmware version the emulator reports. */
export const EMULATOR_FIRMWARE_VERSION = '2.6.11.emulated';
const TO_PHONE_QUEUE = 32;
const TX_QUEUE_MAX = 16;
const SEEN_MAX = 512;

export interface EmulatedDeviceOptions {
  /** Node number (default: random, never 0 or broadcast). */
  nodeNum?: number;
  longName?: string;
  shortName?: string;
  /** Region name (EU_868, US, UNSET, ...); default UNSET, as a new radio ships. */
  region?: string;
  /** Modem preset (LongFast, LONG_FAST, ...); default LongFast. */
  preset?: string;
  /** Hold each transmission for its LoRa time on air. Default false (as fast as possible). */
  airtime?: boolean;
  /** Share of heard packets lost on air, 0..1 (default 0). */
  loss?: number;
  /** Random numbers in [0, 1) for loss (default Math.random; tests pass a seeded one). */
  random?: () => number;
  /** Debug text printed when a client starts talking, as a serial console does. */
  consoleText?: boolean;
}

export interface EmulatedDeviceDeps {
  ether: Ether;
  /** Waits for airtime (default: a real timer). */
  sleep?: (ms: number) => Promise<void>;
  log?: (line: string) => void;
}

/** Counters of an emulated device. */
export interface EmulatorStats {
  clientPackets: number;
  transmitted: number;
  heard: number;
  duplicates: number;
  rebroadcasts: number;
  delivered: number;
  badFrames: number;
  skippedBytes: number;
  adminMessages: number;
  refused: number;
  /** Heard packets dropped by the `loss` option. */
  lost: number;
}

/** An emulated device. */
export interface EmulatedDevice {
  readonly nodeNum: number;
  /** Region name (firmware spelling) and preset code in force. */
  readonly region: string;
  readonly preset: string;
  /** Starts answering clients on TCP; resolves with the bound port. */
  listen(port: number, host?: string, options?: { consoleText?: boolean }): Promise<number>;
  /** Serves one client over an already connected socket. */
  serve(socket: Socket, options?: { consoleText?: boolean }): void;
  /** Connected clients. */
  clientCount(): number;
  /** Drops every client connection (as when the radio reboots), keeps listening. */
  dropClients(): void;
  /**
   * Sends its clients device metrics from itself (TELEMETRY_APP), as the firmware does every
   * few minutes: air_util_tx from what it transmitted, unless given.
   */
  reportTelemetry(override?: { airUtilTx?: number; channelUtilization?: number }): void;
  /** Each packet a client handed over, after the firmware's adjustments. */
  onClientPacket(listener: (packet: MeshPacket) => void): () => void;
  stats(): EmulatorStats;
  /** Stops listening, drops clients, leaves the ether. */
  close(): Promise<void>;
}

interface Session {
  socket: Socket;
  ready: boolean;
  fromRadioId: number;
}

function randomNodeNum(): number {
  for (;;) {
    const n = randomInt(1, 0xffffffff);
    if (n > 3) return n;
  }
}

class EmulatedDeviceImpl implements EmulatedDevice {
  readonly nodeNum: number;
  readonly #user: Mesh.User;
  readonly #lora: Config.Config_LoRaConfig;
  readonly #options: EmulatedDeviceOptions;
  readonly #deps: EmulatedDeviceDeps;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #sessions = new Set<Session>();
  readonly #servers = new Set<Server>();
  readonly #toPhone: MeshPacket[] = [];
  readonly #nodes = new Map<number, { user?: Mesh.User; lastHeard: number; snr: number }>();
  readonly #seen: string[] = [];
  readonly #seenSet = new Set<string>();
  readonly #listeners = new Set<(packet: MeshPacket) => void>();
  readonly #stats: EmulatorStats = {
    clientPackets: 0,
    transmitted: 0,
    heard: 0,
    duplicates: 0,
    rebroadcasts: 0,
    delivered: 0,
    badFrames: 0,
    skippedBytes: 0,
    adminMessages: 0,
    refused: 0,
    lost: 0,
  };
  #port: EtherPort | undefined;
  #attaching: Promise<EtherPort> | undefined;
  #txQueue: Promise<void> = Promise.resolve();
  #txPending = 0;
  #txAirtimeMs = 0;
  #closed = false;

  constructor(options: EmulatedDeviceOptions, deps: EmulatedDeviceDeps) {
    this.nodeNum = options.nodeNum ?? randomNodeNum();
    if (options.loss !== undefined && !(options.loss >= 0 && options.loss <= 1)) {
      throw new BridgeError('EMULATOR_OPTIONS_INVALID', `loss must be a share 0..1, got ${options.loss}`);
    }
    if (!Number.isInteger(this.nodeNum) || this.nodeNum <= 3 || this.nodeNum >= BROADCAST_NUM) {
      throw new BridgeError('EMULATOR_OPTIONS_INVALID', `node number must be 4..0xfffffffe, got ${options.nodeNum}`);
    }
    const id = nodeIdOf(this.nodeNum);
    this.#user = create(Mesh.UserSchema, {
      id,
      longName: options.longName ?? `Emulated ${id.slice(-4)}`,
      shortName: options.shortName ?? id.slice(-4),
      hwModel: Mesh.HardwareModel.PORTDUINO,
    });
    this.#lora = create(Config.Config_LoRaConfigSchema, {
      usePreset: true,
      modemPreset: presetCodeOf(options.preset ?? 'LongFast'),
      region: regionCodeOf(options.region ?? 'UNSET'),
      hopLimit: DEFAULT_HOP_LIMIT,
      txEnabled: true,
      txPower: 0,
    });
    this.#options = options;
    this.#deps = deps;
    this.#sleep = deps.sleep ?? ((ms) => sleepReal(ms).then(() => undefined));
  }

  get region(): string {
    return Config.Config_LoRaConfig_RegionCode[this.#lora.region] ?? String(this.#lora.region);
  }

  get preset(): string {
    return Config.Config_LoRaConfig_ModemPreset[this.#lora.modemPreset] ?? String(this.#lora.modemPreset);
  }

  #log(line: string): void {
    this.#deps.log?.(`[${nodeIdOf(this.nodeNum)}] ${line}`);
  }

  async #ether(): Promise<EtherPort> {
    if (this.#port) return this.#port;
    this.#attaching ??= this.#deps.ether.attach((air) => this.#hear(air));
    this.#port = await this.#attaching;
    return this.#port;
  }

  async listen(port: number, host = '127.0.0.1', options: { consoleText?: boolean } = {}): Promise<number> {
    if (this.#closed) throw new BridgeError('EMULATOR_CLOSED', 'the emulated device is closed');
    await this.#ether();
    const server = createServer((socket) => this.serve(socket, options));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.#log(`server error: ${err.message}`));
    this.#servers.add(server);
    const address = server.address();
    return typeof address === 'object' && address ? address.port : port;
  }

  serve(socket: Socket, options: { consoleText?: boolean } = {}): void {
    void this.#ether();
    const session: Session = { socket, ready: false, fromRadioId: 0 };
    this.#sessions.add(session);
    socket.setNoDelay(true);
    const decoder = createStreamDecoder({
      onFrame: (payload) => this.#fromClient(session, payload),
      onText: () => undefined,
    });
    // A serial console prints its log until the client starts talking; printed on the first
    // bytes from the client, since a serial port flushes what arrived before it was opened.
    let printConsole = options.consoleText ?? this.#options.consoleText ?? false;
    socket.on('data', (chunk) => {
      if (printConsole) {
        printConsole = false;
        socket.write(`INFO  | ??:??:?? 0 Emulated Meshtastic ${EMULATOR_FIRMWARE_VERSION}\r\nDEBUG | ??:??:?? 0 [Router] node ${nodeIdOf(this.nodeNum)}\r\n`);
      }
      const before = decoder.stats().skippedBytes;
      decoder.push(chunk);
      this.#stats.skippedBytes += decoder.stats().skippedBytes - before;
    });
    const end = () => this.#sessions.delete(session);
    socket.on('close', end);
    socket.on('error', end);
  }

  clientCount(): number {
    return this.#sessions.size;
  }

  dropClients(): void {
    for (const s of this.#sessions) s.socket.destroy();
    this.#sessions.clear();
  }

  onClientPacket(listener: (packet: MeshPacket) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  reportTelemetry(override: { airUtilTx?: number; channelUtilization?: number } = {}): void {
    // The firmware counts air_util_tx as the share of the last hour it transmitted, in percent.
    const airUtilTx = override.airUtilTx ?? (this.#txAirtimeMs / 3_600_000) * 100;
    const channelUtilization = override.channelUtilization ?? airUtilTx;
    const telemetry = toBinary(
      Telemetry.TelemetrySchema,
      create(Telemetry.TelemetrySchema, {
        time: Math.floor(Date.now() / 1000),
        variant: { case: 'deviceMetrics', value: { airUtilTx, channelUtilization, uptimeSeconds: 1 } },
      }),
    );
    for (const s of this.#sessions) {
      if (!s.ready) continue;
      this.#toClient(s, {
        from: this.nodeNum,
        to: BROADCAST_NUM,
        id: randomInt(1, 0x7fffffff),
        payloadVariant: { case: 'decoded', value: { portnum: Portnums.PortNum.TELEMETRY_APP, payload: telemetry } },
      });
    }
  }

  stats(): EmulatorStats {
    return { ...this.#stats };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.dropClients();
    await Promise.all([...this.#servers].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    this.#servers.clear();
    const port = this.#port ?? (await this.#attaching?.catch(() => undefined));
    await port?.close();
  }

  // ---- the client side --------------------------------------------------------------

  #send(session: Session, init: Parameters<typeof encodeFromRadio>[0]): void {
    if (session.socket.destroyed) return;
    session.fromRadioId++;
    session.socket.write(encodeStreamFrame(encodeFromRadio({ ...init, id: session.fromRadioId })));
  }

  #fromClient(session: Session, payload: Uint8Array): void {
    let message;
    try {
      message = decodeToRadio(payload);
    } catch {
      this.#stats.badFrames++;
      return;
    }
    const v = message.payloadVariant;
    switch (v.case) {
      case 'wantConfigId':
        this.#sendConfig(session, v.value);
        break;
      case 'packet':
        this.#clientPacket(session, v.value);
        break;
      case 'heartbeat':
        this.#send(session, { payloadVariant: { case: 'queueStatus', value: this.#queueStatus(0, 0) } });
        break;
      case 'disconnect':
        session.socket.end();
        break;
      default:
        this.#stats.badFrames++;
    }
  }

  #queueStatus(res: number, meshPacketId: number) {
    return { res, free: Math.max(0, TX_QUEUE_MAX - this.#txPending), maxlen: TX_QUEUE_MAX, meshPacketId };
  }

  #nodeInfo(num: number): Mesh.NodeInfo {
    if (num === this.nodeNum) return create(Mesh.NodeInfoSchema, { num, user: this.#user, lastHeard: Math.floor(Date.now() / 1000) });
    const n = this.#nodes.get(num);
    const user = n?.user ?? create(Mesh.UserSchema, { id: nodeIdOf(num), longName: `Meshtastic ${nodeIdOf(num).slice(-4)}`, shortName: nodeIdOf(num).slice(-4) });
    return create(Mesh.NodeInfoSchema, { num, user, snr: n?.snr ?? 0, lastHeard: n?.lastHeard ?? 0, hopsAway: 0 });
  }

  #configSections() {
    return [
      { case: 'device' as const, value: { role: Config.Config_DeviceConfig_Role.CLIENT } },
      { case: 'position' as const, value: {} },
      { case: 'power' as const, value: {} },
      { case: 'network' as const, value: { wifiEnabled: true } },
      { case: 'display' as const, value: {} },
      { case: 'lora' as const, value: this.#lora },
      { case: 'bluetooth' as const, value: { enabled: false } },
      { case: 'security' as const, value: { serialEnabled: true } },
    ];
  }

  #sendConfig(session: Session, nonce: number): void {
    session.ready = false;
    const nodesOnly = nonce === NODES_ONLY_NONCE;
    const configOnly = nonce === CONFIG_ONLY_NONCE;
    this.#send(session, {
      payloadVariant: {
        case: 'myInfo',
        value: { myNodeNum: this.nodeNum, rebootCount: 0, minAppVersion: 30200, deviceId: randomBytes(16), pioEnv: 'native', nodedbCount: this.#nodes.size + 1 },
      },
    });
    this.#send(session, { payloadVariant: { case: 'nodeInfo', value: this.#nodeInfo(this.nodeNum) } });
    if (!nodesOnly) {
      this.#send(session, { payloadVariant: { case: 'metadata', value: this.#metadata() } });
      for (let index = 0; index < 8; index++) this.#send(session, { payloadVariant: { case: 'channel', value: this.#channel(index) } });
      for (const section of this.#configSections()) this.#send(session, { payloadVariant: { case: 'config', value: { payloadVariant: section } } });
      for (const c of ['mqtt', 'serial', 'externalNotification', 'storeForward', 'rangeTest', 'telemetry', 'cannedMessage', 'audio', 'remoteHardware', 'neighborInfo', 'ambientLighting', 'detectionSensor', 'paxcounter'] as const) {
        this.#send(session, { payloadVariant: { case: 'moduleConfig', value: { payloadVariant: { case: c, value: {} } } } });
      }
    }
    if (!configOnly) for (const num of this.#nodes.keys()) this.#send(session, { payloadVariant: { case: 'nodeInfo', value: this.#nodeInfo(num) } });
    this.#send(session, { payloadVariant: { case: 'configCompleteId', value: nonce } });
    session.ready = true;
    for (const packet of this.#toPhone.splice(0)) this.#send(session, { payloadVariant: { case: 'packet', value: packet } });
  }

  #metadata() {
    return {
      firmwareVersion: EMULATOR_FIRMWARE_VERSION,
      deviceStateVersion: 24,
      canShutdown: true,
      hasWifi: true,
      hasBluetooth: false,
      hasEthernet: false,
      role: Config.Config_DeviceConfig_Role.CLIENT,
      hwModel: Mesh.HardwareModel.PORTDUINO,
      hasPKC: false,
    };
  }

  #channel(index: number) {
    return index === 0
      ? { index, role: 1, settings: { psk: Uint8Array.of(1), name: '' } }
      : { index, role: 0, settings: {} };
  }

  #toClient(session: Session, packet: MessageInitShape<typeof Mesh.MeshPacketSchema>): void {
    this.#send(session, { payloadVariant: { case: 'packet', value: create(Mesh.MeshPacketSchema, packet) } });
  }

  #routing(session: Session, requestId: number, errorReason: Mesh.Routing_Error): void {
    const routing = toBinary(Mesh.RoutingSchema, create(Mesh.RoutingSchema, { variant: { case: 'errorReason', value: errorReason } }));
    this.#toClient(session, {
      from: this.nodeNum,
      to: this.nodeNum,
      id: randomInt(1, 0x7fffffff),
      payloadVariant: { case: 'decoded', value: { portnum: Portnums.PortNum.ROUTING_APP, payload: routing, requestId } },
      priority: Mesh.MeshPacket_Priority.ACK,
    });
  }

  #clientPacket(session: Session, p: MeshPacket): void {
    this.#stats.clientPackets++;
    if (p.id === 0) p.id = randomInt(1, 0x7fffffff);
    if (p.to === this.nodeNum || p.to === 0) {
      this.#send(session, { payloadVariant: { case: 'queueStatus', value: this.#queueStatus(0, p.id) } });
      if (p.payloadVariant.case === 'decoded' && p.payloadVariant.value.portnum === Portnums.PortNum.ADMIN_APP) this.#admin(session, p);
      return;
    }
    p.from = this.nodeNum;
    if (p.hopLimit === 0 && p.wantAck && p.to === BROADCAST_NUM) p.hopLimit = this.#lora.hopLimit || DEFAULT_HOP_LIMIT;
    if (p.hopLimit > 7) p.hopLimit = 7;
    p.hopStart = p.hopLimit;
    for (const l of this.#listeners) l(p);
    const decoded = p.payloadVariant.case === 'decoded' ? p.payloadVariant.value : undefined;
    const fail = (reason: Mesh.Routing_Error) => {
      this.#stats.refused++;
      this.#send(session, { payloadVariant: { case: 'queueStatus', value: this.#queueStatus(1, p.id) } });
      this.#routing(session, p.id, reason);
    };
    if (!decoded) return fail(Mesh.Routing_Error.BAD_REQUEST);
    if (decoded.payload.length > MAX_APP_PAYLOAD) return fail(Mesh.Routing_Error.TOO_LARGE);
    if (this.#lora.region === Config.Config_LoRaConfig_RegionCode.UNSET || !this.#lora.txEnabled) return fail(Mesh.Routing_Error.NO_INTERFACE);
    if (this.#txPending >= TX_QUEUE_MAX) return fail(Mesh.Routing_Error.RATE_LIMIT_EXCEEDED);
    this.#remember(p.from, p.id);
    this.#txPending++;
    this.#send(session, { payloadVariant: { case: 'queueStatus', value: this.#queueStatus(0, p.id) } });
    this.#transmit(p).then(
      () => this.#routing(session, p.id, Mesh.Routing_Error.NONE),
      () => undefined,
    );
  }

  #transmit(p: MeshPacket): Promise<void> {
    const run = async () => {
      try {
        const bytes = toBinary(Mesh.MeshPacketSchema, p);
        const payload = p.payloadVariant.case === 'decoded' ? toBinary(Mesh.DataSchema, p.payloadVariant.value).length : 0;
        const airtime = loraAirtimeMs(modulationOf(this.#lora), Math.min(255, payload + PACKET_HEADER_BYTES));
        if (this.#options.airtime) await this.#sleep(airtime);
        const port = await this.#ether();
        if (this.#closed) return;
        port.transmit({ region: this.#lora.region, preset: this.#lora.usePreset ? this.#lora.modemPreset : 255, packet: bytes });
        this.#stats.transmitted++;
        this.#txAirtimeMs += airtime;
      } finally {
        this.#txPending--;
      }
    };
    const done = this.#txQueue.then(run);
    this.#txQueue = done.catch(() => undefined);
    return done;
  }

  #admin(session: Session, p: MeshPacket): void {
    this.#stats.adminMessages++;
    const data = p.payloadVariant.case === 'decoded' ? p.payloadVariant.value : undefined;
    if (!data) return;
    let admin: Admin.AdminMessage;
    try {
      admin = decodeAdmin(data.payload);
    } catch {
      this.#stats.badFrames++;
      return;
    }
    const reply = (init: Parameters<typeof encodeAdmin>[0]) =>
      this.#toClient(session, {
        from: this.nodeNum,
        to: this.nodeNum,
        id: randomInt(1, 0x7fffffff),
        payloadVariant: { case: 'decoded', value: { portnum: Portnums.PortNum.ADMIN_APP, payload: encodeAdmin(init), requestId: p.id } },
      });
    const v = admin.payloadVariant;
    switch (v.case) {
      case 'setConfig':
        if (v.value.payloadVariant.case === 'lora') {
          const lora = v.value.payloadVariant.value;
          Object.assign(this.#lora, {
            usePreset: lora.usePreset,
            modemPreset: lora.modemPreset,
            region: lora.region,
            hopLimit: lora.hopLimit,
            txEnabled: lora.txEnabled,
            txPower: lora.txPower,
            bandwidth: lora.bandwidth,
            spreadFactor: lora.spreadFactor,
            codingRate: lora.codingRate,
          });
          this.#log(`LoRa config set: region ${this.region}, preset ${this.preset}`);
        }
        break;
      case 'setOwner':
        if (v.value.longName) this.#user.longName = v.value.longName.slice(0, 39);
        if (v.value.shortName) this.#user.shortName = v.value.shortName.slice(0, 4);
        break;
      case 'getConfigRequest': {
        const section = this.#configSections()[v.value];
        if (section) reply({ payloadVariant: { case: 'getConfigResponse', value: { payloadVariant: section } } });
        break;
      }
      case 'getDeviceMetadataRequest':
        reply({ payloadVariant: { case: 'getDeviceMetadataResponse', value: this.#metadata() } });
        break;
      case 'getOwnerRequest':
        reply({ payloadVariant: { case: 'getOwnerResponse', value: this.#user } });
        break;
      case 'getChannelRequest':
        if (v.value >= 1 && v.value <= 8) reply({ payloadVariant: { case: 'getChannelResponse', value: this.#channel(v.value - 1) } });
        break;
      case 'beginEditSettings':
      case 'commitEditSettings':
        break;
      default:
        this.#log(`admin message ${String(v.case)} ignored`);
    }
    if (data.wantResponse && !['getConfigRequest', 'getDeviceMetadataRequest', 'getOwnerRequest', 'getChannelRequest'].includes(String(v.case))) {
      this.#routing(session, p.id, Mesh.Routing_Error.NONE);
    }
  }

  // ---- the air side -----------------------------------------------------------------

  #remember(from: number, id: number): boolean {
    const key = `${from}:${id}`;
    if (this.#seenSet.has(key)) return false;
    this.#seenSet.add(key);
    this.#seen.push(key);
    if (this.#seen.length > SEEN_MAX) this.#seenSet.delete(this.#seen.shift()!);
    return true;
  }

  #hear(air: AirPacket): void {
    if (this.#closed) return;
    if (air.region !== this.#lora.region || this.#lora.region === 0) return;
    if (air.preset !== (this.#lora.usePreset ? this.#lora.modemPreset : 255)) return;
    const loss = this.#options.loss ?? 0;
    if (loss > 0 && (this.#options.random ?? Math.random)() < loss) {
      this.#stats.lost++;
      return;
    }
    let p: MeshPacket;
    try {
      p = fromBinary(Mesh.MeshPacketSchema, air.packet);
    } catch {
      this.#stats.badFrames++;
      return;
    }
    if (p.from === this.nodeNum) return;
    if (!this.#remember(p.from, p.id)) {
      this.#stats.duplicates++;
      return;
    }
    this.#stats.heard++;
    const snr = 8;
    const node = this.#nodes.get(p.from) ?? { lastHeard: 0, snr };
    node.lastHeard = Math.floor(Date.now() / 1000);
    const decoded = p.payloadVariant.case === 'decoded' ? p.payloadVariant.value : undefined;
    if (decoded?.portnum === Portnums.PortNum.NODEINFO_APP) {
      try {
        node.user = fromBinary(Mesh.UserSchema, decoded.payload);
      } catch {
        this.#stats.badFrames++;
      }
    }
    this.#nodes.set(p.from, node);
    if (p.hopLimit > 0 && p.to === BROADCAST_NUM) {
      const again = create(Mesh.MeshPacketSchema, { ...p, hopLimit: p.hopLimit - 1 });
      this.#stats.rebroadcasts++;
      this.#txPending++;
      void this.#transmit(again).catch(() => undefined);
    }
    if (p.to !== BROADCAST_NUM && p.to !== this.nodeNum) return;
    const rx = create(Mesh.MeshPacketSchema, { ...p, rxSnr: snr, rxRssi: -90, rxTime: Math.floor(Date.now() / 1000) });
    this.#deliver(rx);
  }

  #deliver(p: MeshPacket): void {
    const ready = [...this.#sessions].filter((s) => s.ready);
    if (ready.length === 0) {
      this.#toPhone.push(p);
      if (this.#toPhone.length > TO_PHONE_QUEUE) this.#toPhone.shift();
      return;
    }
    this.#stats.delivered++;
    for (const s of ready) this.#send(s, { payloadVariant: { case: 'packet', value: p } });
  }
}

/** Builds an emulated device; call `listen()` to serve clients. */
export function createEmulatedDevice(options: EmulatedDeviceOptions, deps: EmulatedDeviceDeps): EmulatedDevice {
  return new EmulatedDeviceImpl(options, deps);
}
