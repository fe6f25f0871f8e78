/**
 * The citizen strategy: on every simulated node the production code — a `MeshNode` with an
 * in-memory record store (`MemoryDatabase`) and the real `Sync` over a `SimLink` — on the
 * virtual clock and timers. Nothing of the protocol is modelled here; this file only turns
 * the scenario's traffic into records and notices when they are stored.
 *
 * - Each node is one household (`h<index>`) with keys drawn from the strategy's seeded stream.
 * - The neighbourhood already knows itself: before time starts every node holds every
 *   household's directory entry (households are introduced when they join, not in the run).
 * - A DM is a sealed Mail record (to the recipient household's X25519 key, priority Urgent);
 *   a chat message is a signed Message record (priority Normal) in a shared room feed and a
 *   blog post one in the author's blog feed (priority Low). Bodies are random bytes of the
 *   scenario's sizes.
 * - A message counts as delivered at a node when its record is stored there (DM: at the
 *   recipient; chat and blog: at every node).
 * - Signature checks go through a cache of verified (signature, message, key) triples shared
 *   by all nodes: a node that verifies bytes another node has already verified gets the same
 *   answer without the curve arithmetic (issue 4 allows it; only successes are cached).
 * - Gateway nodes say so in their beacons (`SyncOptions.gateway`) and sync with each other
 *   over the internet too (internet-link.ts), besides their radio.
 */
import { equalBytes, toHex, utf8 } from '../mesh/bytes.ts';
import { createNodeEd25519, defaultEd25519, type SignatureScheme } from '../mesh/ed25519.ts';
import { Identity } from '../mesh/identity.ts';
import { MemoryDatabase } from '../mesh/memory-database.ts';
import { MeshNode } from '../mesh/node.ts';
import { Priority, RecordKind, type Record } from '../mesh/record.ts';
import { RecordStore } from '../mesh/record-store.ts';
import { seal } from '../mesh/seal.ts';
import { SyncType } from '../mesh/sync-messages.ts';
import { DEFAULT_EAGER_WINDOW_S, Sync, type SyncOptions } from '../mesh/sync.ts';
import { createDutyCycleGovernor } from '../radio/duty-cycle.ts';
import { decodeFragment } from '../radio/fragmentation.ts';
import { loraAirtimeMs } from '../radio/lora-airtime.ts';
import type { Link, SendOptions } from '../radio/link.ts';
import { InternetHub, type InternetLink } from './internet-link.ts';
import { SimLink } from './sim-link.ts';
import type { Strategy, StrategyContext } from './strategy.ts';
import type { Message } from './world.ts';

/** A week: records outlive any shipped scenario. */
const RECORD_TTL_S = 7 * 86_400;

/** A signature scheme that remembers what it has verified, shared by every simulated node. */
export function createVerifiedCache(inner: SignatureScheme = defaultEd25519): SignatureScheme & { hits: () => number } {
  const verified = new Map<string, { message: Uint8Array; key: Uint8Array }>();
  let hits = 0;
  return {
    name: `${inner.name}+verified-cache`,
    publicKey: (seed) => inner.publicKey(seed),
    sign: (message, seed) => inner.sign(message, seed),
    verify(signature, message, publicKey) {
      const k = Buffer.from(signature.buffer, signature.byteOffset, signature.length).toString('latin1');
      const seen = verified.get(k);
      if (seen && equalBytes(seen.message, message) && equalBytes(seen.key, publicKey)) {
        hits++;
        return true;
      }
      const ok = inner.verify(signature, message, publicKey);
      if (ok) verified.set(k, { message: Uint8Array.from(message), key: Uint8Array.from(publicKey) });
      return ok;
    },
    hits: () => hits,
  };
}

