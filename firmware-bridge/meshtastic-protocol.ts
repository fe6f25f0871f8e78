/**
 * The Meshtastic client API's messages, as both ends of this project use them: decoding the
 * protobufs of `@meshtastic/protobufs` without ever throwing on bad bytes, and translating
 * the device's enums (region codes, modem presets) into radio/'s names and LoRa modulations.
 *
 * Field semantics we rely on (from the Meshtastic protobufs and the firmware's PhoneAPI):
 * - a client sends `ToRadio.want_config_id = nonce`; the device answers with my_info, its own
 *   node info, metadata, the channels, each config and module config section, the other
 *   nodes, then `config_complete_id = nonce`. Nonce 69420 asks for config only, 69421 for
 *   nodes only;
 * - a client's `MeshPacket` has `from = 0` (the device fills in its node number), `to` the
 *   destination (0xFFFFFFFF = broadcast), `hop_limit` and `want_ack` as it wants them; the
 *   firmware raises the hop limit of a want-ack broadcast with hop limit 0 to its default;
 * - the device answers each packet from the client with a `QueueStatus` naming its id.
 */
import { create, fromBinary, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { Admin, Channel, Config, Mesh, ModuleConfig, Portnums, Telemetry } from '@meshtastic/protobufs';
import { findPreset, type LoraModulation } from '../radio/lora-airtime.ts';
import { BridgeError } from './errors.ts';

export { Admin, Channel, Config, Mesh, ModuleConfig, Portnums, Telemetry };
export type FromRadio = Mesh.FromRadio;
export type ToRadio = Mesh.ToRadio;
export type MeshPacket = Mesh.MeshPacket;

/** The broadcast address. */
export const BROADCAST_NUM = 0xffffffff;
/** want_config nonces with a special meaning in firmware 2.6+. */
export const CONFIG_ONLY_NONCE = 69420;
export const NODES_ONLY_NONCE = 69421;
/** Application payload a Meshtastic data packet carries (DESIGN.md, "Radio facts"). */
export const MAX_APP_PAYLOAD = 233;
/** Bytes the firmware puts on air before the (encrypted) Data protobuf. */
export const PACKET_HEADER_BYTES = 16;
/** Hop limit the firmware uses when none is configured. */
export const DEFAULT_HOP_LIMIT = 3;

/** Decodes a FromRadio; throws BridgeError `PROTOBUF_INVALID` on bytes that are not one. */
export function decodeFromRadio(bytes: Uint8Array): FromRadio {
  try {
    return fromBinary(Mesh.FromRadioSchema, bytes);
  } catch (err) {
    throw new BridgeError('PROTOBUF_INVALID', `not a FromRadio protobuf: ${(err as Error).message}`, { cause: err });
  }
}

/** Decodes a ToRadio; throws BridgeError `PROTOBUF_INVALID` on bytes that are not one. */
export function decodeToRadio(bytes: Uint8Array): ToRadio {
  try {
    return fromBinary(Mesh.ToRadioSchema, bytes);
  } catch (err) {
    throw new BridgeError('PROTOBUF_INVALID', `not a ToRadio protobuf: ${(err as Error).message}`, { cause: err });
  }
}

/** Decodes an AdminMessage; throws BridgeError `PROTOBUF_INVALID`. */
export function decodeAdmin(bytes: Uint8Array): Admin.AdminMessage {
  try {
    return fromBinary(Admin.AdminMessageSchema, bytes);
  } catch (err) {
    throw new BridgeError('PROTOBUF_INVALID', `not an AdminMessage protobuf: ${(err as Error).message}`, { cause: err });
  }
}

/** Decodes a Routing message (ACKs and errors); throws BridgeError `PROTOBUF_INVALID`. */
export function decodeRouting(bytes: Uint8Array): Mesh.Routing {
  try {
    return fromBinary(Mesh.RoutingSchema, bytes);
  } catch (err) {
    throw new BridgeError('PROTOBUF_INVALID', `not a Routing protobuf: ${(err as Error).message}`, { cause: err });
  }
}

/** Decodes a Telemetry message; throws BridgeError `PROTOBUF_INVALID`. */
export function decodeTelemetry(bytes: Uint8Array): Telemetry.Telemetry {
  try {
    return fromBinary(Telemetry.TelemetrySchema, bytes);
  } catch (err) {
    throw new BridgeError('PROTOBUF_INVALID', `not a Telemetry protobuf: ${(err as Error).message}`, { cause: err });
  }
}

export function encodeToRadio(init: MessageInitShape<typeof Mesh.ToRadioSchema>): Uint8Array {
  return toBinary(Mesh.ToRadioSchema, create(Mesh.ToRadioSchema, init));
}

export function encodeFromRadio(init: MessageInitShape<typeof Mesh.FromRadioSchema>): Uint8Array {
  return toBinary(Mesh.FromRadioSchema, create(Mesh.FromRadioSchema, init));
}

export function encodeAdmin(init: MessageInitShape<typeof Admin.AdminMessageSchema>): Uint8Array {
  return toBinary(Admin.AdminMessageSchema, create(Admin.AdminMessageSchema, init));
}

const PresetCode = Config.Config_LoRaConfig_ModemPreset;
const RegionCode = Config.Config_LoRaConfig_RegionCode;

/** The firmware's enum name of a preset code (LONG_FAST), or `PRESET_<n>` if unknown. */
export function presetCodeName(code: number): string {
  return PresetCode[code] ?? `PRESET_${code}`;
}

/** The firmware's name of a region code (EU_868, UNSET), or `REGION_<n>` if unknown. */
export function regionCodeName(code: number): string {
  return RegionCode[code] ?? `REGION_${code}`;
}

/** A region code from any spelling of its name (EU868, eu_868, UNSET). Throws BridgeError `REGION_UNKNOWN`. */
export function regionCodeOf(name: string): number {
  const key = name.replace(/[-_\s]/g, '').toUpperCase();
  for (const [k, v] of Object.entries(RegionCode)) {
    if (typeof v === 'number' && k.replace(/_/g, '') === key) return v;
  }
  const aliases: Record<string, number> = { US915: RegionCode.US, ANZ915: RegionCode.ANZ };
  if (aliases[key] !== undefined) return aliases[key];
  throw new BridgeError(
    'REGION_UNKNOWN',
    `unknown region "${name}"; known: ${Object.keys(RegionCode).filter((k) => Number.isNaN(Number(k)) && k !== 'UNSET').join(', ')}`,
  );
}

/** A preset code from our preset name or the firmware's (LongFast, LONG_FAST). Throws BridgeError `PRESET_UNKNOWN`. */
export function presetCodeOf(name: string): number {
  const key = name.replace(/[-_\s]/g, '').toUpperCase();
  for (const [k, v] of Object.entries(PresetCode)) {
    if (typeof v === 'number' && k.replace(/_/g, '') === key) return v;
  }
  throw new BridgeError('PRESET_UNKNOWN', `unknown preset "${name}"; known: ${Object.keys(PresetCode).filter((k) => Number.isNaN(Number(k))).join(', ')}`);
}

/** Our preset name (LongFast) for a firmware preset code, if radio/ knows it. */
export function presetNameOf(code: number): string | undefined {
  const name = PresetCode[code];
  if (!name) return undefined;
  try {
    return findPreset(name).name;
  } catch {
    return undefined;
  }
}

/**
 * The LoRa modulation a device's LoRa config means: its preset, or (use_preset off) its own
 * bandwidth, spreading factor and coding rate. Unknown or incomplete settings fall back to
 * LongSlow, the slowest preset, so airtime is over- rather than under-estimated.
 */
export function modulationOf(lora: Pick<Config.Config_LoRaConfig, 'usePreset' | 'modemPreset' | 'bandwidth' | 'spreadFactor' | 'codingRate'>): LoraModulation & { name: string } {
  if (!lora.usePreset && lora.spreadFactor >= 7 && lora.spreadFactor <= 12 && lora.bandwidth > 0 && lora.codingRate >= 5 && lora.codingRate <= 8) {
    // The firmware writes 31 for 31.25 kHz and 62 for 62.5 kHz.
    const bwKHz = lora.bandwidth === 31 ? 31.25 : lora.bandwidth === 62 ? 62.5 : lora.bandwidth;
    return { name: 'custom', sf: lora.spreadFactor, bw: bwKHz * 1000, cr: lora.codingRate - 4, preamble: 16 };
  }
  if (lora.modemPreset === PresetCode.VERY_LONG_SLOW) return { name: 'VeryLongSlow', sf: 12, bw: 62_500, cr: 4, preamble: 16 };
  const name = presetNameOf(lora.modemPreset);
  return name ? { ...findPreset(name) } : { ...findPreset('LongSlow') };
}

/** A node number as Meshtastic writes it: `!` and eight hex digits. */
export function nodeIdOf(num: number): string {
  return `!${(num >>> 0).toString(16).padStart(8, '0')}`;
}
