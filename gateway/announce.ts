/**
 * The gateway statement (mesh/directory.ts, role Gateway): a household with libp2p or SMTP
 * tells the mesh, in a record signed by its household key, which libp2p peer key is its own,
 * where it can be dialled and which mail domain it serves — so the mesh knows where the
 * internet is, and a libp2p peer cannot pretend to be a household.
 */
import { equalBytes } from '../mesh/bytes.ts';
import { directoryFeed, encodeGatewayStatement, MAX_GATEWAY_ADDRS, type GatewayStatement } from '../mesh/directory.ts';
import type { MeshNode } from '../mesh/node.ts';
import { Priority, RecordKind } from '../mesh/record.ts';

/** No libp2p: the peer key field is all zero. */
export const NO_PEER_KEY = new Uint8Array(32);

function sameStatement(a: GatewayStatement, b: GatewayStatement): boolean {
  return equalBytes(a.peerKey, b.peerKey) && a.services === b.services && a.domain === b.domain && a.addrs.join(' ') === b.addrs.join(' ');
}

/**
 * Publish the household's gateway statement unless the directory already holds the same one
 * made less than `refreshAfterS` ago (default: never refreshed): a live gateway re-announces,
 * so others can tell a gateway that went away (gateway/gateway-choice.ts). Addresses beyond
 * the eighth are left out (loopback ones last). Resolves to true when a statement was published.
 */
export async function announceGateway(node: MeshNode, statement: GatewayStatement, options: { refreshAfterS?: number } = {}): Promise<boolean> {
  const addrs = [...statement.addrs]
    .sort((a, b) => Number(isLoopback(a)) - Number(isLoopback(b)))
    .slice(0, MAX_GATEWAY_ADDRS);
  const wanted = { ...statement, addrs };
  const known = node.directory.gateway(node.household.id);
  const due = options.refreshAfterS !== undefined && known !== undefined && node.now() - known.time >= options.refreshAfterS;
  if (known && sameStatement(known, wanted) && !due) return false;
  await node.publish(node.household, {
    kind: RecordKind.Directory,
    feed: directoryFeed(node.household.signingKey),
    priority: Priority.Normal,
    payload: encodeGatewayStatement(wanted),
  });
  return true;
}

function isLoopback(addr: string): boolean {
  return addr.startsWith('/ip4/127.') || addr.startsWith('/ip6/::1/');
}