/** Radio airtime by sync message type, to see where the air goes (diagnostic detail only). */
function createAirtimeTally(airtimeOf: (bytes: number) => number) {
  const names: { [type: number]: string } = { [SyncType.Beacon]: 'beacon', [SyncType.Reconcile]: 'reconcile', [SyncType.Want]: 'want', [SyncType.Record]: 'record' };
  const ms: { [name: string]: number } = { beacon: 0, reconcile_open: 0, reconcile_sketch: 0, reconcile_request: 0, want: 0, record: 0, other: 0 };
  const reconcileNames = ['', 'open', 'sketch', 'request', 'done'];
  /** The sync message type; for RECONCILE also its reconciler message type (byte 19, after the sync header). */
  const nameOf = (message: Uint8Array): string => {
    const name = names[message[0]! & 15] ?? 'other';
    return name === 'reconcile' ? `reconcile_${reconcileNames[(message[19] ?? 0) & 15] ?? 'other'}` : name;
  };
  return {
    /** Count every frame `link` sends; `fragments` remembers the type of each fragmented message by id. */
    watch(link: Link): void {
      const fragments = new Map<number, string>();
      const send = link.send.bind(link);
      link.send = (frame: Uint8Array, options?: SendOptions) => {
        let name = 'other';
        try {
          const f = decodeFragment(frame);
          if (f.kind === 'whole') name = nameOf(f.payload);
          else if (f.index === 0) {
            name = nameOf(f.chunk);
            fragments.set(f.messageId, name);
            if (fragments.size > 64) fragments.delete(fragments.keys().next().value!);
          } else name = fragments.get(f.messageId) ?? 'other';
        } catch {
          // not a fragmentation frame: counted as other
        }
        // Counted once on air: a frame may be abandoned while it waits (SendOptions.beforeAir).
        let sent = true;
        const beforeAir = options?.beforeAir;
        const counted = beforeAir ? { beforeAir: () => (sent = beforeAir()) } : options;
        return send(frame, counted).then(() => {
          if (sent) ms[name] = (ms[name] ?? 0) + airtimeOf(frame.length);
        });
      };
    },
    /** Seconds of airtime per message type. */
    seconds(): { [name: string]: number } {
      const out: { [name: string]: number } = {};
      for (const [name, v] of Object.entries(ms)) out[`airtime_s_${name}`] = Math.round(v) / 1000;
      return out;
    },
  };
}

interface CitizenNode {
  node: MeshNode;
  link: SimLink;
  internet: InternetLink | null;
  sync: Sync;
}

export interface CitizenOptions {
  /** Passed to every node's Sync. */
  sync?: SyncOptions;
}

