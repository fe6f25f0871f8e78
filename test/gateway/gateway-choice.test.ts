/**
 * Choosing among several SMTP gateways (gateway/gateway-choice.ts, issue 7): the household's
 * own first, then live ones (statements refreshed within GATEWAY_STALE_S), the nearest (heard
 * on a link) before the rest, by name among equals; a stale gateway is skipped while a live
 * one exists; a withdrawn one never chosen. End to end: two gateway households announce,
 * one goes silent, and mail to the internet is sealed to the other.
 */
import assert from 'node:assert/strict';
import { MemoryLevel } from 'memory-level';
import { toHex } from '../../mesh/bytes.ts';
import { ManualClock } from '../../mesh/clock.ts';
import { GatewayService, type KnownGateway } from '../../mesh/directory.ts';
import { Identity } from '../../mesh/identity.ts';
import { MeshNode } from '../../mesh/node.ts';
import { RecordKind } from '../../mesh/record.ts';
import { RecordStore } from '../../mesh/record-store.ts';
import { open } from '../../mesh/seal.ts';
import { announceGateway, NO_PEER_KEY } from '../../gateway/announce.ts';
import { chooseMailGateway, GATEWAY_REFRESH_S, GATEWAY_STALE_S } from '../../gateway/gateway-choice.ts';
import { Mailbox, mailFeed } from '../../apps/mail/mailbox.ts';
import { gatewayServices } from '../../apps/daemon/gateways.ts';
import { seededRandom } from '../helpers/random.ts';

const NOW = 1_800_000_000;

function gateway(name: string, idByte: number, time: number, services: number = GatewayService.Smtp): KnownGateway {
  const id = new Uint8Array(16).fill(idByte);
  return {
    peerKey: NO_PEER_KEY,
    services,
    domain: 'mesh.test',
    addrs: [],
    seq: 1,
    time,
    household: { name, id, signingKey: new Uint8Array(32), agreementKey: new Uint8Array(32), members: new Map(), seq: 1 },
  };
}

describe('gateway/gateway-choice: which mail gateway internet mail is sealed to', () => {
  const self = new Uint8Array(16).fill(99);
  const elm = gateway('elm', 1, NOW - 60);
  const oak = gateway('oak', 2, NOW - 30);

  it('is the same gateway every time among equals (by name, not by who refreshed last)', () => {
    assert.equal(chooseMailGateway([oak, elm], { self, now: NOW })?.household.name, 'elm');
    assert.equal(chooseMailGateway([elm, oak], { self, now: NOW })?.household.name, 'elm');
  });

  it('prefers a gateway heard directly on a link (the nearest)', () => {
    assert.equal(chooseMailGateway([elm, oak], { self, now: NOW, heard: new Set([toHex(oak.household.id)]) })?.household.name, 'oak');
  });

  it('skips a stale gateway while a live one is known, even a near one', () => {
    const staleElm = gateway('elm', 1, NOW - GATEWAY_STALE_S - 1);
    assert.equal(chooseMailGateway([staleElm, oak], { self, now: NOW, heard: new Set([toHex(staleElm.household.id)]) })?.household.name, 'oak');
  });

  it('when every gateway is stale, takes the freshest rather than refusing the mail', () => {
    const a = gateway('elm', 1, NOW - 3 * GATEWAY_STALE_S);
    const b = gateway('oak', 2, NOW - 2 * GATEWAY_STALE_S);
    assert.equal(chooseMailGateway([a, b], { self, now: NOW })?.household.name, 'oak');
  });

  it('never chooses a gateway that takes mail in only (no smarthost), though it is our own, fresh and heard', () => {
    const inOnly = GatewayService.Smtp | GatewayService.SmtpInOnly;
    const own = gateway('rose', 99, NOW, inOnly);
    const ash = gateway('ash', 3, NOW, inOnly);
    const staleOak = gateway('oak', 2, NOW - 10 * GATEWAY_STALE_S);
    const heard = new Set([toHex(ash.household.id)]);
    assert.equal(chooseMailGateway([own, ash, staleOak], { self, now: NOW, heard })?.household.name, 'oak');
    assert.equal(chooseMailGateway([own, ash], { self, now: NOW, heard }), undefined, 'no gateway can send: the mail waits');
    // What a node announces: --smtp-listen alone is in only; with --smtp-relay it sends too.
    const listen = { host: '127.0.0.1', port: 2525 };
    assert.equal(gatewayServices({ mailDomain: 'mesh.test', smtpListen: listen }, null), inOnly);
    assert.equal(gatewayServices({ mailDomain: 'mesh.test', smtpListen: listen, smtpRelay: 'smtp://127.0.0.1:2526' }, null), GatewayService.Smtp);
    assert.equal(gatewayServices({ mailDomain: 'mesh.test', smtpRelay: 'smtp://127.0.0.1:2526' }, null), GatewayService.Smtp);
    assert.equal(gatewayServices({}, null), 0);
  });

  it('never chooses a gateway without SMTP; the own household comes first', () => {
    const p2pOnly = gateway('ash', 3, NOW, GatewayService.Libp2p);
    assert.equal(chooseMailGateway([p2pOnly], { self, now: NOW }), undefined);
    const own = gateway('rose', 99, NOW - 10 * GATEWAY_STALE_S);
    assert.equal(chooseMailGateway([elm, oak, own, p2pOnly], { self, now: NOW })?.household.name, 'rose');
  });
});

