/**
 * The client side of the Meshtastic client API, written for this project from the protocol
 * (`@meshtastic/core` is the reference client the emulator is tested against, but it cannot
 * send a packet with hop limit 0, which our one-hop broadcasts need): open a stream to a
 * radio over TCP (`net`, port 4403) or USB serial (`serialport`), run the `want_config`
 * handshake, then exchange ToRadio/FromRadio protobufs.
 *
 * One session is one connection: when the stream closes, the session ends; reconnecting is
 * the caller's business (the link does it with backoff). Debug text the firmware prints on a
 * serial console, broken frames and undecodable protobufs are counted, logged and skipped.
 */
import { randomInt } from 'node:crypto';
import { connect as connectTcp, type Socket } from 'node:net';
import type { MeshtasticSerialLinkSpec, MeshtasticTcpLinkSpec } from '../radio/link-spec.ts';
import type { LoraModulation } from '../radio/lora-airtime.ts';
import { BridgeError } from './errors.ts';
import {
  Config,
  decodeFromRadio,
  encodeToRadio,
  Mesh,
  modulationOf,
  nodeIdOf,
  presetCodeName,
  regionCodeName,
  type FromRadio,
} from './meshtastic-protocol.ts';
import { createStreamDecoder, encodeStreamFrame, START2 } from './stream-codec.ts';

/** A Meshtastic link spec (radio/link-spec.ts). */
export type MeshtasticSpec = MeshtasticSerialLinkSpec | MeshtasticTcpLinkSpec;

