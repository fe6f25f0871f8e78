/**
 * Rooms and posts stay readable after a restart whatever order the store hands their records
 * over in: with a tiny pending budget, most updates of a room reach the reopened node before
 * its genesis and overflow the budget, and Yjs may keep structs pending; the repair of
 * apps/chat/document-repair.ts (settledDoc) offers the records again and hands Yjs the merged
 * updates, so every message and comment shows and members can write on.
 */
import assert from 'node:assert/strict';
import { MemoryLevel } from 'memory-level';
import { Blog } from '../../apps/blog/blog.ts';
import { Chat } from '../../apps/chat/chat.ts';
import { systemClock } from '../../mesh/clock.ts';
import { Identity } from '../../mesh/identity.ts';
import { MeshNode } from '../../mesh/node.ts';
import { RecordStore } from '../../mesh/record-store.ts';

describe('chat and blog after a restart with updates out of order', () => {
  it('shows every message and comment, and takes new ones', async () => {
    const store = await RecordStore.open(new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' }));
    const household = Identity.generate();
    const members = new Map([['alice', Identity.generate()], ['bob', Identity.generate()]]);
    const options = { householdName: 'rose', documents: { maxPendingRecords: 4 } };
    const open = async () => {
      const node = new MeshNode(options, { household, store, clock: systemClock });
      await node.start();
      const memberIdentity = async (name: string) => {
        await node.certifyMember(name, members.get(name)!);
        return members.get(name)!;
      };
      return { node, chat: new Chat({ node, memberIdentity }), blog: new Blog({ node, memberIdentity }) };
    };
    const first = await open();
    const { id: room } = await first.chat.createRoom('alice', { name: 'street' });
    for (let i = 0; i < 40; i++) await first.chat.post(i % 2 ? 'alice' : 'bob', room, `message ${i}`);
    const { id: post } = await first.blog.publish('alice', { title: 'hello', body: 'text' });
    for (let i = 0; i < 20; i++) await first.blog.comment(i % 2 ? 'alice' : 'bob', post, `comment ${i}`);
    await first.node.stop();

    const again = await open();
    const messages = await again.chat.messages('bob', room);
    assert.deepEqual(messages.map((m) => m.text), Array.from({ length: 40 }, (_, i) => `message ${i}`));
    assert.equal((await again.blog.get(post)).comments.length, 20);
    await again.chat.post('alice', room, 'still here');
    assert.equal((await again.chat.messages('bob', room)).at(-1)?.text, 'still here');
  });
});
