/**
 * A started MeshNode of its own household on an in-memory store, with seeded keys: the unit
 * most mesh and gateway tests start from.
 */
import { MemoryLevel } from 'memory-level';
import type { Clock } from '../../mesh/clock.ts';
import { Identity } from '../../mesh/identity.ts';
import { MeshNode } from '../../mesh/node.ts';
import { RecordStore } from '../../mesh/record-store.ts';
import { seededRandom } from './random.ts';

export async function memoryNode(name: string, clock: Clock, seed: number): Promise<MeshNode> {
  const random = seededRandom(seed);
  const store = await RecordStore.open(new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' }));
  const node = new MeshNode({ householdName: name }, { household: Identity.generate(random), store, clock, random });
  await node.start();
  return node;
}
