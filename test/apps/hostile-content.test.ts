/**
 * What a hostile author can put in a room or a post must not break it for its readers.
 *
 * A date is a number its author wrote into a room or a post. One no Date can hold (1e300,
 * -Infinity) threw out of every reader's list: one such message or post broke the room or the
 * blog for everyone. Such items are now left out, and the rest still shows.
 */
import assert from 'node:assert/strict';
import { MemoryLevel } from 'memory-level';
import { Blog } from '../../apps/blog/blog.ts';
import { Chat } from '../../apps/chat/chat.ts';
import { isDateMs } from '../../apps/date-ms.ts';
import { systemClock } from '../../mesh/clock.ts';
import { Identity } from '../../mesh/identity.ts';
import { MeshNode } from '../../mesh/node.ts';
import { RecordStore } from '../../mesh/record-store.ts';

describe('chat and blog items with impossible dates', () => {
  it('knows which numbers a Date can hold', () => {
    assert.deepEqual([0, Date.now(), -8.64e15, 8.64e15].map(isDateMs), [true, true, true, true]);
    assert.deepEqual([8.64e15 + 1, 1e300, NaN, Infinity, -Infinity, '1', null].map(isDateMs), [false, false, false, false, false, false, false]);
  });

  it('leaves out a message, a post and a comment whose date no Date holds; the others still show', async () => {
    const store = await RecordStore.open(new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' }));
    const node = new MeshNode({ householdName: 'rose' }, { household: Identity.generate(), store, clock: systemClock });
    await node.start();
    const members = new Map([['alice', Identity.generate()], ['mallory', Identity.generate()]]);
    const memberIdentity = async (name: string) => {
      await node.certifyMember(name, members.get(name)!);
      return members.get(name)!;
    };
    let when = Date.UTC(2026, 10, 27);
    const honest = { node, memberIdentity, nowMs: () => when };
    const hostile = { node, memberIdentity, nowMs: () => 1e300 };
    const { id: room } = await new Chat(honest).createRoom('alice', { name: 'street' });
    await new Chat(honest).post('alice', room, 'before');
    await new Chat(hostile).post('mallory', room, 'from the year 1e300');
    when += 1000;
    await new Chat(honest).post('alice', room, 'after');
    assert.deepEqual((await new Chat(honest).messages('alice', room)).map((m) => m.text), ['before', 'after']);

    const { id: post } = await new Blog(honest).publish('alice', { title: 'fine', body: 'text' });
    await new Blog(hostile).publish('mallory', { title: 'never', body: 'text' });
    await new Blog(hostile).comment('mallory', post, 'a comment from nowhen');
    await new Blog(honest).comment('alice', post, 'a comment');
    const blog = new Blog(honest);
    assert.deepEqual((await blog.list()).map((p) => p.title), ['fine']);
    assert.deepEqual((await blog.get(post)).comments.map((c) => c.text), ['a comment']);
  });
});

describe('blog Markdown from a hostile author', () => {
  it('renders in linear time: 100,000 characters of brackets and half-links take milliseconds, not seconds', async () => {
    const { renderMarkdown } = await import('../../apps/blog/markdown.ts');
    for (const unit of ['[', '![', '[a](', '[a](b', '**a', '`a']) {
      const began = performance.now();
      renderMarkdown(unit.repeat(Math.floor(100_000 / unit.length)));
      // Was 13.7 s for '[' and 5.1 s for '[a](' (quadratic backtracking); a generous bound.
      assert.ok(performance.now() - began < 1500, `${JSON.stringify(unit)}: ${Math.round(performance.now() - began)} ms`);
    }
    assert.equal(renderMarkdown('[link](https://x.org) **b**'), '<p><a href="https://x.org" rel="noopener noreferrer nofollow">link</a> <strong>b</strong></p>');
  });
});
