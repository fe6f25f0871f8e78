/**
 * Sync over emulated LongFast radios, on virtual time (issue 3's performance figures):
 *  - idle cost: what a node sends per hour when nothing changes, against EU868's legal budget
 *    at Meshtastic's default frequency (869.525 MHz: 10% duty cycle = 360 s per hour);
 *  - spreading one new record to all nodes of a 10-node line and a 10-node clique: frames and
 *    airtime until every node holds it (and including the summaries that confirm it
 *    afterwards), against "every node rebroadcasts once".
 *
 * Real MeshNodes and the real Sync run over in-memory broadcast links that count each frame's
 * LongFast time on air. The memory medium does not model collisions or hold frames for their
 * airtime (the simulator, issue 4, does); frame and byte counts are exact.
 */
import { MemoryLevel } from 'memory-level';
import { utf8 } from '../mesh/bytes.ts';
import { Identity } from '../mesh/identity.ts';
import { MeshNode } from '../mesh/node.ts';
import { Priority, RecordKind, type Record } from '../mesh/record.ts';
import { RecordStore } from '../mesh/record-store.ts';
import { Sync } from '../mesh/sync.ts';
import { encodeRecordMessage } from '../mesh/sync-messages.ts';
import { WHOLE_HEADER_BYTES } from '../radio/fragmentation.ts';
import type { Link } from '../radio/link.ts';
import { findPreset, loraAirtimeMs } from '../radio/lora-airtime.ts';
import { createMemoryMedium, type MemoryMedium } from '../radio/memory-link.ts';
import { findRegion, limitsAt } from '../radio/region-plan.ts';
import { seededFloat, seededRandom } from '../test/helpers/random.ts';
import { VirtualTime } from '../test/helpers/virtual-time.ts';
import type { Report } from './harness.ts';

const LONG_FAST = findPreset('LongFast');
const HOUR = 3_600_000;

interface BenchNode {
  node: MeshNode;
  sync: Sync;
  link: Link;
}

