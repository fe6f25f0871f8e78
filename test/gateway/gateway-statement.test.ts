/**
 * The gateway statement (mesh/directory.ts, role 4): its byte layout, malformed bytes refused
 * with a typed error, and the directory binding a libp2p peer key to the household that
 * signed the statement — only the household key itself may make one.
 */
import assert from 'node:assert/strict';
import { toHex } from '../../mesh/bytes.ts';
import { ManualClock } from '../../mesh/clock.ts';
import {
  decodeDirectoryEntry,
  decodeGatewayStatement,
  directoryFeed,
  encodeGatewayStatement,
  GatewayService,
  type GatewayStatement,
} from '../../mesh/directory.ts';
import { Identity } from '../../mesh/identity.ts';
import { createRecord, Priority, RecordKind } from '../../mesh/record.ts';
import { announceGateway } from '../../gateway/announce.ts';
import { memoryNode } from '../helpers/memory-node.ts';
import { seededRandom } from '../helpers/random.ts';

const statement: GatewayStatement = {
  peerKey: Uint8Array.from({ length: 32 }, (_, i) => i),
  services: GatewayService.Libp2p | GatewayService.Smtp,
  domain: 'mesh.example',
  addrs: ['/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWx'],
};

describe('gateway statement (directory role 4)', () => {
  it('has the documented layout and decodes back', () => {
    const bytes = encodeGatewayStatement(statement);
    assert.deepEqual([...bytes.subarray(0, 2)], [1, 4]);
    assert.deepEqual(bytes.subarray(2, 34), statement.peerKey);
    assert.equal(bytes[34], 3);
    assert.equal(bytes[35], 12);
    assert.equal(new TextDecoder().decode(bytes.subarray(36, 48)), 'mesh.example');
    assert.equal(bytes[48], 1);
    assert.equal(bytes.length, 48 + 1 + 1 + statement.addrs[0]!.length);
    assert.deepEqual(decodeGatewayStatement(bytes), statement);
  });

  it('refuses malformed statements with DIRECTORY_MALFORMED', () => {
    const good = encodeGatewayStatement(statement);
    const bad = [good.subarray(0, 20), Uint8Array.from([...good, 0]), Uint8Array.from(good).fill(9, 34, 35), Uint8Array.from(good).fill(0x41, 36, 37)];
    for (const b of bad) assert.throws(() => decodeGatewayStatement(b), { code: 'DIRECTORY_MALFORMED' });
    assert.throws(() => decodeDirectoryEntry(good), { code: 'DIRECTORY_MALFORMED' });
    assert.throws(() => encodeGatewayStatement({ ...statement, domain: 'Not A Domain' }), { code: 'GATEWAY_INVALID' });
    // Bit 2 (SMTP in only) qualifies SMTP: alone it means nothing; bit 3 and above are unknown.
    const inOnly = { ...statement, services: GatewayService.Smtp | GatewayService.SmtpInOnly };
    assert.deepEqual(decodeGatewayStatement(encodeGatewayStatement(inOnly)), inOnly);
    for (const services of [GatewayService.SmtpInOnly, GatewayService.Libp2p | GatewayService.SmtpInOnly, 8]) {
      assert.throws(() => encodeGatewayStatement({ ...statement, services }), { code: 'GATEWAY_INVALID' });
      assert.throws(() => decodeGatewayStatement(Uint8Array.from(good).fill(services, 34, 35)), { code: 'DIRECTORY_MALFORMED' });
    }
    assert.throws(() => encodeGatewayStatement({ ...statement, addrs: Array(9).fill('/ip4/1.2.3.4/tcp/1') }), { code: 'GATEWAY_INVALID' });
  });

  it('binds the peer key to the announcing household, at every node that syncs it', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 1));
    const rose = await memoryNode('rose', clock, 1);
    const oak = await memoryNode('oak', clock, 2);
    assert.equal(await announceGateway(rose, statement), true);
    assert.equal(await announceGateway(rose, statement), false, 'the same statement is not published twice');
    const records = [];
    for await (const r of rose.store.records()) records.push(r.bytes);
    await oak.ingest(records.reverse());
    assert.equal(oak.directory.householdOfPeerKey(statement.peerKey)?.name, 'rose');
    assert.deepEqual(oak.directory.gateways().map((g) => [g.household.name, g.domain]), [['rose', 'mesh.example']]);
    // Withdrawn: no service bits.
    await announceGateway(rose, { ...statement, services: 0 });
    assert.equal(rose.directory.householdOfPeerKey(statement.peerKey), undefined);
    assert.equal(rose.directory.gateways().length, 0);
  });

  it('a member key cannot speak for the household gateway', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 1));
    const rose = await memoryNode('rose', clock, 3);
    const mallory = Identity.generate(seededRandom(4));
    await rose.certifyMember('mallory', mallory);
    const forged = createRecord(
      { kind: RecordKind.Directory, feed: directoryFeed(mallory.signingKey), priority: Priority.Normal, seq: 1, time: rose.now(), payload: encodeGatewayStatement(statement) },
      mallory,
    );
    await rose.ingest([forged.bytes]);
    assert.equal(rose.directory.householdOfPeerKey(statement.peerKey), undefined);
    assert.equal(toHex(rose.household.id).length, 16);
  });
});
