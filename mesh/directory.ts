/**
 * The directory: who is who in the mesh. A household announces itself with a self-signed
 * entry (its name and keys) and certifies each member's keys with an entry signed by the
 * household key. Entries are ordinary records (kind Directory, in the household's directory
 * feed), so they spread like everything else and let anyone seal mail to `alice@rose`
 * without ever having been in radio range of rose.
 *
 * Entry payload layout, version 1:
 *
 *   off  size    field
 *   0    1       version = 1
 *   1    1       role: 0 household (self-signed: subject = author), 1 member, 2 device,
 *                 3 vouch (the author household knows and trusts the subject household)
 *   2    32      subject Ed25519 public key
 *   34   32      subject X25519 public key
 *   66   varint  name length (1..32), then the name: [a-z0-9-]
 *
 * Gateway statement (role 4, issue 7): a household says it has an internet or LAN gateway,
 * and binds its libp2p peer identity to its household key — the statement is signed by the
 * household key, so no libp2p peer can pretend to be a household. It has its own layout after
 * the role byte (nodes that predate it refuse role 4 as unknown, store it and carry it on):
 *
 *   off  size    field
 *   0    1       version = 1
 *   1    1       role = 4
 *   2    32      libp2p peer key: the raw Ed25519 public key of the household's libp2p node
 *                 (its peer id is the identity multihash of that key); all zero without libp2p
 *   34   1       services: bit 0 libp2p sync, bit 1 SMTP (internet mail in and out for the
 *                 domain below), bit 2 with bit 1: SMTP in only (no smarthost: internet
 *                 mail is not sealed to it); other bits 0. No bit set: the household
 *                 withdrew its gateway
 *   35   varint  mail domain length (0..253), then the domain: lowercase [a-z0-9.-]; empty
 *                 without SMTP
 *   .    1       address count n (0..8)
 *   .    n ×     varint length (1..200), then a multiaddr in text form (printable ASCII)
 *                 where peers may dial the gateway
 *
 * The newest statement (highest seq) of a household replaces its earlier ones.
 *
 * The record carrying a household entry has flag K (full author key), so it verifies with no
 * prior knowledge; member and device entries are signed by the household key and verify once
 * the household entry is known. A later entry (higher seq) for the same subject replaces an
 * earlier one. Vouches are how trust grows: sync gives households vouched for by us, or by
 * households we vouch for, a larger share of scarce airtime than strangers.
 */
import { createHash } from 'node:crypto';
import { ByteReader, ByteWriter, equalBytes, fromUtf8, memoByContent, toHex, utf8 } from './bytes.ts';
import { MeshError } from './errors.ts';
import { KEY_ID_LENGTH, keyId, type PublicIdentity } from './identity.ts';
import { RecordKind, type Record } from './record.ts';

export const DIRECTORY_VERSION = 1;

export enum DirectoryRole {
  Household = 0,
  Member = 1,
  Device = 2,
  Vouch = 3,
  /** A gateway statement: its own layout (see the header), `encodeGatewayStatement`. */
  Gateway = 4,
}

/** Services a gateway statement offers (bit flags). */
export const GatewayService = { Libp2p: 1, Smtp: 2, SmtpInOnly: 4 } as const;

/** Services bits that make sense together: known bits only, and "in only" qualifies SMTP. */
function validServices(services: number): boolean {
  return Number.isInteger(services) && services >= 0 && services <= 7 && (!(services & GatewayService.SmtpInOnly) || (services & GatewayService.Smtp) !== 0);
}

/** What a household says about its gateway (role 4). */
export interface GatewayStatement {
  /** Raw Ed25519 public key of the household's libp2p node; 32 zero bytes without libp2p. */
  peerKey: Uint8Array;
  /** GatewayService bits. */
  services: number;
  /** Mail domain for SMTP ('' without). */
  domain: string;
  /** Multiaddrs (text) where the gateway can be dialled; at most 8. */
  addrs: string[];
}

export const MAX_GATEWAY_ADDRS = 8;
const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
const ADDR = /^[\x21-\x7e]{1,200}$/;

/** True for a lowercase DNS name usable as a mail domain. */
export function isValidMailDomain(domain: string): boolean {
  return DOMAIN.test(domain);
}

