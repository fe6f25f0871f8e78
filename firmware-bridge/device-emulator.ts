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
 * - a direct message with want_ack: the ACK comes from the destination, as with the firmware's
 *   reliable router: the device that receives it answers over the air with a Routing ACK
 *   (every copy, so a retransmission is answered too), and the sender's client gets that ACK,
 *   `from` the destination. Unanswered, it is sent again up to 3 times, `ackTimeoutMs` apart,
 *   then the client gets Routing error MAX_RETRANSMIT;
 * - a packet to the device itself: admin is answered (below); anything else asking for an ACK
 *   (want_ack or want_response) gets a Routing ACK, as the firmware does when no module replied;
 * - a packet heard for this device asking for a response: traceroute answered with the route
 *   and SNRs (the requester adds the SNR back), telemetry with device metrics, node info with
 *   the owner, position with the fixed position if one is set; anything else (a position
 *   without one) with Routing NO_RESPONSE, as the firmware's modules do;
 * - heard packets: duplicates (same sender and id) dropped; other regions and presets are
 *   not heard (different frequency or modulation); with `loss`, that share is lost on air; with hop limit left, rebroadcast once with
 *   one hop less (managed flooding, so a test can see whether a client's packet was flooded);
 * - admin packets to itself: set/get of every config and module config section, owner,
 *   channels, canned messages and ringtone (what is set is kept and sent to later clients),
 *   metadata, session key (each admin answer carries the device's session passkey, as the
 *   firmware's do), fixed position (then its own node info and position answers carry it),
 *   node DB removal and reset, reboot (clients dropped after the delay),
 *   begin/commit edit; a get request for something
 *   it does not have is answered with Routing error BAD_REQUEST, never left unanswered;
 *   heartbeat: answered with a QueueStatus; after one that said the TX queue was full, another
 *   (packet id 0) as soon as a slot is free, as the firmware does.
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
  Channel,
  Config,
  CONFIG_ONLY_NONCE,
  decodeAdmin,
  decodeToRadio,
  DEFAULT_HOP_LIMIT,
  encodeAdmin,
  encodeFromRadio,
  MAX_APP_PAYLOAD,
  Mesh,
  ModuleConfig,
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
import { createStreamDecoder, encodeStreamFrame, MAX_FRAME_PAYLOAD } from './stream-codec.ts';

/** Firmware version the emulator reports. */
export const EMULATOR_FIRMWARE_VERSION = '2.6.11.emulated';
const TO_PHONE_QUEUE = 32;
const TX_QUEUE_MAX = 16;
const SEEN_MAX = 512;
/** Retransmissions of an unacknowledged direct message before the NAK (the firmware's 3). */
const DM_RETRANSMISSIONS = 3;
/** LocalConfig sections in AdminMessage.ConfigType order (DEVICE_CONFIG = 0 ... SECURITY_CONFIG = 7). */
const CONFIG_SECTIONS = ['device', 'position', 'power', 'network', 'display', 'lora', 'bluetooth', 'security'] as const;
/** Module config sections in AdminMessage.ModuleConfigType order (MQTT_CONFIG = 0 ... PAXCOUNTER_CONFIG = 12). */
const MODULE_SECTIONS = [
  'mqtt',
  'serial',
  'externalNotification',
  'storeForward',
  'rangeTest',
  'telemetry',
  'cannedMessage',
  'audio',
  'remoteHardware',
  'neighborInfo',
  'ambientLighting',
  'detectionSensor',
  'paxcounter',
] as const;
type ConfigSection = (typeof CONFIG_SECTIONS)[number];
type ModuleSection = (typeof MODULE_SECTIONS)[number];
const SESSIONKEY_CONFIG = 8;
/**
 * Largest admin set message (one config section, channel, owner, ...) it accepts from a client.
 * The firmware's own field limits keep the largest sections (security keys, MQTT credentials)
 * near 250 bytes; one of 400 still fits, with its packet headers, in the 512-byte frame that
 * answers a get request for it.
 */
const MAX_SECTION_BYTES = 400;

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
  /** How long a direct message with want_ack waits for its ACK before it is sent again (default 4000 ms, more with `airtime`). */
  ackTimeoutMs?: number;
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
  /** Messages for a client too large for a stream frame (512 bytes): dropped, never sent. */
  tooLarge: number;
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

/** A Routing message carrying an error reason (NONE is an ACK); the field is always written, even for NONE. */
function routingPayload(errorReason: Mesh.Routing_Error): Uint8Array {
  return toBinary(Mesh.RoutingSchema, create(Mesh.RoutingSchema, { variant: { case: 'errorReason', value: errorReason } }));
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
  /** Config sections other than lora (kept in #lora), as last set. */
  readonly #config = new Map<ConfigSection, object>();
  readonly #moduleConfig = new Map<ModuleSection, object>();
  readonly #channels: MessageInitShape<typeof Channel.ChannelSchema>[] = [];
  /** Canned messages and ringtone, as last set by a client. */
  #cannedMessages = '';
  /** Its own position: only a fixed one set by a client (it has no GPS). */
  #position: Mesh.Position | undefined;
  #ringtone = '';
  /** The session passkey each admin answer carries (the firmware's admin session key). */
  readonly #passkey = randomBytes(8);
  /** Direct messages with want_ack awaiting the destination's ACK, by packet id. */
  readonly #awaitingAck = new Map<number, { to: number; timer?: ReturnType<typeof setTimeout> }>();
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
    tooLarge: 0,
  };
  #port: EtherPort | undefined;
  #attaching: Promise<EtherPort> | undefined;
  #txQueue: Promise<void> = Promise.resolve();
  #txPending = 0;
  #txAirtimeMs = 0;
  /** A QueueStatus with no free slot went to a client, and none with room since. */
  #reportedFull = false;
  readonly #startedAt = Date.now();
  #rebootTimer: ReturnType<typeof setTimeout> | undefined;
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
    this.#config.set('device', create(Config.Config_DeviceConfigSchema, { role: Config.Config_DeviceConfig_Role.CLIENT }));
    this.#config.set('network', create(Config.Config_NetworkConfigSchema, { wifiEnabled: true }));
    this.#config.set('bluetooth', create(Config.Config_BluetoothConfigSchema, { enabled: false }));
    this.#config.set('security', create(Config.Config_SecurityConfigSchema, { serialEnabled: true }));
    for (let index = 0; index < 8; index++) {
      this.#channels.push(index === 0 ? { index, role: Channel.Channel_Role.PRIMARY, settings: { psk: Uint8Array.of(1), name: '' } } : { index, role: Channel.Channel_Role.DISABLED, settings: {} });
    }
    if (options.ackTimeoutMs !== undefined && !(Number.isFinite(options.ackTimeoutMs) && options.ackTimeoutMs > 0)) {
      throw new BridgeError('EMULATOR_OPTIONS_INVALID', `ackTimeoutMs must be a positive number of milliseconds, got ${options.ackTimeoutMs}`);
    }
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
    const telemetry = this.#deviceMetrics(override);
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

  /** A Telemetry protobuf with device metrics: air_util_tx from what it transmitted, unless given. */
  #deviceMetrics(override: { airUtilTx?: number; channelUtilization?: number } = {}): Uint8Array {
    // The firmware counts air_util_tx as the share of the last hour it transmitted, in percent.
    const airUtilTx = override.airUtilTx ?? (this.#txAirtimeMs / 3_600_000) * 100;
    const channelUtilization = override.channelUtilization ?? airUtilTx;
    const uptimeSeconds = Math.max(1, Math.round((Date.now() - this.#startedAt) / 1000));
    return toBinary(
      Telemetry.TelemetrySchema,
      create(Telemetry.TelemetrySchema, {
        time: Math.floor(Date.now() / 1000),
        variant: { case: 'deviceMetrics', value: { airUtilTx, channelUtilization, uptimeSeconds } },
      }),
    );
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#rebootTimer);
    for (const pending of this.#awaitingAck.values()) clearTimeout(pending.timer);
    this.#awaitingAck.clear();
    this.dropClients();
    await Promise.all([...this.#servers].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    this.#servers.clear();
    const port = this.#port ?? (await this.#attaching?.catch(() => undefined));
    await port?.close();
  }

  // ---- the client side --------------------------------------------------------------

  #send(session: Session, init: Parameters<typeof encodeFromRadio>[0]): void {
    if (session.socket.destroyed) return;
    const payload = encodeFromRadio({ ...init, id: session.fromRadioId + 1 });
    if (payload.length > MAX_FRAME_PAYLOAD) {
      // Input checks keep this from happening; if it does, one message is lost, not the device.
      this.#stats.tooLarge++;
      this.#log(`a ${String(init.payloadVariant?.case)} message of ${payload.length} bytes does not fit a stream frame; dropped`);
      return;
    }
    session.fromRadioId++;
    session.socket.write(encodeStreamFrame(payload));
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
    const free = Math.max(0, TX_QUEUE_MAX - this.#txPending);
    if (free === 0) this.#reportedFull = true;
    return { res, free, maxlen: TX_QUEUE_MAX, meshPacketId };
  }

  #nodeInfo(num: number): Mesh.NodeInfo {
    if (num === this.nodeNum) {
      return create(Mesh.NodeInfoSchema, { num, user: this.#user, lastHeard: Math.floor(Date.now() / 1000), ...(this.#position ? { position: this.#position } : {}) });
    }
    const n = this.#nodes.get(num);
    const user = n?.user ?? create(Mesh.UserSchema, { id: nodeIdOf(num), longName: `Meshtastic ${nodeIdOf(num).slice(-4)}`, shortName: nodeIdOf(num).slice(-4) });
    return create(Mesh.NodeInfoSchema, { num, user, snr: n?.snr ?? 0, lastHeard: n?.lastHeard ?? 0, hopsAway: 0 });
  }

  /** The config sections in AdminMessage.ConfigType order, as last set. */
  #configSections() {
    return CONFIG_SECTIONS.map((name) => ({ case: name, value: name === 'lora' ? this.#lora : (this.#config.get(name) ?? {}) }) as Config.Config['payloadVariant']);
  }

  /** The module config sections in AdminMessage.ModuleConfigType order, as last set. */
  #moduleSections() {
    return MODULE_SECTIONS.map((name) => ({ case: name, value: this.#moduleConfig.get(name) ?? {} }) as ModuleConfig.ModuleConfig['payloadVariant']);
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
      for (const section of this.#moduleSections()) this.#send(session, { payloadVariant: { case: 'moduleConfig', value: { payloadVariant: section } } });
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
      role: (this.#config.get('device') as Config.Config_DeviceConfig | undefined)?.role ?? Config.Config_DeviceConfig_Role.CLIENT,
      hwModel: Mesh.HardwareModel.PORTDUINO,
      hasPKC: false,
    };
  }

  #channel(index: number) {
    return this.#channels[index]!;
  }

  #toClient(session: Session, packet: MessageInitShape<typeof Mesh.MeshPacketSchema>): void {
    this.#send(session, { payloadVariant: { case: 'packet', value: create(Mesh.MeshPacketSchema, packet) } });
  }

  #routing(session: Session, requestId: number, errorReason: Mesh.Routing_Error): void {
    const routing = routingPayload(errorReason);
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
      const data = p.payloadVariant.case === 'decoded' ? p.payloadVariant.value : undefined;
      const replied = data?.portnum === Portnums.PortNum.ADMIN_APP ? this.#admin(session, p, data) : false;
      // The firmware's reliable router ACKs a want-ack packet to itself when no module replied.
      if (!replied && (p.wantAck || data?.wantResponse)) this.#routing(session, p.id, Mesh.Routing_Error.NONE);
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
    if (p.to !== BROADCAST_NUM && p.wantAck) {
      // Registered before it goes on air: on a memory ether the ACK can come back at once.
      this.#awaitingAck.set(p.id, { to: p.to });
      this.#transmit(p).then(
        () => this.#waitForAck(session, p, DM_RETRANSMISSIONS),
        () => this.#awaitingAck.delete(p.id),
      );
      return;
    }
    this.#transmit(p).then(
      () => this.#routing(session, p.id, Mesh.Routing_Error.NONE),
      () => undefined,
    );
  }

  /**
   * How long a direct message waits for its ACK: `ackTimeoutMs`, else 4 s, plus (with `airtime`)
   * time for a full frame each way, so a slow preset does not retransmit under an ACK on its way.
   */
  #ackTimeoutMs(): number {
    if (this.#options.ackTimeoutMs !== undefined) return this.#options.ackTimeoutMs;
    return 4000 + (this.#options.airtime ? 2 * loraAirtimeMs(modulationOf(this.#lora), 255) : 0);
  }

  /** After a direct message went on air: send it again until its ACK is heard, then NAK. */
  #waitForAck(session: Session, p: MeshPacket, retransmissions: number): void {
    const pending = this.#awaitingAck.get(p.id);
    if (!pending || this.#closed) return; // acknowledged already, or closing
    pending.timer = setTimeout(() => {
      if (this.#awaitingAck.get(p.id) !== pending) return;
      if (retransmissions === 0) {
        this.#awaitingAck.delete(p.id);
        this.#routing(session, p.id, Mesh.Routing_Error.MAX_RETRANSMIT);
        return;
      }
      this.#txPending++;
      this.#transmit(p).then(
        () => this.#waitForAck(session, p, retransmissions - 1),
        () => this.#awaitingAck.delete(p.id),
      );
    }, this.#ackTimeoutMs());
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
        // Told its clients the TX queue was full: say when there is room again, as the firmware's
        // MeshService loop does (clients such as the Python CLI wait for it before sending more).
        if (this.#reportedFull && this.#txPending < TX_QUEUE_MAX) {
          this.#reportedFull = false;
          for (const s of this.#sessions) if (s.ready) this.#send(s, { payloadVariant: { case: 'queueStatus', value: this.#queueStatus(0, 0) } });
        }
      }
    };
    const done = this.#txQueue.then(run);
    this.#txQueue = done.catch(() => undefined);
    return done;
  }

  /**
   * Handles an admin message to the device itself; true when it answered (an admin response
   * or a Routing error), false when the caller should ACK it.
   */
  #admin(session: Session, p: MeshPacket, data: Mesh.Data): boolean {
    this.#stats.adminMessages++;
    const refuse = () => {
      this.#routing(session, p.id, Mesh.Routing_Error.BAD_REQUEST);
      return true;
    };
    let admin: Admin.AdminMessage;
    try {
      admin = decodeAdmin(data.payload);
    } catch {
      this.#stats.badFrames++;
      return refuse();
    }
    const reply = (init: Parameters<typeof encodeAdmin>[0]['payloadVariant']) => {
      this.#toClient(session, {
        from: this.nodeNum,
        to: this.nodeNum,
        id: randomInt(1, 0x7fffffff),
        payloadVariant: {
          case: 'decoded',
          value: { portnum: Portnums.PortNum.ADMIN_APP, payload: encodeAdmin({ payloadVariant: init, sessionPasskey: this.#passkey }), requestId: p.id },
        },
      });
      return true;
    };
    const v = admin.payloadVariant;
    // A set carries one section, so the message's size bounds the section's.
    if (String(v.case).startsWith('set') && data.payload.length > MAX_SECTION_BYTES) return refuse();
    switch (v.case) {
      case 'setConfig': {
        const section = v.value.payloadVariant;
        if (section.case === 'lora') {
          const { $typeName: _, ...lora } = section.value;
          if (Config.Config_LoRaConfig_RegionCode[lora.region] === undefined || Config.Config_LoRaConfig_ModemPreset[lora.modemPreset] === undefined) return refuse();
          Object.assign(this.#lora, lora);
          this.#log(`LoRa config set: region ${this.region}, preset ${this.preset}`);
        } else if (section.case !== undefined && (CONFIG_SECTIONS as readonly string[]).includes(section.case)) {
          this.#config.set(section.case as ConfigSection, section.value);
        } else return refuse();
        return false;
      }
      case 'setModuleConfig': {
        const section = v.value.payloadVariant;
        if (section.case === undefined || !(MODULE_SECTIONS as readonly string[]).includes(section.case)) return refuse();
        this.#moduleConfig.set(section.case as ModuleSection, section.value);
        return false;
      }
      case 'setChannel': {
        const { index } = v.value;
        if (!(index >= 0 && index < 8)) return refuse();
        this.#channels[index] = create(Channel.ChannelSchema, v.value);
        return false;
      }
      case 'setOwner':
        if (v.value.longName) this.#user.longName = v.value.longName.slice(0, 39);
        if (v.value.shortName) this.#user.shortName = v.value.shortName.slice(0, 4);
        return false;
      case 'setCannedMessageModuleMessages':
        this.#cannedMessages = v.value.slice(0, 200);
        return false;
      case 'setRingtoneMessage':
        this.#ringtone = v.value.slice(0, 230);
        return false;
      case 'setFixedPosition': {
        // As the firmware: the position becomes the node's own, and position.fixed_position is set.
        const { latitudeI, longitudeI, altitude } = v.value;
        this.#position = create(Mesh.PositionSchema, { latitudeI, longitudeI, altitude, time: Math.floor(Date.now() / 1000), precisionBits: 32 });
        this.#config.set('position', create(Config.Config_PositionConfigSchema, { ...(this.#config.get('position') ?? {}), fixedPosition: true }));
        return false;
      }
      case 'removeFixedPosition':
        this.#position = undefined;
        this.#config.set('position', create(Config.Config_PositionConfigSchema, { ...(this.#config.get('position') ?? {}), fixedPosition: false }));
        return false;
      case 'removeByNodenum':
        this.#nodes.delete(v.value);
        return false;
      case 'nodedbReset':
        this.#nodes.clear();
        return false;
      case 'getConfigRequest': {
        if (v.value === SESSIONKEY_CONFIG) return reply({ case: 'getConfigResponse', value: { payloadVariant: { case: 'sessionkey', value: {} } } });
        const section = this.#configSections()[v.value];
        return section ? reply({ case: 'getConfigResponse', value: { payloadVariant: section } }) : refuse();
      }
      case 'getModuleConfigRequest': {
        const section = this.#moduleSections()[v.value];
        return section ? reply({ case: 'getModuleConfigResponse', value: { payloadVariant: section } }) : refuse();
      }
      case 'getDeviceMetadataRequest':
        return reply({ case: 'getDeviceMetadataResponse', value: this.#metadata() });
      case 'getOwnerRequest':
        return reply({ case: 'getOwnerResponse', value: this.#user });
      case 'getChannelRequest':
        return v.value >= 1 && v.value <= 8 ? reply({ case: 'getChannelResponse', value: this.#channel(v.value - 1) }) : refuse();
      case 'getCannedMessageModuleMessagesRequest':
        return reply({ case: 'getCannedMessageModuleMessagesResponse', value: this.#cannedMessages });
      case 'getRingtoneRequest':
        return reply({ case: 'getRingtoneResponse', value: this.#ringtone });
      case 'rebootSeconds':
        // The firmware reboots after that many seconds (a negative number cancels): its clients
        // lose the connection; what was set is kept, as the firmware saves it first.
        clearTimeout(this.#rebootTimer);
        if (v.value >= 0) {
          this.#rebootTimer = setTimeout(() => {
            this.#log('rebooting: clients dropped');
            this.dropClients();
          }, v.value * 1000);
        }
        return false;
      case 'beginEditSettings':
      case 'commitEditSettings':
        return false;
      default:
        // Requests it has no answer for get an error rather than an ACK a client would take for one.
        if (String(v.case).endsWith('Request')) {
          this.#log(`admin message ${String(v.case)} not supported`);
          return refuse();
        }
        this.#log(`admin message ${String(v.case)} ignored`);
        return false;
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
    const decoded = p.payloadVariant.case === 'decoded' ? p.payloadVariant.value : undefined;
    const encrypted = p.payloadVariant.case === 'encrypted' ? p.payloadVariant.value.length : 0;
    if ((decoded?.payload.length ?? 0) > MAX_APP_PAYLOAD || encrypted > 255 - PACKET_HEADER_BYTES) {
      // More than one LoRa frame carries: not from a radio (a stray sender on a UDP ether).
      this.#stats.badFrames++;
      return;
    }
    const fresh = this.#remember(p.from, p.id);
    const snr = 8;
    if (p.to === this.nodeNum && decoded) {
      // A request is answered by its module (then no ACK, as in the firmware); the firmware ACKs
      // every copy of a want-ack packet to it, since the sender retransmits when an ACK was lost.
      const answered = fresh && decoded.wantResponse && this.#answerRequest(p, decoded, snr);
      if (p.wantAck && !answered) this.#reply(p, Portnums.PortNum.ROUTING_APP, routingPayload(Mesh.Routing_Error.NONE));
    }
    if (!fresh) {
      this.#stats.duplicates++;
      return;
    }
    this.#stats.heard++;
    if (p.to === this.nodeNum && decoded && decoded.requestId !== 0) {
      // An ACK, a NAK or a module's answer ends the wait for an ACK (the firmware's reliable router).
      const pending = this.#awaitingAck.get(decoded.requestId);
      if (pending && pending.to === p.from) {
        clearTimeout(pending.timer);
        this.#awaitingAck.delete(decoded.requestId);
      }
      // The requester adds the SNR it heard the traceroute answer at, as the firmware's module does.
      if (decoded.portnum === Portnums.PortNum.TRACEROUTE_APP) {
        try {
          const route = fromBinary(Mesh.RouteDiscoverySchema, decoded.payload);
          route.snrBack.push(snr * 4);
          decoded.payload = toBinary(Mesh.RouteDiscoverySchema, route);
        } catch {
          this.#stats.badFrames++;
        }
      }
    }
    const node = this.#nodes.get(p.from) ?? { lastHeard: 0, snr };
    node.lastHeard = Math.floor(Date.now() / 1000);
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

  /**
   * Answers a want-response packet heard for this device as the firmware's modules do:
   * traceroute with the route and the SNR it was heard at, telemetry with device metrics, node
   * info with the owner, position with the fixed position if one is set; anything else with
   * Routing NO_RESPONSE (no module answered). Either answer stands in for the ACK.
   */
  #answerRequest(p: MeshPacket, data: Mesh.Data, snr: number): boolean {
    switch (data.portnum) {
      case Portnums.PortNum.TRACEROUTE_APP: {
        let route: Mesh.RouteDiscovery;
        try {
          route = fromBinary(Mesh.RouteDiscoverySchema, data.payload);
        } catch {
          route = create(Mesh.RouteDiscoverySchema);
        }
        route.snrTowards.push(snr * 4);
        this.#reply(p, data.portnum, toBinary(Mesh.RouteDiscoverySchema, route));
        return true;
      }
      case Portnums.PortNum.TELEMETRY_APP:
        this.#reply(p, data.portnum, this.#deviceMetrics());
        return true;
      case Portnums.PortNum.NODEINFO_APP:
        this.#reply(p, data.portnum, toBinary(Mesh.UserSchema, this.#user));
        return true;
      case Portnums.PortNum.POSITION_APP:
        // No GPS: only a fixed position set by a client is known; without one, no module answers.
        if (!this.#position) break;
        this.#reply(p, data.portnum, toBinary(Mesh.PositionSchema, this.#position));
        return true;
      default:
        break;
    }
    this.#reply(p, Portnums.PortNum.ROUTING_APP, routingPayload(Mesh.Routing_Error.NO_RESPONSE));
    return true;
  }

  /** Puts on air an answer to packet `p` (an ACK, an error, a module's reply) from this device to its sender. */
  #reply(p: MeshPacket, portnum: Portnums.PortNum, payload: Uint8Array): void {
    const hopLimit = this.#lora.hopLimit || DEFAULT_HOP_LIMIT;
    const answer = create(Mesh.MeshPacketSchema, {
      from: this.nodeNum,
      to: p.from,
      id: randomInt(1, 0x7fffffff),
      channel: p.channel,
      hopLimit,
      hopStart: hopLimit,
      priority: portnum === Portnums.PortNum.ROUTING_APP ? Mesh.MeshPacket_Priority.ACK : Mesh.MeshPacket_Priority.RELIABLE,
      payloadVariant: { case: 'decoded', value: { portnum, payload, requestId: p.id } },
    });
    this.#remember(answer.from, answer.id);
    this.#txPending++;
    void this.#transmit(answer).catch(() => undefined);
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
