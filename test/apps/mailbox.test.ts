/**
 * Mail between members: sealed to the recipients and the sender, readable only by them,
 * carried by another household without it being able to read it.
 */
import assert from 'node:assert/strict';
import { MemoryLevel } from 'memory-level';
import { toHex } from '../../mesh/bytes.ts';
import { ManualClock } from '../../mesh/clock.ts';
import { Identity } from '../../mesh/identity.ts';
import { MeshNode } from '../../mesh/node.ts';
import { RecordKind, type Record } from '../../mesh/record.ts';
import { RecordStore } from '../../mesh/record-store.ts';
import { Mailbox } from '../../apps/mail/mailbox.ts';
import { seededRandom } from '../helpers/random.ts';

async function household(name: string, members: string[], clock: ManualClock, seed: number) {
  const random = seededRandom(seed);
  const store = await RecordStore.open(new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' }));
  const node = new MeshNode({ householdName: name }, { household: Identity.generate(random), store, clock, random });
  await node.start();
  const ids = new Map(members.map((m) => [m, Identity.generate(random)]));
  for (const [m, id] of ids) await node.certifyMember(m, id);
  const mailbox = new Mailbox({
    node,
    memberIdentity: async (m) => {
      const id = ids.get(m);
      if (!id) throw new Error(`no member ${m}`);
      return id;
    },
  });
  return { node, mailbox };
}

async function records(node: MeshNode): Promise<Record[]> {
  const out: Record[] = [];
  for await (const r of node.store.records()) out.push(r);
  return out;
}

describe('apps/mail/mailbox', () => {
  const clock = new ManualClock(Date.UTC(2026, 10, 2, 9));

  it('delivers to a member of the same household, shows it in Sent, tracks read state', async () => {
    const { mailbox } = await household('rose', ['alice', 'bob', 'carol'], clock, 1);
    const { id } = await mailbox.send('alice', { to: ['bob@rose'], subject: 'Tea?', body: 'At four.' });
    assert.match(id, /^[0-9a-f]{64}$/);
    const inbox = await mailbox.list('bob', 'inbox');
    assert.equal(inbox.length, 1);
    assert.deepEqual(
      { id: inbox[0]!.id, from: inbox[0]!.from, to: inbox[0]!.to, subject: inbox[0]!.subject, body: inbox[0]!.body, read: inbox[0]!.read },
      { id, from: 'alice@rose', to: ['bob@rose'], subject: 'Tea?', body: 'At four.', read: false },
    );
    assert.equal(inbox[0]!.date, new Date(clock.now()).toISOString().replace(/\.\d{3}Z$/, '.000Z'));
    assert.equal((await mailbox.list('alice', 'sent'))[0]!.id, id);
    assert.equal((await mailbox.list('alice', 'inbox')).length, 0, 'the sender’s copy is not in her inbox');
    assert.equal((await mailbox.list('carol', 'inbox')).length, 0, 'carol can neither see nor open it');
    await mailbox.markRead('bob', id);
    assert.equal((await mailbox.list('bob', 'inbox'))[0]!.read, true);
  });

  it('lists newest first', async () => {
    const { mailbox } = await household('rose', ['alice', 'bob'], clock, 2);
    await mailbox.send('alice', { to: ['bob@rose'], subject: 'one', body: '1' });
    clock.advance(60_000);
    await mailbox.send('alice', { to: ['bob@rose'], subject: 'two', body: '2' });
    assert.deepEqual((await mailbox.list('bob', 'inbox')).map((m) => m.subject), ['two', 'one']);
  });

  it('refuses bad, unknown and internet addresses with clear codes', async () => {
    const { mailbox } = await household('rose', ['alice'], clock, 3);
    const codes = async (to: string[]) => {
      try {
        await mailbox.send('alice', { to, subject: 's', body: 'b' });
        return 'sent';
      } catch (err) {
        return (err as { code: string }).code;
      }
    };
    assert.equal(await codes([]), 'no_recipients');
    assert.equal(await codes(['nobody']), 'bad_address');
    assert.equal(await codes(['zed@rose']), 'unknown_recipient');
    assert.equal(await codes(['bob@example.org']), 'no_gateway');
  });

  it('crosses households sealed: the carrier stores it but cannot read it', async () => {
    const rose = await household('rose', ['alice'], clock, 4);
    const oak = await household('oak', ['dan'], clock, 5);
    // Exchange directories (sync will do this over the air).
    await rose.node.ingest((await records(oak.node)).map((r) => r.bytes));
    const { id } = await rose.mailbox.send('alice', { to: ['dan@oak'], subject: 'Hello oak', body: 'From rose' });
    const mail = (await records(rose.node)).find((r) => toHex(r.id) === id)!;
    assert.equal(mail.kind, RecordKind.Mail);
    assert.ok(mail.sealed);
    assert.equal(Buffer.from(mail.bytes).includes(Buffer.from('Hello oak')), false, 'no plaintext on the wire');
    await oak.node.ingest((await records(rose.node)).map((r) => r.bytes));
    const inbox = await oak.mailbox.list('dan', 'inbox');
    assert.equal(inbox.length, 1);
    assert.equal(inbox[0]!.from, 'alice@rose');
    assert.equal(inbox[0]!.subject, 'Hello oak');
  });

  it('mail to a household whose keys are not known yet waits, then goes out when they arrive', async () => {
    const rose = await household('rose', ['alice'], clock, 6);
    const elm = await household('elm', ['erin'], clock, 7);
    const { id: outboxId } = await rose.mailbox.send('alice', { to: ['erin@elm'], subject: 'Welcome', body: 'Glad you joined.' });
    assert.match(outboxId, /^[0-9a-f]{32}$/);
    const waiting = await rose.mailbox.list('alice', 'sent');
    assert.deepEqual(waiting.map((m) => [m.id, m.subject, m.state]), [[outboxId, 'Welcome', 'waiting for keys']]);
    assert.equal((await records(rose.node)).filter((r) => r.kind === RecordKind.Mail).length, 0, 'nothing sealed yet');
    // elm's directory arrives (sync would bring it): the mail is sealed and published.
    await rose.node.ingest((await records(elm.node)).map((r) => r.bytes));
    await rose.mailbox.flushOutbox();
    const sent = await rose.mailbox.list('alice', 'sent');
    assert.equal(sent.length, 1);
    assert.equal(sent[0]!.state, undefined);
    await elm.node.ingest((await records(rose.node)).map((r) => r.bytes));
    const inbox = await elm.mailbox.list('erin', 'inbox');
    assert.deepEqual(inbox.map((m) => [m.from, m.subject, m.body]), [['alice@rose', 'Welcome', 'Glad you joined.']]);
  });
});
