/**
 * A `Link` over a Meshtastic radio (SPEC §2: `meshtastic+tcp://HOST:4403`,
 * `meshtastic+serial:///dev/ttyUSB0`). The radio's firmware is used as a LoRa modem:
 *
 * - each frame goes out as one MeshPacket broadcast on the private-application port
 *   (PRIVATE_APP, 256) with hop limit 0 and want_ack off, so the firmware neither floods it
 *   nor raises its hop limit (it does that to want-ack broadcasts); our own sync does the
 *   multi-hop work. MTU 233 bytes, the most a Meshtastic data packet carries;
 * - airtime is computed from the radio's real preset (or custom modulation) and region, and
 *   every send passes a duty-cycle governor for that region (or the `beforeSend` hook the
 *   caller gives); sends are serialised and wait while the radio reports a full TX queue;
 *   a send resolves when the radio's QueueStatus says it took the packet;
 * - frames come from PRIVATE_APP broadcasts heard by the radio; other ports, encrypted
 *   packets we cannot read and oversize payloads are counted and skipped;
 * - unplugging, reboots and TCP drops are normal: after the link has been up, a lost
 *   connection emits 'down' and the link reconnects with exponential backoff (0.5 s doubling
 *   to 30 s) until `stop()`, emitting 'up' when the handshake succeeds again;
 * - a radio in region UNSET does not transmit: `start()` rejects with RadioError
 *   `REGION_UNSET` saying how to set the region.
 *
 * The first `start()` fails fast (a radio that is not there is reported, not waited for).
 */
import { randomInt } from 'node:crypto';
import { toBinary, create } from '@bufbuild/protobuf';
import { createDutyCycleGovernor, type DutyCycleGovernor } from '../radio/duty-cycle.ts';
import { RadioError } from '../radio/errors.ts';
import type { MeshtasticSerialLinkSpec, MeshtasticTcpLinkSpec } from '../radio/link-spec.ts';
import { checkOutgoingFrame, createLinkStats, LinkEmitter, type Link, type LinkEvents, type LinkListener, type LinkStats } from '../radio/link.ts';
import { loraAirtimeMs, MAX_LORA_PAYLOAD } from '../radio/lora-airtime.ts';
import { findRegion, limitsAt } from '../radio/region-plan.ts';
import {
  connectMeshtastic,
  defaultTimer,
  type ClientOptions,
  type MeshtasticSession,
  type RadioInfo,
  type Timer,
} from './meshtastic-client.ts';
import { BROADCAST_NUM, decodeRouting, decodeTelemetry, MAX_APP_PAYLOAD, Mesh, nodeIdOf, PACKET_HEADER_BYTES, Portnums, type FromRadio } from './meshtastic-protocol.ts';

/** What a Meshtastic link needs. */
export interface MeshtasticLinkDeps {
  /** Stamps received frames (and drives the duty-cycle window unless `airtimeClock` is given). */
  clock: { now(): number };
  /** Drives the duty-cycle window: real elapsed time in a running node (radio/duty-cycle.ts monotonicClock). */
  airtimeClock?: { now(): number };
  /** Timers for backoff, heartbeats and timeouts (the global ones by default). */
  timer?: Timer;
  /** One line per event worth a person's attention (connects, drops, skipped input). */
  log?: (line: string) => void;
  /**
   * Awaited before each frame with its airtime (ms); replaces the built-in duty-cycle
   * governor of the radio's region (for a daemon that shares one governor between links).
   */
  beforeSend?: (airtimeMs: number) => Promise<void>;
}

/** Tunables (tests shorten them). */
export interface MeshtasticLinkOptions {
  handshakeTimeoutMs?: number;
  /** First reconnect delay; doubles up to `maxBackoffMs`. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** How often to send a heartbeat (the serial API times out after 15 minutes). */
  heartbeatMs?: number;
  /** How long a send waits for the radio's QueueStatus before counting it unconfirmed. */
  queueStatusTimeoutMs?: number;
  /** Overrides how the byte stream is opened (tests). */
  openStream?: ClientOptions['openStream'];
}

/** Counters particular to a Meshtastic link. */
export interface MeshtasticLinkStats {
  /** Packets heard that were not our frames (other ports, not broadcast, encrypted). */
  ignored: number;
  /** Sends the radio refused (QueueStatus res ≠ 0 or a Routing error). */
  refused: number;
  /** Sends the radio never confirmed with a QueueStatus. */
  unconfirmed: number;
  reconnects: number;
  badProtobufs: number;
  skippedBytes: number;
}