/** The citizen strategy over `context`'s world. */
export function createCitizenStrategy(context: StrategyContext, options: CitizenOptions = {}): Strategy {
  const { sim, channel, world, recorder, random } = context;
  const n = world.scenario.nodes;
  // One signing KeyObject per household: with fewer, every signature builds one (14× its cost).
  const scheme = createVerifiedCache(createNodeEd25519(4096, n));
  const randomBytes = (count: number) => random.bytes(count);
  const gateways = new Set(world.scenario.gateways);
  const hub = new InternetHub(sim);
  const households: Identity[] = [];
  const nodes: CitizenNode[] = [];
  /** Record id (hex) → message index, set when the author's node has stored it. */
  const messageOf = new Map<string, number>();
  /** Stores of records whose message was not known yet (only possible within one instant). */
  const early = new Map<string, { node: number; at: number }[]>();
  const chatFeed = utf8('sim-chat').slice(0, 8);
  const counters = { publish_failures: 0, stored_fresh: 0, stored_late: 0 };
  const eagerWindowS = options.sync?.eagerWindowS ?? DEFAULT_EAGER_WINDOW_S;
  const tally = createAirtimeTally((bytes) => loraAirtimeMs(world.radio.preset, bytes));

  function stored(i: number, record: Record): void {
    if (record.kind === RecordKind.Directory) return;
    // Stored within the eager window of its creation: carried by eager forwarding, not repair.
    if (sim.clock.now() / 1000 - record.time <= eagerWindowS) counters.stored_fresh++;
    else counters.stored_late++;
    const id = toHex(record.id);
    const m = messageOf.get(id);
    if (m !== undefined) recorder.deliver(m, i, sim.now);
    else {
      const list = early.get(id) ?? [];
      list.push({ node: i, at: sim.now });
      early.set(id, list);
    }
  }

  async function start(): Promise<void> {
    for (let i = 0; i < n; i++) households.push(new Identity(random.bytes(32), random.bytes(32), scheme));
    for (let i = 0; i < n; i++) {
      const store = await RecordStore.open(new MemoryDatabase());
      const node = new MeshNode({ householdName: `h${i}` }, { household: households[i]!, store, clock: sim.clock, random: randomBytes, scheme });
      await node.start();
      const governor = createDutyCycleGovernor({ dutyCycle: world.radio.limits.dutyCycle }, { clock: sim.clock, timer: sim.timer });
      const link = new SimLink({ node: i, sim, channel, preset: world.radio.preset, governor, random });
      tally.watch(link);
      const sync = new Sync({ node, clock: sim.clock, timer: sim.timer, random: () => random.next(), scheme }, { ...options.sync, gateway: gateways.has(i) });
      sync.addLink(link);
      const internet = gateways.has(i) ? hub.attach(i, channel.online[i] === 1) : null;
      if (internet) sync.addLink(internet);
      channel.attach(i, (tx, rssi, snr) => link.deliver(tx, rssi, snr));
      nodes.push({ node, link, internet, sync });
    }
    // Introduce the households to each other: every directory entry into every store.
    const entries: Uint8Array[] = [];
    for (const { node } of nodes) for await (const record of node.store.records()) if (record.kind === RecordKind.Directory) entries.push(record.bytes);
    for (const { node } of nodes) await node.ingest(entries);
    for (let i = 0; i < n; i++) nodes[i]!.node.on('record', (record) => stored(i, record));
    for (const { link, internet, sync } of nodes) {
      await link.start();
      await internet?.start();
      await sync.start();
    }
  }

  function originate(m: Message): void {
    const author = households[m.from]!;
    const body = random.bytes(m.bytes);
    const fields =
      m.kind === 'dm'
        ? { kind: RecordKind.Mail, feed: households[m.to]!.id, priority: Priority.Urgent, sealed: true, payload: seal(body, [households[m.to]!.agreementKey], author.id, randomBytes) }
        : m.kind === 'chat'
          ? { kind: RecordKind.Message, feed: chatFeed, priority: Priority.Normal, payload: body }
          : { kind: RecordKind.Message, feed: author.id, priority: Priority.Low, payload: body };
    nodes[m.from]!.node.publish(author, { ...fields, ttl: RECORD_TTL_S }).then(
      (record) => {
        const id = toHex(record.id);
        messageOf.set(id, m.index);
        for (const e of early.get(id) ?? []) recorder.deliver(m.index, e.node, e.at);
        early.delete(id);
      },
      () => counters.publish_failures++,
    );
  }

  return {
    name: 'citizen',
    async: true,
    start,
    originate,
    setOnline(i, on) {
      nodes[i]?.link.setPowered(on);
      nodes[i]?.internet?.setPowered(on);
    },
    async stop() {
      for (const { sync } of nodes) await sync.stop();
      for (const { node } of nodes) await node.stop();
    },
    detail: () => {
      const pushed: { [reason: string]: number } = {};
      for (const { sync } of nodes) {
        for (const l of sync.stats().links) {
          for (const [reason, k] of Object.entries(l.records_pushed_by)) pushed[`pushed_${reason}`] = (pushed[`pushed_${reason}`] ?? 0) + k;
          pushed.pushes_abandoned = (pushed.pushes_abandoned ?? 0) + l.records_abandoned;
        }
      }
      return { ...counters, verify_cache_hits: scheme.hits(), ...tally.seconds(), ...pushed };
    },
  };
}
