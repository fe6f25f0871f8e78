/**
 * Link specs (SPEC §2, `--link`): parse the text a person types into a typed description,
 * and build the link it names. Recognised kinds:
 *
 *   udp://HOST:PORT?peer=HOST:PORT[&peer=...][&preset=NAME][&region=NAME]
 *   meshtastic+serial://PATH          (e.g. meshtastic+serial:///dev/ttyUSB0)
 *   meshtastic+tcp://HOST[:PORT]      (port 4403 by default)
 *
 * Meshtastic links are parsed here but built by firmware-bridge/; memory links are built
 * from their medium (radio/memory-link.ts), not from specs. Every malformed spec throws
 * RadioError `LINK_SPEC_INVALID` with a message naming the problem; nothing else is thrown.
 */
import { isIP } from 'node:net';
import { RadioError } from './errors.ts';
import type { Clock } from './link.ts';
import { findPreset } from './lora-airtime.ts';
import { createUdpLink, type UdpEndpoint, type UdpLink } from './udp-link.ts';

/** A parsed `udp://` spec. */
export interface UdpLinkSpec {
  kind: 'udp';
  spec: string;
  bind: UdpEndpoint;
  peers: UdpEndpoint[];
  /** Canonical preset name (e.g. `LongFast`), when LoRa emulation was asked for. */
  preset?: string;
  /** Region plan name, upper case (e.g. `EU868`), for the duty-cycle governor; checked against the plans by its user. */
  region?: string;
}

/** A parsed `meshtastic+serial://` spec. */
export interface MeshtasticSerialLinkSpec {
  kind: 'meshtastic-serial';
  spec: string;
  /** Serial device path, e.g. `/dev/ttyUSB0` or `COM3`. */
  path: string;
}

/** A parsed `meshtastic+tcp://` spec. */
export interface MeshtasticTcpLinkSpec {
  kind: 'meshtastic-tcp';
  spec: string;
  /** Host name or IP address (IPv6 without brackets). */
  host: string;
  port: number;
}

/** Any parsed link spec. */
export type LinkSpec = UdpLinkSpec | MeshtasticSerialLinkSpec | MeshtasticTcpLinkSpec;

/** Default TCP port of the Meshtastic client API. */
export const MESHTASTIC_TCP_PORT = 4403;

const MAX_SPEC_LENGTH = 4096;
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

function invalid(spec: string, problem: string): never {
  const shown = spec.length > 200 ? `${spec.slice(0, 200)}…` : spec;
  throw new RadioError('LINK_SPEC_INVALID', `invalid link spec ${JSON.stringify(shown)}: ${problem}`);
}

function parsePort(spec: string, text: string, what: string, min: number): number {
  if (!/^\d+$/.test(text)) invalid(spec, `${what} port "${text}" is not a number`);
  const port = Number(text);
  if (port < min || port > 65535) invalid(spec, `${what} port ${port} is outside ${min}..65535`);
  return port;
}

/** `HOST:PORT` or `[IPV6]:PORT`; `hostNames` allows DNS names besides IP literals. */
function parseHostPort(spec: string, text: string, what: string, opts: { minPort: number; hostNames: boolean; defaultPort?: number }): UdpEndpoint {
  let host: string;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(text);
  if (bracketed) {
    host = bracketed[1]!;
    portText = bracketed[2];
    if (isIP(host) !== 6) invalid(spec, `${what} "[${host}]" is not an IPv6 address`);
  } else {
    const colon = text.lastIndexOf(':');
    host = colon < 0 ? text : text.slice(0, colon);
    portText = colon < 0 ? undefined : text.slice(colon + 1);
    if (host.includes(':')) invalid(spec, `${what} IPv6 address must be in brackets, e.g. [::1]:4000`);
    if (host === '') invalid(spec, `${what} has no host`);
    if (isIP(host) === 0 && !(opts.hostNames && HOST_NAME.test(host))) {
      invalid(spec, opts.hostNames ? `${what} host "${host}" is not a host name or IP address` : `${what} host "${host}" must be an IP address`);
    }
  }
  if (portText === undefined) {
    if (opts.defaultPort === undefined) invalid(spec, `${what} "${text}" has no port (HOST:PORT)`);
    return { host, port: opts.defaultPort };
  }
  return { host, port: parsePort(spec, portText, what, opts.minPort) };
}

function decode(spec: string, text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return invalid(spec, `bad percent-encoding in "${text}"`);
  }
}