describe('two mail gateways in the directory, one gone silent', () => {
  it('seals internet mail to the live gateway; a live gateway re-announces', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 1));
    const make = async (name: string, seed: number) => {
      const random = seededRandom(seed);
      const store = await RecordStore.open(new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' }));
      const node = new MeshNode({ householdName: name }, { household: Identity.generate(random), store, clock, random });
      await node.start();
      return node;
    };
    const [rose, elm, oak] = [await make('rose', 11), await make('elm', 12), await make('oak', 13)];
    const statement = { peerKey: NO_PEER_KEY, services: GatewayService.Smtp, domain: 'mesh.test', addrs: [] };
    await announceGateway(elm, statement, { refreshAfterS: GATEWAY_REFRESH_S });
    await announceGateway(oak, statement, { refreshAfterS: GATEWAY_REFRESH_S });
    clock.advance((GATEWAY_REFRESH_S + 60) * 1000);
    // Oak is alive and refreshes its statement; elm has gone silent since.
    assert.equal(await announceGateway(oak, statement, { refreshAfterS: GATEWAY_REFRESH_S }), true, 'refreshed after GATEWAY_REFRESH_S');
    assert.equal(await announceGateway(oak, statement, { refreshAfterS: GATEWAY_REFRESH_S }), false, 'not again at once');
    const alice = Identity.generate(seededRandom(14));
    await rose.certifyMember('alice', alice);
    const mailbox = new Mailbox({ node: rose, memberIdentity: async () => alice });

    const carry = async () => {
      for (const from of [elm, oak]) {
        const bytes: Uint8Array[] = [];
        for await (const r of from.store.records()) bytes.push(r.bytes);
        await rose.ingest(bytes);
      }
    };
    const sealedTo = async (subject: string) => {
      await mailbox.send('alice', { to: ['bob@outside.test'], subject, body: 'to the internet' });
      const mails = (await rose.store.byAuthor(alice.id, mailFeed(alice.id))).filter((r) => r.kind === RecordKind.Mail);
      const record = mails[mails.length - 1]!;
      const opens = (n: MeshNode) => {
        try {
          open(record.payload, n.household, record.author);
          return true;
        } catch {
          return false;
        }
      };
      return [elm, oak].filter(opens).map((n) => n.householdName);
    };

    await carry();
    assert.equal(rose.directory.gateways().length, 2);
    assert.deepEqual(await sealedTo('both live'), ['elm'], 'both live: elm, by name');
    clock.advance((GATEWAY_STALE_S - GATEWAY_REFRESH_S) * 1000);
    await announceGateway(oak, statement, { refreshAfterS: GATEWAY_REFRESH_S });
    await carry();
    assert.deepEqual(await sealedTo('elm silent'), ['oak'], 'elm silent for longer than GATEWAY_STALE_S: skipped');
  });
});