export function encodeGatewayStatement(statement: GatewayStatement): Uint8Array {
  const { peerKey, services, domain, addrs } = statement;
  if (!(peerKey instanceof Uint8Array) || peerKey.length !== 32) throw new MeshError('KEY_INVALID', 'the libp2p peer key must be 32 bytes');
  if (!validServices(services)) throw new MeshError('GATEWAY_INVALID', `unknown gateway services ${services}`);
  if (domain !== '' && !isValidMailDomain(domain)) throw new MeshError('GATEWAY_INVALID', `"${domain}" is not a mail domain`);
  if (addrs.length > MAX_GATEWAY_ADDRS || addrs.some((a) => !ADDR.test(a))) {
    throw new MeshError('GATEWAY_INVALID', `a gateway names at most ${MAX_GATEWAY_ADDRS} addresses of 1-200 printable characters`);
  }
  const w = new ByteWriter(128).u8(DIRECTORY_VERSION).u8(DirectoryRole.Gateway).bytes(peerKey).u8(services).lengthPrefixed(utf8(domain)).u8(addrs.length);
  for (const a of addrs) w.lengthPrefixed(utf8(a));
  return w.finish();
}

export function decodeGatewayStatement(payload: Uint8Array): GatewayStatement {
  const r = new ByteReader(payload, 'gateway statement', 'DIRECTORY_MALFORMED');
  const version = r.u8();
  if (version !== DIRECTORY_VERSION) throw new MeshError('DIRECTORY_VERSION', `unknown directory entry version ${version}`);
  if (r.u8() !== DirectoryRole.Gateway) throw new MeshError('DIRECTORY_MALFORMED', 'not a gateway statement');
  const peerKey = Uint8Array.from(r.bytes(32));
  const services = r.u8();
  if (!validServices(services)) throw new MeshError('DIRECTORY_MALFORMED', `unknown gateway services ${services}`);
  let domain: string;
  const addrs: string[] = [];
  try {
    domain = fromUtf8(r.lengthPrefixed(253), 'gateway domain');
    const n = r.u8();
    if (n > MAX_GATEWAY_ADDRS) throw new MeshError('DIRECTORY_MALFORMED', `a gateway statement names ${n} addresses`);
    for (let i = 0; i < n; i++) addrs.push(fromUtf8(r.lengthPrefixed(200), 'gateway address'));
    r.end();
  } catch (cause) {
    throw new MeshError('DIRECTORY_MALFORMED', 'gateway statement is malformed', { cause });
  }
  if (domain !== '' && !isValidMailDomain(domain)) throw new MeshError('DIRECTORY_MALFORMED', `gateway domain "${domain}" is not valid`);
  if (addrs.some((a) => !ADDR.test(a))) throw new MeshError('DIRECTORY_MALFORMED', 'gateway address is not printable ASCII');
  return { peerKey, services, domain, addrs };
}

export interface DirectoryEntry {
  role: DirectoryRole;
  signingKey: Uint8Array;
  agreementKey: Uint8Array;
  name: string;
}

const NAME = /^[a-z0-9-]{1,32}$/;

/** True for a valid household or member name (SPEC §3). */
export function isValidName(name: string): boolean {
  return NAME.test(name);
}

export function encodeDirectoryEntry(entry: DirectoryEntry): Uint8Array {
  if (!isValidName(entry.name)) {
    throw new MeshError('NAME_INVALID', `"${entry.name}" is not a valid name: use 1-32 lowercase letters, digits and '-'`);
  }
  if (entry.signingKey.length !== 32 || entry.agreementKey.length !== 32) throw new MeshError('KEY_INVALID', 'keys must be 32 bytes');
  return new ByteWriter(100)
    .u8(DIRECTORY_VERSION)
    .u8(entry.role)
    .bytes(entry.signingKey)
    .bytes(entry.agreementKey)
    .lengthPrefixed(utf8(entry.name))
    .finish();
}

export function decodeDirectoryEntry(payload: Uint8Array): DirectoryEntry {
  const r = new ByteReader(payload, 'directory entry', 'DIRECTORY_MALFORMED');
  const version = r.u8();
  if (version !== DIRECTORY_VERSION) throw new MeshError('DIRECTORY_VERSION', `unknown directory entry version ${version}`);
  const role = r.u8();
  if (role === DirectoryRole.Gateway) throw new MeshError('DIRECTORY_MALFORMED', 'a gateway statement decodes with decodeGatewayStatement');
  if (role > DirectoryRole.Vouch) throw new MeshError('DIRECTORY_MALFORMED', `unknown directory role ${role}`);
  const signingKey = Uint8Array.from(r.bytes(32));
  const agreementKey = Uint8Array.from(r.bytes(32));
  let name: string;
  try {
    name = fromUtf8(r.lengthPrefixed(32), 'directory name');
    r.end();
  } catch (cause) {
    throw new MeshError('DIRECTORY_MALFORMED', 'directory entry is malformed', { cause });
  }
  if (!isValidName(name)) throw new MeshError('DIRECTORY_MALFORMED', `directory name "${name}" is not valid`);
  return { role, signingKey, agreementKey, name };
}

