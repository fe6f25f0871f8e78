/**
 * Does a libp2p peer's beacon speak for the household the peer is? A beacon is signed by its
 * household key, but signed bytes can be replayed: a hostile peer could forward rose's fresh
 * beacons and pass for rose. Over libp2p the gateway statements (directory role 4) say which
 * peer key each household uses, so a beacon is believed only when its household and the
 * sending peer agree:
 *
 *  - a peer bound to household H (its key named in H's statement) may beacon only as H;
 *  - a peer bound to no household may not beacon as a household whose statement names
 *    another peer key (that household speaks over libp2p as itself);
 *  - anything else (a household without a libp2p statement, a stranger) is left to the
 *    beacon's own signature and time checks in mesh/sync.ts.
 *
 * Only frames that carry one whole sync message are looked at (radio/fragmentation.ts kind 0);
 * beacons are small and always travel whole.
 */
import { equalBytes } from '../mesh/bytes.ts';
import { KEY_ID_LENGTH } from '../mesh/identity.ts';
import { SYNC_VERSION, SyncType } from '../mesh/sync-messages.ts';
import { FRAGMENT_VERSION } from '../radio/fragmentation.ts';

/** What the directory says about peer keys and households (all key ids are household key ids). */
export interface PeerBindings {
  /** Key id of the household whose gateway statement names this libp2p peer key, or null. */
  householdOfPeer(peerKey: Uint8Array): Uint8Array | null;
  /** The libp2p peer key a household's gateway statement names, or null. */
  peerOfHousehold(householdKeyId: Uint8Array): Uint8Array | null;
}

const WHOLE = FRAGMENT_VERSION << 4; // kind 0: one whole message
const BEACON = (SYNC_VERSION << 4) | SyncType.Beacon;

/** The household key id a frame's beacon claims, or null when the frame is not a whole beacon. */
export function beaconSender(frame: Uint8Array): Uint8Array | null {
  if (frame.length < 2 + KEY_ID_LENGTH || frame[0] !== WHOLE || frame[1] !== BEACON) return null;
  return frame.subarray(2, 2 + KEY_ID_LENGTH);
}

/** False when the beacon's household and the peer that sent it contradict the directory. */
export function beaconClaimHolds(peerKey: Uint8Array | null, claimed: Uint8Array, bindings: PeerBindings): boolean {
  const bound = peerKey ? bindings.householdOfPeer(peerKey) : null;
  if (bound) return equalBytes(bound, claimed);
  const speaker = bindings.peerOfHousehold(claimed);
  return speaker === null || (peerKey !== null && equalBytes(speaker, peerKey));
}