/** A Meshtastic link, with what it knows of its radio. */
export interface MeshtasticLink extends Link {
  /** The radio as of the last handshake; undefined before the first. */
  radioInfo(): RadioInfo | undefined;
  /** The radio's own reports: TX queue, air utilisation (percent of the last hour). */
  radioReports(): { queueFree: number; queueMax: number; airUtilTx?: number; channelUtilization?: number };
  bridgeStats(): MeshtasticLinkStats;
}

/** Protobuf bytes around the payload of a PRIVATE_APP Data message (portnum + payload tag/length). */
function dataOverhead(payloadLength: number): number {
  return toBinary(Mesh.DataSchema, create(Mesh.DataSchema, { portnum: Portnums.PortNum.PRIVATE_APP, payload: new Uint8Array(payloadLength) })).length - payloadLength;
}

interface PendingSend {
  id: number;
  settle(error?: Error): void;
}

class MeshtasticLinkImpl implements MeshtasticLink {
  readonly spec: string;
  readonly mtu = MAX_APP_PAYLOAD;
  readonly mode = 'broadcast' as const;
  readonly #target: MeshtasticSerialLinkSpec | MeshtasticTcpLinkSpec;
  readonly #deps: MeshtasticLinkDeps;
  readonly #options: MeshtasticLinkOptions;
  readonly #timer: Timer;
  readonly #events = new LinkEmitter();
  readonly #stats = createLinkStats();
  readonly #bridge: MeshtasticLinkStats = { ignored: 0, refused: 0, unconfirmed: 0, reconnects: 0, badProtobufs: 0, skippedBytes: 0 };
  #session: MeshtasticSession | undefined;
  #info: RadioInfo | undefined;
  #governor: DutyCycleGovernor | undefined;
  #governorKey = '';
  #starting: Promise<void> | undefined;
  /** True from a successful start until stop(): the link wants to be up and reconnects. */
  #wanted = false;
  #backoffMs: number;
  #reconnectHandle: unknown;
  #heartbeatHandle: unknown;
  #queue: Promise<unknown> = Promise.resolve();
  #pending: PendingSend | undefined;
  #queueFree = 1;
  #queueMax = 0;
  #queueWaiters: (() => void)[] = [];
  #airUtilTx: number | undefined;
  #channelUtilization: number | undefined;

  constructor(spec: MeshtasticSerialLinkSpec | MeshtasticTcpLinkSpec, deps: MeshtasticLinkDeps, options: MeshtasticLinkOptions = {}) {
    if (!spec || (spec.kind !== 'meshtastic-tcp' && spec.kind !== 'meshtastic-serial')) {
      throw new RadioError('LINK_OPTIONS_INVALID', 'a Meshtastic link needs a meshtastic+tcp or meshtastic+serial spec');
    }
    if (!deps || typeof deps.clock?.now !== 'function') throw new RadioError('LINK_OPTIONS_INVALID', 'a Meshtastic link needs a clock');
    this.#target = spec;
    this.spec = spec.spec;
    this.#deps = deps;
    this.#options = options;
    this.#timer = deps.timer ?? defaultTimer;
    this.#backoffMs = options.minBackoffMs ?? 500;
  }

  /** LoRa raw bit rate of the radio's modulation (LongFast until the radio has said). */
  get bitRate(): number {
    const m = this.#info?.modulation ?? { sf: 11, bw: 250_000, cr: 1 };
    return (m.sf * m.bw) / 2 ** m.sf * (4 / (4 + m.cr));
  }

  get up(): boolean {
    return this.#session !== undefined && !this.#session.closed;
  }