/** The feed a household's directory entries live in. */
export function directoryFeed(householdKey: Uint8Array): Uint8Array {
  return Uint8Array.from(directoryFeedOf(keyId(householdKey)));
}

const DIRECTORY_FEED_DOMAIN = utf8('citizen-directory-v1');

/**
 * The directory feed of the household whose key id is `householdId`. Shared: callers must not
 * change it (every directory entry applied is checked against it, by every node of a simulator).
 */
const directoryFeedOf = memoByContent(
  (householdId) => new Uint8Array(createHash('sha256').update(DIRECTORY_FEED_DOMAIN).update(householdId).digest().subarray(0, 8)),
  8192,
  KEY_ID_LENGTH,
);

/** A household as the directory knows it. */
export interface KnownHousehold extends PublicIdentity {
  name: string;
  id: Uint8Array;
  members: Map<string, KnownMember>;
  /** Seq of the entry that set the household's own keys. */
  seq: number;
}

/** A household's newest gateway statement. */
export interface KnownGateway extends GatewayStatement {
  household: KnownHousehold;
  seq: number;
  /** When the household made this statement (unix seconds): how fresh the news of it is. */
  time: number;
}

export interface KnownMember extends PublicIdentity {
  name: string;
  household: KnownHousehold;
  role: DirectoryRole;
  seq: number;
}

/**
 * An in-memory index of verified directory entries: key id → full key (for verifying records
 * by members), `member@household` → keys (for sealing). Built from the store at start and kept
 * up to date as directory records arrive. Give it only verified records.
 */
export class Directory {
  private readonly households = new Map<string, KnownHousehold>(); // by key id hex
  private readonly keys = new Map<string, Uint8Array[]>(); // signing key id hex → keys
  private readonly agreementKeys = new Map<string, KnownMember | KnownHousehold>(); // X25519 key id hex → owner
  private readonly authors = new Map<string, KnownHousehold>(); // signing key id hex (household or member) → household
  private readonly vouches = new Map<string, Set<string>>(); // vouched household key id hex → voucher key id hexes
  private readonly gatewayStatements = new Map<string, KnownGateway>(); // household key id hex → newest statement

  /** Apply a verified Directory record; returns false when it is not one the directory can use. */
  apply(record: Record, authorKey: Uint8Array): boolean {
    if (record.kind !== RecordKind.Directory) return false;
    if (record.payload[1] === DirectoryRole.Gateway) return this.applyGateway(record, authorKey);
    let entry: DirectoryEntry;
    try {
      entry = decodeDirectoryEntry(record.payload);
    } catch {
      return false;
    }
    // Key ids are hashes: each is computed once per entry (a simulator's start applies millions).
    const authorId = keyId(authorKey);
    if (!equalBytes(record.feed, directoryFeedOf(authorId))) return false;
    if (entry.role === DirectoryRole.Household) {
      if (!equalBytes(entry.signingKey, authorKey)) return false;
      const idHex = toHex(authorId);
      const existing = this.households.get(idHex);
      if (existing && existing.seq >= record.seq) return false;
      const household: KnownHousehold = existing ?? {
        name: entry.name,
        id: authorId,
        signingKey: authorKey,
        agreementKey: entry.agreementKey,
        members: new Map(),
        seq: record.seq,
      };
      household.name = entry.name;
      (household as { agreementKey: Uint8Array }).agreementKey = entry.agreementKey;
      household.seq = record.seq;
      this.households.set(idHex, household);
      this.authors.set(idHex, household);
      this.addKey(authorKey, idHex);
      this.agreementKeys.set(toHex(keyId(entry.agreementKey)), household);
      return true;
    }
    const household = this.households.get(toHex(authorId));
    if (!household) return false;
    if (entry.role === DirectoryRole.Vouch) {
      const subject = toHex(keyId(entry.signingKey));
      const vouchers = this.vouches.get(subject) ?? new Set<string>();
      if (vouchers.has(toHex(household.id))) return false;
      this.vouches.set(subject, vouchers.add(toHex(household.id)));
      return true;
    }
    const existing = household.members.get(entry.name);
    if (existing && existing.seq >= record.seq) return false;
    const member: KnownMember = {
      name: entry.name,
      household,
      role: entry.role,
      signingKey: entry.signingKey,
      agreementKey: entry.agreementKey,
      seq: record.seq,
    };
    household.members.set(entry.name, member);
    const memberIdHex = toHex(keyId(entry.signingKey));
    this.authors.set(memberIdHex, household);
    this.addKey(entry.signingKey, memberIdHex);
    this.agreementKeys.set(toHex(keyId(entry.agreementKey)), member);
    return true;
  }

