/**
 * The mesh side of a mail gateway (apps/mail/mail-gateway.ts) that takes internet mail in
 * (--smtp-listen) but has no smarthost (--smtp-relay). It announces SMTP in only, so no node
 * seals internet mail to it now; mail sealed to it all the same (by a node that predates that
 * bit: here the statement is announced without it) must come back to its author as a bounce,
 * once, not be kept in silence while the Sent folder says nothing went wrong.
 */
import assert from 'node:assert/strict';
import { MemoryLevel } from 'memory-level';
import { ManualClock } from '../../mesh/clock.ts';
import { GatewayService } from '../../mesh/directory.ts';
import { Identity } from '../../mesh/identity.ts';
import { MeshNode } from '../../mesh/node.ts';
import { RecordStore } from '../../mesh/record-store.ts';
import { announceGateway, NO_PEER_KEY } from '../../gateway/announce.ts';
import { GATEWAY_REFRESH_S } from '../../gateway/gateway-choice.ts';
import { MailGateway } from '../../apps/mail/mail-gateway.ts';
import { Mailbox } from '../../apps/mail/mailbox.ts';
import { seededRandom } from '../helpers/random.ts';
import { eventually } from '../helpers/citizen.ts';

/** Household fir with member alice, announcing SMTP for mesh.test as nodes did before the "in only" bit. */
async function gatewayHousehold(seed: number): Promise<{ node: MeshNode; mailbox: Mailbox }> {
  const clock = new ManualClock(Date.UTC(2026, 10, 1));
  const random = seededRandom(seed);
  const store = await RecordStore.open(new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' }));
  const node = new MeshNode({ householdName: 'fir' }, { household: Identity.generate(random), store, clock, random });
  await node.start();
  const alice = Identity.generate(random);
  await node.certifyMember('alice', alice);
  const mailbox = new Mailbox({ node, memberIdentity: async () => alice });
  await announceGateway(node, { peerKey: NO_PEER_KEY, services: GatewayService.Smtp, domain: 'mesh.test', addrs: [] }, { refreshAfterS: GATEWAY_REFRESH_S });
  return { node, mailbox };
}

describe('apps/mail/mail-gateway: a gateway without a smarthost', () => {
  it('bounces internet mail sealed to it to the author, once, also across a restart', async () => {
    const { node, mailbox } = await gatewayHousehold(21);
    let gateway = new MailGateway({ node, mailbox, domain: 'mesh.test' });
    await gateway.start();

    await mailbox.send('alice', { to: ['dan@example.org'], subject: 'Hello Dan', body: 'Are you there?' });
    // The gateway takes the record in an event handler: polled, bounded to 5 s.
    const bounce = await eventually('the bounce in alice’s inbox', async () => (await mailbox.list('alice', 'inbox')).find((m) => m.subject === 'Undeliverable: Hello Dan'), 5000, 20);
    assert.equal(bounce.from, 'mailer-daemon@fir');
    assert.match(bounce.body, /^Your mail to dan@example\.org could not be delivered/);
    assert.match(bounce.body, /no smarthost/);
    assert.match(bounce.body, /Are you there\?/);

    // A restart looks at every mail sealed to the household again: no second bounce.
    gateway.stop();
    gateway = new MailGateway({ node, mailbox, domain: 'mesh.test' });
    await gateway.start();
    gateway.stop();
    assert.equal((await mailbox.list('alice', 'inbox')).filter((m) => m.subject === 'Undeliverable: Hello Dan').length, 1);
  });

  it('a mail it cannot handle at start is logged, does not keep the node from starting, and is handled at the next start', async () => {
    const { node, mailbox } = await gatewayHousehold(22);
    await mailbox.send('alice', { to: ['dan@example.org'], subject: 'Before the start', body: 'x' });
    // The bounce cannot be written (the mailbox fails): start() still resolves, the failure is logged.
    const failing = Object.assign(Object.create(mailbox) as Mailbox, { deliverAsHousehold: () => Promise.reject(new Error('store full')) });
    const lines: string[] = [];
    const gateway = new MailGateway({ node, mailbox: failing, domain: 'mesh.test', log: (line) => lines.push(line) });
    await gateway.start();
    gateway.stop();
    assert.deepEqual(lines, ['smtp: store full']);
    // The bounce was not written, so the mail is not marked done: the next start bounces it.
    const next = new MailGateway({ node, mailbox, domain: 'mesh.test' });
    await next.start();
    next.stop();
    assert.deepEqual((await mailbox.list('alice', 'inbox')).map((m) => m.subject), ['Undeliverable: Before the start']);
  });
});