  #log(line: string): void {
    this.#deps.log?.(`${this.spec}: ${line}`);
  }

  radioInfo(): RadioInfo | undefined {
    return this.#info;
  }

  radioReports() {
    return {
      queueFree: this.#queueFree,
      queueMax: this.#queueMax,
      ...(this.#airUtilTx !== undefined ? { airUtilTx: this.#airUtilTx } : {}),
      ...(this.#channelUtilization !== undefined ? { channelUtilization: this.#channelUtilization } : {}),
    };
  }

  bridgeStats(): MeshtasticLinkStats {
    const s = this.#session?.stats();
    return { ...this.#bridge, badProtobufs: this.#bridge.badProtobufs + (s?.badProtobufs ?? 0), skippedBytes: this.#bridge.skippedBytes + (s?.skippedBytes ?? 0) };
  }

  stats(): LinkStats {
    return { ...this.#stats };
  }

  on<E extends keyof LinkEvents>(event: E, listener: LinkListener<E>): () => void {
    return this.#events.on(event, listener);
  }

  off<E extends keyof LinkEvents>(event: E, listener: LinkListener<E>): void {
    this.#events.off(event, listener);
  }

  async start(): Promise<void> {
    if (this.up) return;
    this.#starting ??= this.#connect().finally(() => {
      this.#starting = undefined;
    });
    await this.#starting;
    this.#wanted = true;
  }

  async stop(): Promise<void> {
    this.#wanted = false;
    await this.#starting?.catch(() => undefined);
    this.#wanted = false;
    if (this.#reconnectHandle !== undefined) {
      this.#timer.clearTimeout(this.#reconnectHandle);
      this.#reconnectHandle = undefined;
    }
    const session = this.#session;
    if (session && !session.closed) {
      session.send({ payloadVariant: { case: 'disconnect', value: true } });
      session.close(); // emits 'down' through the close handler
    }
  }

  /** One connection attempt: stream, handshake, checks. Rejects with RadioError. */
  async #connect(): Promise<void> {
    let session: MeshtasticSession;
    try {
      session = await connectMeshtastic(this.#target, {
        timer: this.#timer,
        ...(this.#options.handshakeTimeoutMs !== undefined ? { handshakeTimeoutMs: this.#options.handshakeTimeoutMs } : {}),
        ...(this.#options.openStream ? { openStream: this.#options.openStream } : {}),
        log: (line) => this.#deps.log?.(line),
      });
    } catch (err) {
      throw new RadioError('LINK_START_FAILED', `${this.spec}: ${(err as Error).message}`, { cause: err });
    }
    if (session.closed) throw new RadioError('LINK_START_FAILED', `${this.spec}: the radio went away right after the handshake`);
    const info = session.info;
    if (info.region === 'UNSET') {
      session.close();
      throw new RadioError(
        'REGION_UNSET',
        `${this.spec}: radio ${info.nodeId} has no LoRa region set (UNSET), so it will not transmit; set it first: citizen radio configure ${this.spec} --region EU_868 (or your region)`,
      );
    }
    if (!info.txEnabled) this.#log(`radio ${info.nodeId} has transmitting disabled (lora.tx_enabled is off): frames will not go out`);
    this.#info = info;
    this.#session = session;
    this.#queueFree = 1;
    this.#backoffMs = this.#options.minBackoffMs ?? 500;
    session.onMessage((m) => this.#onMessage(m));
    session.onClose((reason) => this.#onClose(session, reason));
    this.#scheduleHeartbeat();
    this.#log(`connected to ${info.nodeId} (${info.hwModel}, firmware ${info.firmwareVersion}, ${info.region} ${info.preset})`);
    this.#events.emit('up');
  }

  #onClose(session: MeshtasticSession, reason: string): void {
    if (this.#session !== session) return;
    this.#bridge.badProtobufs += session.stats().badProtobufs;
    this.#bridge.skippedBytes += session.stats().skippedBytes;
    this.#session = undefined;
    if (this.#heartbeatHandle !== undefined) this.#timer.clearTimeout(this.#heartbeatHandle);
    this.#heartbeatHandle = undefined;
    this.#pending?.settle(new RadioError('LINK_DOWN', `${this.spec}: the radio went away before confirming the frame`));
    for (const w of this.#queueWaiters.splice(0)) w();
    this.#events.emit('down');
    if (this.#wanted) {
      this.#log(`connection lost (${reason}); reconnecting`);
      this.#scheduleReconnect();
    }
  }

  #scheduleReconnect(): void {
    if (!this.#wanted || this.#reconnectHandle !== undefined) return;
    const delay = this.#backoffMs;
    this.#backoffMs = Math.min(this.#backoffMs * 2, this.#options.maxBackoffMs ?? 30_000);
    this.#reconnectHandle = this.#timer.setTimeout(() => {
      this.#reconnectHandle = undefined;
      if (!this.#wanted || this.up) return;
      this.#bridge.reconnects++;
      this.#starting ??= this.#connect().finally(() => {
        this.#starting = undefined;
      });
      this.#starting.catch((err: Error) => {
        this.#log(`reconnect failed: ${err.message}`);
        this.#scheduleReconnect();
      });
    }, delay);
  }

  #scheduleHeartbeat(): void {
    const every = this.#options.heartbeatMs ?? 60_000;
    this.#heartbeatHandle = this.#timer.setTimeout(() => {
      this.#session?.send({ payloadVariant: { case: 'heartbeat', value: {} } });
      if (this.up) this.#scheduleHeartbeat();
    }, every);
    (this.#heartbeatHandle as { unref?: () => void })?.unref?.();
  }

  #onMessage(m: FromRadio): void {
    const v = m.payloadVariant;
    switch (v.case) {
      case 'packet':
        return this.#onPacket(v.value);
      case 'queueStatus': {
        this.#queueFree = v.value.free;
        this.#queueMax = v.value.maxlen;
        if (this.#queueFree > 0) for (const w of this.#queueWaiters.splice(0)) w();
        const pending = this.#pending;
        if (pending && v.value.meshPacketId === pending.id) {
          if (v.value.res === 0) pending.settle();
          else {
            this.#bridge.refused++;
            pending.settle(new RadioError('SEND_FAILED', `${this.spec}: the radio refused the frame (queue status ${v.value.res})`));
          }
        }
        return;
      }
      case 'config':
        if (v.value.payloadVariant.case === 'lora') this.#info = this.#session?.info ?? this.#info;
        return;
      case 'rebooted':
        this.#log('the radio rebooted; reconnecting');
        this.#session?.close();
        return;
      case 'logRecord':
        this.#log(`radio log: ${v.value.message}`);
        return;
      default:
        return;
    }
  }

  #onPacket(p: Mesh.MeshPacket): void {
    const info = this.#info;
    const data = p.payloadVariant.case === 'decoded' ? p.payloadVariant.value : undefined;
    if (data?.portnum === Portnums.PortNum.ROUTING_APP && this.#pending && data.requestId === this.#pending.id) {
      try {
        const routing = decodeRouting(data.payload);
        if (routing.variant.case === 'errorReason' && routing.variant.value !== Mesh.Routing_Error.NONE) {
          this.#bridge.refused++;
          this.#pending.settle(new RadioError('SEND_FAILED', `${this.spec}: the radio refused the frame: ${Mesh.Routing_Error[routing.variant.value]}`));
        }
      } catch {
        this.#bridge.ignored++;
      }
      return;
    }
    if (data?.portnum === Portnums.PortNum.TELEMETRY_APP && info && p.from === info.nodeNum) {
      this.#readTelemetry(data.payload);
      return;
    }
    if (!data || data.portnum !== Portnums.PortNum.PRIVATE_APP || p.to !== BROADCAST_NUM || (info && p.from === info.nodeNum)) {
      this.#bridge.ignored++;
      return;
    }
    if (data.payload.length > this.mtu) {
      this.#stats.dropped++;
      return;
    }
    const frame = Uint8Array.from(data.payload);
    this.#stats.framesIn++;
    this.#stats.bytesIn += frame.length;
    const meta: LinkEvents['frame'][1] = { from: nodeIdOf(p.from), receivedAt: this.#deps.clock.now() };
    if (p.rxRssi !== 0) meta.rssi = p.rxRssi;
    if (p.rxSnr !== 0) meta.snr = p.rxSnr;
    this.#events.emit('frame', frame, meta);
  }

  #readTelemetry(payload: Uint8Array): void {
    try {
      const t = decodeTelemetry(payload);
      if (t.variant.case === 'deviceMetrics' || t.variant.case === 'localStats') {
        if (t.variant.value.airUtilTx !== undefined) this.#airUtilTx = t.variant.value.airUtilTx;
        if (t.variant.value.channelUtilization !== undefined) this.#channelUtilization = t.variant.value.channelUtilization;
        this.#feedGovernor();
      }
    } catch {
      this.#bridge.ignored++;
    }
  }

  /**
   * The radio counts everything it transmitted in the last hour (air_util_tx), including what
   * other clients and the firmware itself sent; when that is more than our governor recorded,
   * the difference is recorded too, so together we stay within the legal budget.
   */
  #feedGovernor(): void {
    const info = this.#info;
    if (!info || this.#deps.beforeSend || this.#airUtilTx === undefined || !Number.isFinite(this.#airUtilTx)) return;
    const governor = this.#governorFor(info);
    if (!Number.isFinite(governor.budgetMs)) return;
    const reported = Math.min(1, Math.max(0, this.#airUtilTx / 100)) * governor.windowMs;
    const missing = Math.min(reported - governor.used().airtimeMs, governor.budgetMs - governor.used().airtimeMs);
    if (missing <= 0) return;
    try {
      // Record as much of it as fits now (the governor refuses to record past its budget).
      let fit = missing;
      if (!governor.canSend(fit)) {
        let [low, high] = [0, missing];
        for (let i = 0; i < 24; i++) {
          const mid = (low + high) / 2;
          if (governor.canSend(mid)) low = mid;
          else high = mid;
        }
        fit = low;
      }
      if (fit > 0) governor.record(fit);
    } catch {
      // The report was odd (larger than any budget): ignore it rather than stop sending.
    }
  }

  /** The region's governor, rebuilt if the radio's region changed. */
  #governorFor(info: RadioInfo): DutyCycleGovernor {
    if (this.#governor && this.#governorKey === info.region) return this.#governor;
    let dutyCycle = 0.01; // the strictest common limit, for a region we have no plan for
    try {
      dutyCycle = limitsAt(findRegion(info.region)).dutyCycle;
    } catch {
      this.#log(`no region plan for ${info.region}; assuming a 1% duty cycle`);
    }
    this.#governor = createDutyCycleGovernor({ dutyCycle }, { clock: this.#deps.airtimeClock ?? this.#deps.clock, timer: this.#timer });
    this.#governorKey = info.region;
    return this.#governor;
  }

  /** Airtime of one of our frames on this radio, header and protobuf overhead included. */
  airtimeMs(frameBytes: number): number {
    const m = this.#info?.modulation ?? { sf: 11, bw: 250_000, cr: 1, preamble: 16 };
    return loraAirtimeMs(m, Math.min(MAX_LORA_PAYLOAD, PACKET_HEADER_BYTES + frameBytes + dataOverhead(frameBytes)));
  }

  async send(frame: Uint8Array): Promise<void> {
    const copy = checkOutgoingFrame(this, frame);
    const run = () => this.#sendNow(copy);
    const result = this.#queue.then(run);
    this.#queue = result.catch(() => undefined);
    return result;
  }

  async #sendNow(frame: Uint8Array): Promise<void> {
    const down = () => new RadioError('LINK_DOWN', `${this.spec}: the radio is not connected`);
    if (!this.up || !this.#info) throw down();
    // The radio's TX queue is full: wait for its next QueueStatus (bounded, in case it never comes).
    if (this.#queueFree <= 0 && this.up) {
      await new Promise<void>((resolve) => {
        const handle = this.#timer.setTimeout(resolve, 10 * (this.#options.queueStatusTimeoutMs ?? 3000));
        this.#queueWaiters.push(() => {
          this.#timer.clearTimeout(handle);
          resolve();
        });
      });
    }
    const info = this.#info;
    const airtime = this.airtimeMs(frame.length);
    if (this.#deps.beforeSend) await this.#deps.beforeSend(airtime);
    else await this.#governorFor(info).acquire(airtime);
    const session = this.#session;
    if (!session || session.closed) throw down();
    const id = randomInt(1, 0x7fffffff);
    const confirmed = new Promise<void>((resolve, reject) => {
      const handle = this.#timer.setTimeout(() => {
        this.#bridge.unconfirmed++;
        this.#pending?.settle();
      }, this.#options.queueStatusTimeoutMs ?? 3000);
      this.#pending = {
        id,
        settle: (error) => {
          this.#timer.clearTimeout(handle);
          this.#pending = undefined;
          if (error) reject(error);
          else resolve();
        },
      };
    });
    session.send({
      payloadVariant: {
        case: 'packet',
        value: {
          to: BROADCAST_NUM,
          channel: 0,
          id,
          hopLimit: 0,
          wantAck: false,
          priority: Mesh.MeshPacket_Priority.DEFAULT,
          payloadVariant: { case: 'decoded', value: { portnum: Portnums.PortNum.PRIVATE_APP, payload: frame } },
        },
      },
    });
    await confirmed;
    this.#stats.framesOut++;
    this.#stats.bytesOut += frame.length;
    this.#stats.airtimeMs += airtime;
  }
}

/**
 * A link over the Meshtastic radio a spec names (down until `start()`). Throws RadioError
 * `LINK_OPTIONS_INVALID` on a spec of another kind.
 */
export function createMeshtasticLink(
  spec: MeshtasticSerialLinkSpec | MeshtasticTcpLinkSpec,
  deps: MeshtasticLinkDeps,
  options: MeshtasticLinkOptions = {},
): MeshtasticLink {
  return new MeshtasticLinkImpl(spec, deps, options);
}