async function makeNodes(count: number, medium: MemoryMedium, time: VirtualTime, seed: number): Promise<BenchNode[]> {
  const nodes: BenchNode[] = [];
  for (let i = 0; i < count; i++) {
    const random = seededRandom(seed + i);
    const store = await RecordStore.open(new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' }));
    const node = new MeshNode({ householdName: `h${i}` }, { household: Identity.generate(random), store, clock: time, random });
    await node.start();
    const link = medium.attach(`h${i}`, { mtu: 255, bitRate: 1_070, airtimeMs: (bytes) => loraAirtimeMs(LONG_FAST, bytes) });
    const sync = new Sync({ node, clock: time, timer: time, random: seededFloat(seed + i) });
    sync.addLink(link);
    await sync.start();
    await link.start();
    nodes.push({ node, sync, link });
  }
  return nodes;
}

function totals(nodes: BenchNode[]): { frames: number; bytes: number; airtimeMs: number } {
  let frames = 0;
  let bytes = 0;
  let airtimeMs = 0;
  for (const { link } of nodes) {
    const s = link.stats();
    frames += s.framesOut;
    bytes += s.bytesOut;
    airtimeMs += s.airtimeMs;
  }
  return { frames, bytes, airtimeMs };
}

async function stopAll(nodes: BenchNode[]): Promise<void> {
  for (const n of nodes) {
    await n.sync.stop();
    await n.link.stop();
    await n.node.store.close();
  }
}

async function idleCost(report: Report, count: number, clique: boolean): Promise<void> {
  const time = new VirtualTime();
  const medium = createMemoryMedium({ clock: time, hearsAll: clique });
  if (!clique) for (let i = 1; i < count; i++) medium.connect(`h${i - 1}`, `h${i}`);
  const nodes = await makeNodes(count, medium, time, 500 + count);
  await time.run(6 * HOUR); // discovery, directories, then Trickle backs off to Imax
  const before = totals(nodes);
  const hours = 4;
  await time.run(hours * HOUR);
  const after = totals(nodes);
  const perNodeHour = (k: 'frames' | 'bytes' | 'airtimeMs') => (after[k] - before[k]) / count / hours;
  const legalMsPerHour = limitsAt(findRegion('EU868')).dutyCycle * HOUR;
  const shape = clique ? `${count}-node clique` : `${count}-node line`;
  report.add(`idle: bytes sent per node per hour (${shape})`, perNodeHour('bytes'), 'B/h');
  report.add(`idle: frames per node per hour (${shape})`, perNodeHour('frames'), 'frames/h');
  report.add(`idle: airtime per node per hour, LongFast (${shape})`, perNodeHour('airtimeMs') / 1000, 's/h');
  report.add(`idle: share of EU868 legal budget (${shape})`, (100 * perNodeHour('airtimeMs')) / legalMsPerHour, '%', 'goal ≤ 1%');
  await stopAll(nodes);
}

async function spreadOne(report: Report, clique: boolean): Promise<void> {
  const count = 10;
  const time = new VirtualTime();
  const medium = createMemoryMedium({ clock: time, hearsAll: clique });
  if (!clique) for (let i = 1; i < count; i++) medium.connect(`h${i - 1}`, `h${i}`);
  const nodes = await makeNodes(count, medium, time, clique ? 700 : 800);
  await time.run(6 * HOUR);
  const before = totals(nodes);
  const author = nodes[0]!.node;
  const record: Record = await author.publish(author.household, {
    kind: RecordKind.Message,
    feed: author.household.id,
    priority: Priority.Urgent,
    payload: utf8('A fox has been seen on Elm Street; bring the chickens in tonight.'),
    ttl: 86_400,
  });
  let deliveredAt: ReturnType<typeof totals> | null = null;
  for (let step = 0; step < 600 && !deliveredAt; step++) {
    await time.run(1000);
    const held = await Promise.all(nodes.map((n) => n.node.store.has(record.id)));
    if (held.every(Boolean)) deliveredAt = totals(nodes);
  }
  await time.run(HOUR);
  const after = totals(nodes);
  const shape = clique ? '10-node clique' : '10-node line';
  if (!deliveredAt) {
    report.note(`spread (${shape}): not every node held the record after 10 minutes`);
    await stopAll(nodes);
    return;
  }
  const recordFrame = encodeRecordMessage(author.household.id, record.bytes).length + WHOLE_HEADER_BYTES;
  const flood = { frames: count, airtimeMs: count * loraAirtimeMs(LONG_FAST, recordFrame) };
  const d = { frames: deliveredAt.frames - before.frames, airtimeMs: deliveredAt.airtimeMs - before.airtimeMs };
  const all = { frames: after.frames - before.frames, airtimeMs: after.airtimeMs - before.airtimeMs };
  report.add(`spread one record (${shape}): frames until all hold it`, d.frames, 'frames');
  report.add(`spread one record (${shape}): airtime until all hold it`, d.airtimeMs / 1000, 's');
  report.add(`spread one record (${shape}): frames in the hour after`, all.frames, 'frames', 'incl. the idle beacons and summaries of that hour');
  report.add(`spread one record (${shape}): airtime in the hour after`, all.airtimeMs / 1000, 's');
  report.add(`spread one record (${shape}): every node rebroadcasts once`, flood.frames, 'frames', `${(flood.airtimeMs / 1000).toFixed(2)} s airtime, ${recordFrame}-byte frames`);
  await stopAll(nodes);
}

export async function benchSync(report: Report, options: { quick: boolean }): Promise<void> {
  report.section('Sync over emulated LongFast links (virtual time; memory medium: no collisions)');
  await idleCost(report, 2, true);
  if (!options.quick) await idleCost(report, 10, true);
  await idleCost(report, 10, false);
  await spreadOne(report, false);
  await spreadOne(report, true);
}