  private applyGateway(record: Record, authorKey: Uint8Array): boolean {
    let statement: GatewayStatement;
    try {
      statement = decodeGatewayStatement(record.payload);
    } catch {
      return false;
    }
    const authorId = keyId(authorKey);
    if (!equalBytes(record.feed, directoryFeedOf(authorId))) return false;
    // Only the household key itself speaks for the household's gateway.
    const household = this.households.get(toHex(authorId));
    if (!household || !equalBytes(household.signingKey, authorKey)) return false;
    const existing = this.gatewayStatements.get(toHex(household.id));
    if (existing && existing.seq >= record.seq) return false;
    this.gatewayStatements.set(toHex(household.id), { ...statement, household, seq: record.seq, time: record.time });
    return true;
  }

  /** The newest gateway statement of a household, if it made one (withdrawn ones included). */
  gateway(household: Uint8Array): KnownGateway | undefined {
    return this.gatewayStatements.get(toHex(household));
  }

  /** Households offering any gateway service now. */
  gateways(): KnownGateway[] {
    return [...this.gatewayStatements.values()].filter((g) => g.services !== 0);
  }

  /** The household a libp2p peer key is bound to by a gateway statement. */
  householdOfPeerKey(peerKey: Uint8Array): KnownHousehold | undefined {
    for (const g of this.gatewayStatements.values()) {
      if (g.services & GatewayService.Libp2p && equalBytes(g.peerKey, peerKey)) return g.household;
    }
    return undefined;
  }

  /** Remember a signing key under its key id (hex). */
  private addKey(signingKey: Uint8Array, k: string): void {
    const list = this.keys.get(k) ?? [];
    if (!list.some((x) => equalBytes(x, signingKey))) list.push(signingKey);
    this.keys.set(k, list);
  }

  /** Full signing keys known for a key id (the KeyResolver that verifyRecord needs). */
  resolveKey = (authorId: Uint8Array): Uint8Array[] => this.keys.get(toHex(authorId)) ?? [];

  /** Households with this name (names are chosen freely, so there can be more than one). */
  householdsNamed(name: string): KnownHousehold[] {
    return [...this.households.values()].filter((h) => h.name === name);
  }

  household(id: Uint8Array): KnownHousehold | undefined {
    return this.households.get(toHex(id));
  }

  /** The member behind `member@household`, if exactly known. */
  member(address: string): KnownMember | undefined {
    const at = address.indexOf('@');
    if (at < 1) return undefined;
    const member = address.slice(0, at);
    const household = address.slice(at + 1);
    for (const h of this.householdsNamed(household)) {
      const m = h.members.get(member);
      if (m) return m;
    }
    return undefined;
  }

  /** Who owns an X25519 key id (for naming the sender or recipients of sealed mail). */
  ownerOfAgreementKey(id: Uint8Array): KnownMember | KnownHousehold | undefined {
    return this.agreementKeys.get(toHex(id));
  }

  /** Member or household owning a signing key id. */
  ownerOfSigningKey(id: Uint8Array): KnownMember | KnownHousehold | undefined {
    const h = this.households.get(toHex(id));
    if (h) return h;
    for (const household of this.households.values()) {
      for (const m of household.members.values()) if (equalBytes(keyId(m.signingKey), id)) return m;
    }
    return undefined;
  }

  /** The household an author (household or member signing key id) belongs to. */
  householdOfAuthor(id: Uint8Array): KnownHousehold | undefined {
    return this.authors.get(toHex(id));
  }

  /** Key ids (hex) of the households that vouched for `household`. */
  vouchersOf(household: Uint8Array): ReadonlySet<string> {
    return this.vouches.get(toHex(household)) ?? new Set();
  }

  get householdCount(): number {
    return this.households.size;
  }

  allHouseholds(): KnownHousehold[] {
    return [...this.households.values()];
  }
}
