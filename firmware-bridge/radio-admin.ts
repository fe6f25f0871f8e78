/**
 * One-off conversations with a radio, for `citizen radio probe` and `citizen radio configure`:
 * connect, handshake, read what it is, and (configure) set its LoRa region and preset with an
 * admin message to itself, then read the settings back. A real radio reboots to apply a new
 * LoRa config, so reading back retries for a while; an emulator applies it at once.
 */
import { create } from '@bufbuild/protobuf';
import { BridgeError } from './errors.ts';
import { connectMeshtastic, type ClientOptions, type MeshtasticSession, type MeshtasticSpec, type RadioInfo } from './meshtastic-client.ts';
import { Config, encodeAdmin, Portnums, presetCodeName, presetCodeOf, regionCodeName, regionCodeOf } from './meshtastic-protocol.ts';

/** Connects, reads what the radio is, disconnects. */
export async function probeRadio(spec: MeshtasticSpec, options: ClientOptions = {}): Promise<RadioInfo> {
  const session = await connectMeshtastic(spec, options);
  try {
    return session.info;
  } finally {
    session.send({ payloadVariant: { case: 'disconnect', value: true } });
    session.close();
  }
}

export interface ConfigureRequest {
  /** Region name (EU_868, EU868, US, ...). */
  region: string;
  /** Preset name (LongFast, LONG_FAST, ...); default: keep the radio's. */
  preset?: string;
}

export interface ConfigureResult {
  before: RadioInfo;
  /** Read back after the change; undefined if the radio did not come back in time (still rebooting). */
  after?: RadioInfo;
}

function waitForQueueStatus(session: MeshtasticSession, id: number, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    session.onMessage((m) => {
      if (m.payloadVariant.case === 'queueStatus' && m.payloadVariant.value.meshPacketId === id) {
        clearTimeout(timer);
        resolve(m.payloadVariant.value.res === 0);
      }
    });
    session.onClose(() => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

/**
 * Sets the radio's region (and preset), keeping its other LoRa settings. Throws BridgeError
 * `REGION_UNKNOWN`/`PRESET_UNKNOWN` before connecting, and the connection errors of
 * `connectMeshtastic`.
 */
export async function configureRadio(spec: MeshtasticSpec, request: ConfigureRequest, options: ClientOptions & { readBackMs?: number } = {}): Promise<ConfigureResult> {
  const region = regionCodeOf(request.region);
  if (region === Config.Config_LoRaConfig_RegionCode.UNSET) throw new BridgeError('REGION_UNKNOWN', 'setting the region to UNSET would stop the radio transmitting; name a region');
  const preset = request.preset === undefined ? undefined : presetCodeOf(request.preset);
  const session = await connectMeshtastic(spec, options);
  const before = session.info;
  try {
    // The whole config the radio sent, changed only where asked: set_config replaces the section,
    // so a partial one would reset its transmit power, frequency slot, duty-cycle override, ...
    const { $typeName: _, ...current } = session.loraConfig ?? create(Config.Config_LoRaConfigSchema);
    const lora = create(Config.Config_LoRaConfigSchema, {
      ...current,
      usePreset: true,
      modemPreset: preset ?? (before.preset === 'CUSTOM' ? 0 : Config.Config_LoRaConfig_ModemPreset[before.preset as keyof typeof Config.Config_LoRaConfig_ModemPreset] ?? 0),
      region,
      hopLimit: before.hopLimit || 3,
      txEnabled: true,
    });
    const id = Math.floor(Math.random() * 0x7ffffffe) + 1;
    const accepted = waitForQueueStatus(session, id, 3000);
    session.send({
      payloadVariant: {
        case: 'packet',
        value: {
          to: before.nodeNum,
          id,
          wantAck: true,
          payloadVariant: {
            case: 'decoded',
            value: { portnum: Portnums.PortNum.ADMIN_APP, wantResponse: true, payload: encodeAdmin({ payloadVariant: { case: 'setConfig', value: { payloadVariant: { case: 'lora', value: lora } } } }) },
          },
        },
      },
    });
    await accepted;
  } finally {
    session.send({ payloadVariant: { case: 'disconnect', value: true } });
    session.close();
  }
  // Read back; a real radio reboots to apply the change, so try for a while.
  const deadline = Date.now() + (options.readBackMs ?? 20_000);
  for (;;) {
    try {
      const after = await probeRadio(spec, { ...options, handshakeTimeoutMs: Math.min(options.handshakeTimeoutMs ?? 5000, 5000) });
      const applied = after.region === regionCodeName(region) && (preset === undefined || after.preset === presetCodeName(preset));
      if (applied || Date.now() > deadline) return { before, after };
    } catch {
      if (Date.now() > deadline) return { before };
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