/** Timer functions (the global ones by default; tests may pass fakes). */
export interface Timer {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const defaultTimer: Timer = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** A byte stream to a radio. */
export interface RadioStream {
  write(bytes: Uint8Array): void;
  /** Called once, when the stream is gone (closed by either side or failed). */
  onClose(listener: (reason: string) => void): void;
  onData(listener: (chunk: Uint8Array) => void): void;
  close(): void;
}

/** What the radio told us during the handshake (and later config updates). */
export interface RadioInfo {
  nodeNum: number;
  /** `!` and eight hex digits. */
  nodeId: string;
  longName: string;
  shortName: string;
  /** Firmware's hardware model name, e.g. HELTEC_V3. */
  hwModel: string;
  firmwareVersion: string;
  /** Firmware region name: EU_868, US, ... or UNSET (the radio will not transmit). */
  region: string;
  /** Firmware preset name (LONG_FAST), or CUSTOM when the radio uses its own modulation. */
  preset: string;
  /** The modulation in force, for airtime. */
  modulation: LoraModulation & { name: string };
  /** LoRa config hop limit and whether transmitting is enabled. */
  hopLimit: number;
  txEnabled: boolean;
  /** Channels with a role other than DISABLED. */
  channels: number;
}

export interface ClientOptions {
  /** Give up on the handshake after this long (default 8000 ms). */
  handshakeTimeoutMs?: number;
  /** Give up on opening the stream after this long (default 5000 ms). */
  connectTimeoutMs?: number;
  timer?: Timer;
  log?: (line: string) => void;
  /** Opens the byte stream (default: TCP or serial from the spec); tests inject failures. */
  openStream?: (spec: MeshtasticSpec, connectTimeoutMs: number) => Promise<RadioStream>;
}

/** Counters of one session's input. */
export interface ClientStats {
  frames: number;
  badProtobufs: number;
  skippedBytes: number;
  oversize: number;
}

/** A configured connection to a radio. */
export interface MeshtasticSession {
  readonly info: RadioInfo;
  /** The radio's whole LoRa config as it last sent it (what a change must start from). */
  readonly loraConfig: Config.Config_LoRaConfig | undefined;
  /** Every FromRadio after the handshake. */
  onMessage(listener: (message: FromRadio) => void): void;
  /** Called once when the connection is gone. */
  onClose(listener: (reason: string) => void): void;
  send(init: Parameters<typeof encodeToRadio>[0]): void;
  readonly closed: boolean;
  stats(): ClientStats;
  close(): void;
}

function describe(spec: MeshtasticSpec): string {
  return spec.kind === 'meshtastic-tcp' ? `${spec.host}:${spec.port}` : spec.path;
}

function openTcp(spec: MeshtasticTcpLinkSpec, timeoutMs: number): Promise<RadioStream> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connectTcp({ host: spec.host, port: spec.port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new BridgeError('CONNECT_FAILED', `no answer from ${describe(spec)} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(new BridgeError('CONNECT_FAILED', `cannot connect to ${describe(spec)}: ${err.message}`, { cause: err }));
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 10_000);
      const closers: ((reason: string) => void)[] = [];
      let closed = false;
      const end = (reason: string) => {
        if (closed) return;
        closed = true;
        socket.destroy();
        for (const c of closers) c(reason);
      };
      socket.on('error', (err) => end(err.message));
      socket.on('close', () => end('connection closed'));
      resolve({
        write: (bytes) => void (!closed && socket.write(bytes)),
        onClose: (l) => void closers.push(l),
        onData: (l) => void socket.on('data', l),
        close: () => end('closed by us'),
      });
    });
  });
}

async function openSerial(spec: MeshtasticSerialLinkSpec, timeoutMs: number): Promise<RadioStream> {
  let SerialPort: typeof import('serialport').SerialPort;
  try {
    ({ SerialPort } = await import('serialport'));
  } catch (err) {
    throw new BridgeError('SERIAL_UNAVAILABLE', `serial ports are not available here (serialport failed to load: ${(err as Error).message})`, { cause: err });
  }
  const port = new SerialPort({ path: spec.path, baudRate: 115_200, autoOpen: false });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new BridgeError('CONNECT_FAILED', `${spec.path} did not open within ${timeoutMs} ms`)), timeoutMs);
    port.open((err) => {
      clearTimeout(timer);
      if (!err) return resolve();
      // serialport words its errors "Error: <errno text>, cannot open PATH"; a file that is not a
      // terminal fails setting the baud rate with ENOTTY ("Inappropriate ioctl for device").
      const reason = /Inappropriate ioctl/i.test(err.message) ? 'it is not a serial port' : err.message.replace(/^Error: /, '').replace(/, cannot open .*$/, '');
      reject(new BridgeError('CONNECT_FAILED', `cannot open ${spec.path}: ${reason}`, { cause: err }));
    });
  });
  const closers: ((reason: string) => void)[] = [];
  let closed = false;
  const end = (reason: string) => {
    if (closed) return;
    closed = true;
    if (port.isOpen) port.close(() => undefined);
    for (const c of closers) c(reason);
  };
  port.on('error', (err: Error) => end(err.message));
  port.on('close', () => end('serial port closed'));
  return {
    write: (bytes) => void (!closed && port.write(Buffer.from(bytes))),
    onClose: (l) => void closers.push(l),
    onData: (l) => void port.on('data', l),
    close: () => end('closed by us'),
  };
}

/** Opens the byte stream a spec names. Throws BridgeError `CONNECT_FAILED` or `SERIAL_UNAVAILABLE`. */
export function openRadioStream(spec: MeshtasticSpec, connectTimeoutMs = 5000): Promise<RadioStream> {
  return spec.kind === 'meshtastic-tcp' ? openTcp(spec, connectTimeoutMs) : openSerial(spec, connectTimeoutMs);
}

interface HandshakeState {
  nodeNum?: number;
  user?: Mesh.User;
  firmwareVersion?: string;
  hwModel?: number;
  lora?: Config.Config_LoRaConfig;
  channels: number;
}

/** Builds RadioInfo from what the handshake or a later config told us. */
export function radioInfoOf(state: { nodeNum: number; user?: Mesh.User | undefined; firmwareVersion?: string | undefined; hwModel?: number | undefined; lora?: Config.Config_LoRaConfig | undefined; channels: number }): RadioInfo {
  const lora = state.lora;
  const modulation = modulationOf(lora ?? { usePreset: true, modemPreset: 0, bandwidth: 0, spreadFactor: 0, codingRate: 0 });
  const hw = state.user?.hwModel ?? state.hwModel ?? 0;
  return {
    nodeNum: state.nodeNum,
    nodeId: nodeIdOf(state.nodeNum),
    longName: state.user?.longName ?? '',
    shortName: state.user?.shortName ?? '',
    hwModel: Mesh.HardwareModel[hw] ?? `HW_${hw}`,
    firmwareVersion: state.firmwareVersion ?? 'unknown',
    region: regionCodeName(lora?.region ?? 0),
    preset: lora && !lora.usePreset ? 'CUSTOM' : presetCodeName(lora?.modemPreset ?? 0),
    modulation,
    hopLimit: lora?.hopLimit ?? 0,
    txEnabled: lora?.txEnabled ?? false,
    channels: state.channels,
  };
}

/**
 * Connects to the radio a spec names and runs the config handshake. Resolves with a session
 * once `config_complete_id` arrives; rejects with BridgeError `CONNECT_FAILED`,
 * `SERIAL_UNAVAILABLE` or `HANDSHAKE_TIMEOUT` (the stream is closed then).
 */
export async function connectMeshtastic(spec: MeshtasticSpec, options: ClientOptions = {}): Promise<MeshtasticSession> {
  const timer = options.timer ?? defaultTimer;
  const log = options.log ?? (() => undefined);
  const stream = await (options.openStream ?? openRadioStream)(spec, options.connectTimeoutMs ?? 5000);
  const stats: ClientStats = { frames: 0, badProtobufs: 0, skippedBytes: 0, oversize: 0 };
  const messageListeners: ((m: FromRadio) => void)[] = [];
  const closeListeners: ((reason: string) => void)[] = [];
  let closed = false;
  let closeReason = '';
  const nonce = randomInt(1, 0x7fffffff);
  const state: HandshakeState = { channels: 0 };
  let complete = false;
  let onHandshake: ((ok: boolean, reason?: string) => void) | undefined;

  const decoder = createStreamDecoder({
    onFrame(payload) {
      stats.frames++;
      let message: FromRadio;
      try {
        message = decodeFromRadio(payload);
      } catch {
        stats.badProtobufs++;
        log(`${describe(spec)}: skipped a frame that is not a FromRadio protobuf`);
        return;
      }
      if (!complete) return handshake(message);
      for (const l of messageListeners) {
        try {
          l(message);
        } catch (err) {
          log(`${describe(spec)}: a listener failed: ${(err as Error).message}`);
        }
      }
    },
    onText: (line) => {
      firstText ??= line;
      log(`${describe(spec)} console: ${line}`);
    },
  });
  /** The first text the other end printed, to name it when it is not a radio. */
  let firstText: string | undefined;

  function handshake(message: FromRadio): void {
    const v = message.payloadVariant;
    switch (v.case) {
      case 'myInfo':
        state.nodeNum = v.value.myNodeNum;
        break;
      case 'nodeInfo':
        if (v.value.num === state.nodeNum && v.value.user) state.user = v.value.user;
        break;
      case 'metadata':
        state.firmwareVersion = v.value.firmwareVersion;
        state.hwModel = v.value.hwModel;
        break;
      case 'config':
        if (v.value.payloadVariant.case === 'lora') state.lora = v.value.payloadVariant.value;
        break;
      case 'channel':
        if (v.value.role !== 0) state.channels++;
        break;
      case 'configCompleteId':
        if (v.value === nonce) {
          if (state.nodeNum === undefined) return onHandshake?.(false, 'the radio finished its config without saying its node number');
          complete = true;
          onHandshake?.(true);
        }
        break;
      default:
        break;
    }
  }

  stream.onData((chunk) => {
    const before = decoder.stats();
    decoder.push(chunk);
    const after = decoder.stats();
    stats.skippedBytes += after.skippedBytes - before.skippedBytes;
    stats.oversize += after.oversize - before.oversize;
  });
  stream.onClose((reason) => {
    closed = true;
    closeReason = reason;
    if (stats.frames === 0) {
      // Nothing Meshtastic came back: most likely another service on that port.
      const said = firstText === undefined ? '' : ` (it said "${firstText.slice(0, 60).replace(/[^\x20-\x7e]/g, '?')}")`;
      onHandshake?.(false, `${reason} before any Meshtastic answer${said}; is this a Meshtastic radio's API (TCP port 4403, or its USB serial port)?`);
    } else onHandshake?.(false, reason);
    for (const l of closeListeners) l(reason);
  });

