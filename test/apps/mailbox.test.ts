/**
 * Mail between members: sealed to the recipients and the sender, readable only by them,
 * carried by another household without it being able to read it.
 */
import assert from 'node:assert/strict';
import { MemoryLevel } from 'memory-level';
import { fromHex, toHex } from '../../mesh/bytes.ts';
import { ManualClock } from '../../mesh/clock.ts';
import { Identity } from '../../mesh/identity.ts';
import { MeshNode } from '../../mesh/node.ts';
import { Priority, RecordKind, type Record } from '../../mesh/record.ts';
import { RecordStore } from '../../mesh/record-store.ts';
import { Mailbox } from '../../apps/mail/mailbox.ts';
import { encodeMail } from '../../apps/mail/mail-codec.ts';
import { announceGateway, NO_PEER_KEY } from '../../gateway/announce.ts';
import { GatewayService } from '../../mesh/directory.ts';
import { decodeReceipt, encodeReceipt, isReceipt, receiptFeed } from '../../apps/mail/mail-receipts.ts';
import { seededRandom } from '../helpers/random.ts';

async function household(name: string, members: string[], clock: ManualClock, seed: number, options: { neighbours?: () => number; carriers?: (id: Uint8Array) => number } = {}) {
  const random = seededRandom(seed);
  const store = await RecordStore.open(new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' }));
  const node = new MeshNode({ householdName: name }, { household: Identity.generate(random), store, clock, random });
  await node.start();
  const ids = new Map(members.map((m) => [m, Identity.generate(random)]));
  for (const [m, id] of ids) await node.certifyMember(m, id);
  const memberIdentity = async (m: string) => {
    const id = ids.get(m);
    if (!id) throw new Error(`no member ${m}`);
    return id;
  };
  const mailbox = new Mailbox({ node, memberIdentity, ...(options.neighbours ? { neighbours: options.neighbours } : {}), ...(options.carriers ? { carriers: options.carriers } : {}) });
  return { node, mailbox, memberIdentity };
}

/** Count the sealed mails a mailbox opens (each open is an X25519 agreement). */
function countOpens(mailbox: Mailbox): { count: number } {
  const counter = { count: 0 };
  const target = mailbox as unknown as { openMail: (...args: unknown[]) => unknown };
  const original = target.openMail.bind(mailbox);
  target.openMail = (...args: unknown[]) => {
    counter.count++;
    return original(...args);
  };
  return counter;
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
    // Internet addresses as people write them (SPEC §3) are taken; with no gateway known they wait.
    assert.equal(await codes(['bob@example.org']), 'sent');
    assert.equal(await codes(['bob.smith@example.org']), 'sent');
    assert.equal(await codes(['Bob.Smith+news@Mail.Example.org']), 'sent');
    assert.equal(await codes(['bob_x@rose']), 'bad_address', 'a member name is letters, digits and -');
    assert.equal(await codes(['bøb@example.org']), 'bad_address');
    assert.equal(await codes(['bob smith@example.org']), 'bad_address');
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
    assert.equal(sent[0]!.state, 'queued', 'sealed and stored; no neighbour has been in touch since');
    await elm.node.ingest((await records(rose.node)).map((r) => r.bytes));
    const inbox = await elm.mailbox.list('erin', 'inbox');
    assert.deepEqual(inbox.map((m) => [m.from, m.subject, m.body]), [['alice@rose', 'Welcome', 'Glad you joined.']]);
  });

  it('pages a folder newest first with limit and before, and lists one thread', async () => {
    const { mailbox } = await household('rose', ['alice', 'bob'], clock, 8);
    for (let i = 0; i < 25; i++) {
      await mailbox.send('alice', { to: ['bob@rose'], subject: i % 5 === 0 ? `Re: Plans ${i}` : `note ${i}`, body: `body ${i}` });
      clock.advance(1000);
    }
    await mailbox.send('alice', { to: ['bob@rose'], subject: 'Re: RE: fwd: Garden', body: 'x' });
    await mailbox.send('alice', { to: ['bob@rose'], subject: 'garden', body: 'y' });
    const seen: string[] = [];
    let before: string | undefined;
    for (;;) {
      const page = await mailbox.list('bob', 'inbox', { limit: 10, ...(before ? { before } : {}) });
      assert.ok(page.length <= 10);
      if (page.length === 0) break;
      seen.push(...page.map((m) => m.subject));
      before = page.at(-1)!.id;
    }
    assert.equal(seen.length, 27, 'every mail once, across pages');
    assert.equal(new Set(seen).size, 27);
    assert.deepEqual(seen.slice(2, 5), ['note 24', 'note 23', 'note 22'], 'newest first');
    const all = await mailbox.list('bob', 'inbox', { limit: 500 });
    assert.deepEqual(all.map((m) => m.subject), seen, 'pages join up to the whole folder');
    assert.equal((await mailbox.list('bob', 'inbox')).length, 27, 'the default page holds 50');
    const garden = await mailbox.list('bob', 'inbox', { thread: 'garden' });
    assert.deepEqual(garden.map((m) => m.body).sort(), ['x', 'y'], 'Re:/Fwd: prefixes and case do not split a thread');
    assert.equal(garden[0]!.thread, 'garden');
    assert.equal(all[0]!.size, 1);
    assert.deepEqual(await mailbox.list('bob', 'inbox', { before: 'ff'.repeat(32) }), [], 'an unknown cursor is an empty page');
  });

  it('opens each mail once: listing reads the index, a restart reloads it, mails stored meanwhile are caught up', async () => {
    const rose = await household('rose', ['alice', 'bob'], clock, 9);
    const opens = countOpens(rose.mailbox);
    for (let i = 0; i < 5; i++) await rose.mailbox.send('alice', { to: ['bob@rose'], subject: `m${i}`, body: 'b' });
    assert.equal((await rose.mailbox.list('bob', 'inbox')).length, 5);
    const indexed = opens.count;
    assert.equal(indexed, 10, 'each mail opened once by each member it is sealed to (sender and recipient), as it was stored');
    for (let i = 0; i < 3; i++) {
      assert.equal((await rose.mailbox.list('bob', 'inbox')).length, 5);
      assert.equal((await rose.mailbox.list('alice', 'sent')).length, 5);
    }
    assert.equal(opens.count, indexed, 'listing opened nothing');
    await rose.mailbox.markRead('bob', (await rose.mailbox.list('bob', 'inbox'))[0]!.id);

    // A mail stored while no mailbox listens (a crash between storing and indexing, an older version).
    const before = [...rose.node.listeners('record')];
    rose.node.removeAllListeners('record');
    await rose.mailbox.send('alice', { to: ['bob@rose'], subject: 'unindexed', body: 'late' });
    for (const l of before) rose.node.on('record', l as never);

    // "Restart": a new mailbox over the same store.
    const again = new Mailbox({ node: rose.node, memberIdentity: rose.memberIdentity });
    const reopened = countOpens(again);
    const inbox = await again.list('bob', 'inbox');
    assert.deepEqual(inbox.map((m) => m.subject).sort(), ['m0', 'm1', 'm2', 'm3', 'm4', 'unindexed']);
    assert.ok(inbox.find((m) => m.subject === 'unindexed'), 'caught up');
    assert.equal(reopened.count, 1, 'only the mail stored while nobody indexed was opened');
    assert.equal(inbox.filter((m) => m.read).length, 1, 'read state survives');
    assert.equal(inbox.find((m) => m.subject === 'unindexed')!.body, 'late');
  });

  it('shows a sent mail queued, then sent to the mesh, then delivered once the recipient household acknowledges it', async () => {
    let neighbours = 0;
    let carriers = 0;
    const rose = await household('rose', ['alice'], clock, 10, { neighbours: () => neighbours, carriers: () => carriers });
    const oak = await household('oak', ['dan'], clock, 11);
    await rose.node.ingest((await records(oak.node)).map((r) => r.bytes));
    const { id } = await rose.mailbox.send('alice', { to: ['dan@oak'], subject: 'Hi', body: 'there' });
    const state = async () => (await rose.mailbox.list('alice', 'sent')).find((m) => m.id === id)!.state;
    assert.equal(await state(), 'queued');
    neighbours = 1;
    assert.equal(await state(), 'sent to the mesh');
    carriers = 2;
    assert.equal(await state(), 'carried by 2 neighbours');
    carriers = 1;
    assert.equal(await state(), 'carried by 1 neighbour');
    neighbours = 0;
    // oak stores the mail (sync would carry it) and acknowledges it with one small public record.
    await oak.node.ingest((await records(rose.node)).map((r) => r.bytes));
    await oak.mailbox.receipts.flush();
    const receipts = (await records(oak.node)).filter((r) => isReceipt(r));
    assert.equal(receipts.length, 1);
    assert.deepEqual(decodeReceipt(receipts[0]!.payload).map(toHex), [id.slice(0, 16)]);
    assert.ok(receipts[0]!.bytes.length < 230, `a receipt fits one LoRa frame (${receipts[0]!.bytes.length} bytes)`);
    assert.equal(Buffer.from(receipts[0]!.bytes).includes(Buffer.from('there')), false);
    // The receipt travels back; the sender shows delivered.
    await rose.node.ingest(receipts.map((r) => r.bytes), 'a link');
    assert.equal(await state(), 'delivered');
    // No receipt for a receipt, and none twice for the same mail.
    await oak.node.ingest((await records(rose.node)).map((r) => r.bytes));
    await oak.mailbox.receipts.flush();
    assert.equal((await records(oak.node)).filter((r) => isReceipt(r)).length, 1);
    // Mail within the household is delivered at once (it is on this node).
    const { id: local } = await oak.mailbox.send('dan', { to: ['dan@oak'], subject: 'note to self', body: '.' });
    assert.equal((await oak.mailbox.list('dan', 'sent')).find((m) => m.id === local)!.state, 'delivered');
  });

  it('counts delivery per household, and a forged receipt from a third household does not count', async () => {
    const rose = await household('rose', ['alice'], clock, 12);
    const oak = await household('oak', ['dan'], clock, 13);
    const elm = await household('elm', ['erin'], clock, 14);
    const ash = await household('ash', ['abe'], clock, 15);
    for (const other of [oak, elm, ash]) await rose.node.ingest((await records(other.node)).map((r) => r.bytes));
    const { id } = await rose.mailbox.send('alice', { to: ['dan@oak', 'erin@elm'], subject: 'Both', body: '!' });
    const state = async () => (await rose.mailbox.list('alice', 'sent')).find((m) => m.id === id)!.state;
    // ash carries the mail (it is not sealed to ash): it does not acknowledge it.
    await ash.node.ingest((await records(rose.node)).map((r) => r.bytes));
    await ash.mailbox.receipts.flush();
    assert.equal((await records(ash.node)).filter((r) => isReceipt(r)).length, 0, 'a carrier does not acknowledge');
    // ash signs a receipt for it anyway: it is not a recipient's household, so it does not count.
    await ash.node.publish(ash.node.household, { kind: RecordKind.Mail, feed: receiptFeed(ash.node.household.id), priority: Priority.Normal, ttl: 3600, payload: encodeReceipt([fromHex(id)]) });
    await rose.node.ingest((await records(ash.node)).map((r) => r.bytes), 'a link');
    assert.equal(await state(), 'sent to the mesh');
    await oak.node.ingest((await records(rose.node)).map((r) => r.bytes));
    await oak.mailbox.receipts.flush();
    await rose.node.ingest((await records(oak.node)).map((r) => r.bytes), 'a link');
    assert.equal(await state(), 'delivered to 1 of 2 households');
    await elm.node.ingest((await records(rose.node)).map((r) => r.bytes));
    await elm.mailbox.receipts.flush();
    await rose.node.ingest((await records(elm.node)).map((r) => r.bytes), 'a link');
    assert.equal(await state(), 'delivered');
    // Receipts stored before a restart count after it.
    const again = new Mailbox({ node: rose.node, memberIdentity: rose.memberIdentity });
    assert.equal((await again.list('alice', 'sent')).find((m) => m.id === id)!.state, 'delivered');
  });

  it('internet mail written before any gateway is known waits, in date order in Sent, and goes out through the first gateway', async () => {
    const { node, mailbox } = await household('rose', ['alice', 'bob'], clock, 11);
    const { id: early } = await mailbox.send('alice', { to: ['bob@rose'], subject: 'first', body: 'mesh' });
    clock.advance(60_000);
    const { id: outboxId } = await mailbox.send('alice', { to: ['Dan.Smith+news@Example.org'], subject: 'second', body: 'internet' });
    assert.match(outboxId, /^[0-9a-f]{32}$/, 'an outbox id: nothing sealed yet');
    clock.advance(60_000);
    const { id: late } = await mailbox.send('alice', { to: ['bob@rose'], subject: 'third', body: 'mesh' });
    const sent = await mailbox.list('alice', 'sent');
    assert.deepEqual(
      sent.map((m) => [m.id, m.state]),
      [
        [late, 'delivered'],
        [outboxId, 'waiting for a mail gateway'],
        [early, 'delivered'],
      ],
      'newest first, the waiting mail among the others by its date',
    );
    // A household announces an SMTP gateway (a directory record): the waiting mail is sealed and published.
    await announceGateway(node, { peerKey: NO_PEER_KEY, services: GatewayService.Smtp, domain: 'mesh.test', addrs: [] });
    await mailbox.flushOutbox();
    const after = await mailbox.list('alice', 'sent');
    const second = after.find((m) => m.subject === 'second')!;
    assert.match(second.id, /^[0-9a-f]{64}$/, 'a mail record now');
    assert.deepEqual(second.to, ['dan.smith+news@example.org']);
    assert.equal(after.filter((m) => m.state?.startsWith('waiting')).length, 0);
  });

  it('alice@rose.D of a mail domain the mesh knows is alice@rose: it goes through the mesh, not out and back', async () => {
    const { node, mailbox } = await household('rose', ['alice', 'bob'], clock, 10);
    await announceGateway(node, { peerKey: NO_PEER_KEY, services: GatewayService.Smtp, domain: 'mesh.test', addrs: [] }, { refreshAfterS: 3600 });
    const { id } = await mailbox.send('alice', { to: ['Bob@Rose.Mesh.Test', 'bob@rose'], subject: 'Same box', body: 'Once.' });
    const inbox = await mailbox.list('bob', 'inbox');
    assert.deepEqual(inbox.map((m) => [m.id, m.to]), [[id, ['bob@rose']]]);
    // Another domain, or a name under the domain that is no member@household, stays an internet address.
    const sent = async (to: string) => {
      await mailbox.send('alice', { to: [to], subject: to, body: 'x' });
      return (await mailbox.list('alice', 'sent')).find((m) => m.subject === to)!.to;
    };
    assert.deepEqual(await sent('bob@rose.other.test'), ['bob@rose.other.test']);
    assert.deepEqual(await sent('bob@a.rose.mesh.test'), ['bob@a.rose.mesh.test']);
  });

  it('internet mail with a subject or sender over the layout’s byte limits is fitted, never taken and then lost', async () => {
    // An SMTP client may send 400 CJK characters of subject (1,200 bytes, over the 998 a mail
    // holds) and a sender address of any length: the mail must still be readable.
    const { mailbox } = await household('rose', ['alice'], clock, 9);
    const subject = '日'.repeat(400);
    const { id } = await mailbox.deliverAsHousehold({ from: `${'x'.repeat(400)}@example.org`, to: ['alice@rose'], subject, body: 'long subject' });
    const inbox = await mailbox.list('alice', 'inbox');
    assert.deepEqual(inbox.map((m) => m.id), [id]);
    assert.equal(inbox[0]!.subject, '日'.repeat(332), 'cut at a character boundary, within 998 bytes');
    assert.equal(inbox[0]!.from, 'unknown@invalid');
    assert.equal(inbox[0]!.body, 'long subject');
    // The encoder refuses what its decoder would refuse, so nothing undecodable is sealed.
    const code = (mail: Parameters<typeof encodeMail>[0]) => {
      try {
        encodeMail(mail);
        return 'ok';
      } catch (err) {
        return (err as { code: string }).code;
      }
    };
    assert.equal(code({ from: 'a@rose', to: ['b@rose'], subject, body: '' }), 'MAIL_INVALID');
    assert.equal(code({ from: `${'x'.repeat(320)}@rose`, to: ['b@rose'], subject: '', body: '' }), 'MAIL_INVALID');
    assert.equal(code({ from: 'a@rose', to: [], subject: '', body: '' }), 'MAIL_INVALID');
    assert.equal(code({ from: 'a@rose', to: ['b@rose'], subject: '日'.repeat(332), body: '' }), 'ok');
  });

  it('decodes receipts strictly', () => {
    const ids = [new Uint8Array(8).fill(1), new Uint8Array(8).fill(2)];
    assert.deepEqual(decodeReceipt(encodeReceipt(ids)), ids);
    const code = (bytes: Uint8Array) => {
      try {
        decodeReceipt(bytes);
        return 'ok';
      } catch (err) {
        return (err as { code: string }).code;
      }
    };
    assert.equal(code(Uint8Array.of(2, 1, ...new Uint8Array(8))), 'RECEIPT_VERSION');
    assert.equal(code(Uint8Array.of(1, 0)), 'RECEIPT_MALFORMED');
    assert.equal(code(Uint8Array.of(1, 2, ...new Uint8Array(8))), 'RECEIPT_MALFORMED');
    assert.equal(code(Uint8Array.of(1, 1, ...new Uint8Array(9))), 'RECEIPT_MALFORMED');
    assert.equal(code(Uint8Array.of(1, 13, ...new Uint8Array(104))), 'RECEIPT_MALFORMED');
    assert.throws(() => encodeReceipt([]), /1 to 12/);
  });
});