function parseUdp(spec: string, rest: string): UdpLinkSpec {
  const q = rest.indexOf('?');
  const authority = q < 0 ? rest : rest.slice(0, q);
  const query = q < 0 ? '' : rest.slice(q + 1);
  if (authority.includes('/') || authority.includes('#')) invalid(spec, 'udp spec has a path or fragment; expected udp://HOST:PORT?peer=HOST:PORT');
  const bind = parseHostPort(spec, authority, 'bind address', { minPort: 0, hostNames: false });
  const peers: UdpEndpoint[] = [];
  let preset: string | undefined;
  let region: string | undefined;
  for (const part of query === '' ? [] : query.split('&')) {
    const eq = part.indexOf('=');
    if (eq < 0) invalid(spec, `parameter "${part}" has no value (expected NAME=VALUE)`);
    const key = part.slice(0, eq);
    const value = decode(spec, part.slice(eq + 1));
    switch (key) {
      case 'peer': {
        const peer = parseHostPort(spec, value, 'peer', { minPort: 1, hostNames: false });
        if (isIP(peer.host) !== isIP(bind.host)) invalid(spec, `peer ${value} is not of the bind address's IP family`);
        if (peers.some((p) => p.host === peer.host && p.port === peer.port)) invalid(spec, `peer ${value} is given twice`);
        peers.push(peer);
        break;
      }
      case 'preset':
        if (preset !== undefined) invalid(spec, 'preset is given twice');
        try {
          preset = findPreset(value).name;
        } catch (err) {
          invalid(spec, err instanceof Error ? err.message : `unknown preset "${value}"`);
        }
        break;
      case 'region':
        if (region !== undefined) invalid(spec, 'region is given twice');
        if (!/^[A-Za-z0-9_]{1,16}$/.test(value)) invalid(spec, `region "${value}" is not a region name like EU868`);
        region = value.toUpperCase();
        break;
      default:
        invalid(spec, `unknown parameter "${key}" (known: peer, preset, region)`);
    }
  }
  if (peers.length === 0) invalid(spec, 'udp link needs at least one peer=HOST:PORT');
  if (region !== undefined && preset === undefined) invalid(spec, 'region only applies with a preset (LoRa emulation)');
  const parsed: UdpLinkSpec = { kind: 'udp', spec, bind, peers };
  if (preset !== undefined) parsed.preset = preset;
  if (region !== undefined) parsed.region = region;
  return parsed;
}

function parseMeshtasticSerial(spec: string, rest: string): MeshtasticSerialLinkSpec {
  if (rest === '') invalid(spec, 'meshtastic+serial needs a device path, e.g. meshtastic+serial:///dev/ttyUSB0');
  const controls = /[\s\u0000-\u001f\u007f]/;
  if (controls.test(rest) || /[?#]/.test(rest)) invalid(spec, 'device path contains spaces, control characters, "?" or "#"');
  const path = decode(spec, rest);
  // Percent-escapes may spell what the spec itself may not hold (%00, %0a).
  if (controls.test(path)) invalid(spec, 'device path contains spaces or control characters');
  return { kind: 'meshtastic-serial', spec, path };
}

function parseMeshtasticTcp(spec: string, rest: string): MeshtasticTcpLinkSpec {
  const authority = rest.endsWith('/') ? rest.slice(0, -1) : rest;
  if (/[/?#@]/.test(authority)) invalid(spec, 'meshtastic+tcp takes only HOST[:PORT]');
  const { host, port } = parseHostPort(spec, authority, 'radio address', { minPort: 1, hostNames: true, defaultPort: MESHTASTIC_TCP_PORT });
  return { kind: 'meshtastic-tcp', spec, host, port };
}

/** Parses a link spec. Throws RadioError `LINK_SPEC_INVALID` (and nothing else) on any malformed input. */
export function parseLinkSpec(spec: string): LinkSpec {
  if (typeof spec !== 'string') throw new RadioError('LINK_SPEC_INVALID', 'a link spec must be a string');
  if (spec.length > MAX_SPEC_LENGTH) invalid(spec, `longer than ${MAX_SPEC_LENGTH} characters`);
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(.*)$/s.exec(spec);
  if (!m) invalid(spec, 'expected SCHEME://..., e.g. udp://127.0.0.1:4000?peer=127.0.0.1:4001');
  const scheme = m[1]!.toLowerCase();
  const rest = m[2]!;
  switch (scheme) {
    case 'udp':
      return parseUdp(spec, rest);
    case 'meshtastic+serial':
      return parseMeshtasticSerial(spec, rest);
    case 'meshtastic+tcp':
      return parseMeshtasticTcp(spec, rest);
    default:
      return invalid(spec, `unknown scheme "${scheme}" (known: udp, meshtastic+serial, meshtastic+tcp)`);
  }
}

/** What `createLink` needs besides the spec. */
export interface LinkDeps {
  /** Stamps received frames. */
  clock: Clock;
  /** Waits for a frame's time on air (default: a real timer). */
  sleep?: (ms: number) => Promise<void>;
  /** Awaited before each send with its airtime: the duty-cycle governor's hook (see UdpLinkOptions). */
  beforeSend?: (airtimeMs: number) => Promise<void>;
}

/**
 * Builds the link a spec names (down until `start()`). Only `udp://` is built here; the
 * Meshtastic kinds throw RadioError `LINK_KIND_UNSUPPORTED` (firmware-bridge/ builds them).
 */
export function createLink(spec: string | LinkSpec, deps: LinkDeps): UdpLink {
  const parsed = typeof spec === 'string' ? parseLinkSpec(spec) : spec;
  if (parsed.kind !== 'udp') {
    throw new RadioError('LINK_KIND_UNSUPPORTED', `${parsed.kind} links are built by firmware-bridge/, not radio/`);
  }
  return createUdpLink(
    {
      bind: parsed.bind,
      peers: parsed.peers,
      spec: parsed.spec,
      ...(parsed.preset !== undefined ? { preset: findPreset(parsed.preset) } : {}),
      ...(deps.beforeSend ? { beforeSend: deps.beforeSend } : {}),
    },
    { clock: deps.clock, ...(deps.sleep ? { sleep: deps.sleep } : {}) },
  );
}