  const send = (init: Parameters<typeof encodeToRadio>[0]) => {
    if (!closed) stream.write(encodeStreamFrame(encodeToRadio(init)));
  };

  // Wake a serial console (the firmware looks for START2 bytes), then ask for the config.
  if (spec.kind === 'meshtastic-serial') stream.write(new Uint8Array(32).fill(START2));
  send({ payloadVariant: { case: 'wantConfigId', value: nonce } });

  const timeoutMs = options.handshakeTimeoutMs ?? 8000;
  await new Promise<void>((resolve, reject) => {
    if (closed) return reject(new BridgeError('CONNECT_FAILED', `${describe(spec)}: ${closeReason}`));
    const handle = timer.setTimeout(() => {
      onHandshake = undefined;
      stream.close();
      reject(new BridgeError('HANDSHAKE_TIMEOUT', `${describe(spec)} did not finish the Meshtastic config handshake within ${timeoutMs} ms (is it a Meshtastic radio?)`));
    }, timeoutMs);
    onHandshake = (ok, reason) => {
      onHandshake = undefined;
      timer.clearTimeout(handle);
      if (ok) resolve();
      else {
        stream.close();
        reject(new BridgeError('HANDSHAKE_FAILED', `${describe(spec)}: handshake failed: ${reason}`));
      }
    };
  });

  let info = radioInfoOf({ ...state, nodeNum: state.nodeNum! });
  // Later config messages (after an admin change) update what the session reports.
  messageListeners.push((m) => {
    if (m.payloadVariant.case === 'config' && m.payloadVariant.value.payloadVariant.case === 'lora') {
      state.lora = m.payloadVariant.value.payloadVariant.value;
      info = radioInfoOf({ ...state, nodeNum: state.nodeNum! });
    }
  });

  return {
    get info() {
      return info;
    },
    get loraConfig() {
      return state.lora;
    },
    onMessage: (l) => void messageListeners.push(l),
    onClose: (l) => {
      if (closed) l(closeReason);
      else closeListeners.push(l);
    },
    send,
    get closed() {
      return closed;
    },
    stats: () => ({ ...stats }),
    close: () => stream.close(),
  };
}
