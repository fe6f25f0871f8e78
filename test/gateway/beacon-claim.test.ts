/**
 * A libp2p peer's beacons must speak for the household the directory binds the peer to
 * (gateway/beacon-claim.ts, issue 7): a replayed or misattributed beacon is dropped and
 * counted (`dropped.household-mismatch`) while the peer's other frames still flow. Tested on
 * the pure rule and between real libp2p links on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { equalBytes } from '../../mesh/bytes.ts';
import { Identity } from '../../mesh/identity.ts';
import { encodeBeacon, encodeRecordMessage } from '../../mesh/sync-messages.ts';
import { encodeFragment } from '../../radio/fragmentation.ts';
import type { Clock } from '../../radio/link.ts';
import { beaconClaimHolds, beaconSender, type PeerBindings } from '../../gateway/beacon-claim.ts';
import { createLibp2pLink, type Libp2pLink } from '../../gateway/libp2p-link.ts';
import { seededRandom } from '../helpers/random.ts';
import { collect, waitUntil } from '../radio/link.contract.ts';

const clock: Clock = { now: () => Date.now() };
const random = seededRandom(21);
const [rose, elm, oak, ash] = [Identity.generate(random), Identity.generate(random), Identity.generate(random), Identity.generate(random)];
const whole = (message: Uint8Array) => encodeFragment({ kind: 'whole', payload: message });
const beaconOf = (household: Identity) => whole(encodeBeacon(household, { time: Math.floor(Date.now() / 1000), records: 1, gateway: true }));

function bindingsFor(table: { peerKey: Uint8Array; household: Identity }[]): PeerBindings {
  return {
    householdOfPeer: (key) => table.find((b) => equalBytes(b.peerKey, key))?.household.id ?? null,
    peerOfHousehold: (id) => table.find((b) => equalBytes(b.household.id, id))?.peerKey ?? null,
  };
}

describe('gateway/beacon-claim: beacons over libp2p speak for the peer’s own household', () => {
  const roseKey = new Uint8Array(32).fill(1);
  const oakKey = new Uint8Array(32).fill(2);
  const strangerKey = new Uint8Array(32).fill(3);
  const bindings = bindingsFor([
    { peerKey: roseKey, household: rose },
    { peerKey: oakKey, household: oak },
  ]);

  it('reads the household of a whole beacon frame, and nothing else', () => {
    assert.deepEqual(beaconSender(beaconOf(rose)), rose.id);
    assert.equal(beaconSender(whole(encodeRecordMessage(rose.id, new Uint8Array(10)))), null, 'a record message');
    const fragment = encodeFragment({ kind: 'fragment', messageId: 1, index: 0, count: 2, chunk: beaconOf(rose).subarray(1) });
    assert.equal(beaconSender(fragment), null, 'a fragment');
    assert.equal(beaconSender(beaconOf(rose).subarray(0, 9)), null, 'too short');
  });

  it('a bound peer may beacon only as its household; a stranger not as a household bound to another peer', () => {
    assert.equal(beaconClaimHolds(roseKey, rose.id, bindings), true);
    assert.equal(beaconClaimHolds(roseKey, elm.id, bindings), false, 'rose’s peer replaying elm’s beacon');
    assert.equal(beaconClaimHolds(roseKey, oak.id, bindings), false, 'rose’s peer passing for oak');
    assert.equal(beaconClaimHolds(strangerKey, oak.id, bindings), false, 'a stranger replaying oak’s beacon');
    assert.equal(beaconClaimHolds(null, oak.id, bindings), false, 'a peer of unknown key type');
    assert.equal(beaconClaimHolds(strangerKey, ash.id, bindings), true, 'a household with no libp2p statement: left to the signature checks');
  });

  describe('between real libp2p links', function () {
    this.timeout(30_000);
    const links: Libp2pLink[] = [];
    afterEach(async () => {
      await Promise.all(links.splice(0).map((l) => l.stop()));
    });

    it('drops and counts a mismatched beacon; the peer’s other frames arrive', async () => {
      const [seedGw, seedRose, seedStranger] = [0, 1, 2].map(() => new Uint8Array(randomBytes(32)));
      // The keys are known only once the links exist: the table is filled in below.
      const table: { peerKey: Uint8Array; household: Identity }[] = [];
      const gateway = await createLibp2pLink({ keySeed: seedGw!, listen: ['/ip4/127.0.0.1/tcp/0'] }, { clock, bindings: bindingsFor(table) });
      links.push(gateway);
      await gateway.start();
      const inbox = collect(gateway);
      const peerOf = async (seed: Uint8Array) => {
        const link = await createLibp2pLink({ keySeed: seed, listen: [], peers: [gateway.addrs()[0]!] }, { clock });
        links.push(link);
        await link.start();
        await waitUntil(() => link.gatewayStats().peers.some((p) => p.sending), 'the peer connected', 10_000);
        return link;
      };
      const rosePeer = await peerOf(seedRose!);
      const stranger = await peerOf(seedStranger!);
      table.push({ peerKey: rosePeer.peerKey, household: rose }, { peerKey: new Uint8Array(32).fill(7), household: oak });

      await rosePeer.send(beaconOf(elm)); // rose's peer replays elm's beacon
      await stranger.send(beaconOf(oak)); // a stranger replays oak's (oak speaks over libp2p with another key)
      const record = whole(encodeRecordMessage(rose.id, Uint8Array.of(1, 2, 3)));
      await rosePeer.send(beaconOf(rose));
      await rosePeer.send(record);
      await stranger.send(beaconOf(ash));
      await waitUntil(() => inbox.frames.length >= 3, 'the honest frames', 10_000);
      const got = inbox.frames.map((f) => beaconSender(f.frame));
      assert.equal(got.length, 3);
      assert.ok(got.some((s) => s && equalBytes(s, rose.id)), 'rose’s own beacon');
      assert.ok(got.some((s) => s && equalBytes(s, ash.id)), 'ash has no libp2p statement: its beacon passes on to the signature checks');
      assert.ok(got.includes(null), 'the record message');
      assert.equal(gateway.gatewayStats().dropped['household-mismatch'], 2);
      assert.equal(gateway.gatewayStats().connections, 2, 'nobody was hung up on');
    });
  });
});
