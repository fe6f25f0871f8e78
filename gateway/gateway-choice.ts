/**
 * Which SMTP gateway mesh mail to the internet is sealed to, when the directory knows several
 * (issue 7). Sealing picks one household that can open the mail, so the choice matters: a
 * gateway that went away would sit on the mail until it expires.
 *
 * Order, first match wins, deterministic for the same inputs:
 *  1. this household, when it is a mail gateway itself (the mail never leaves the house);
 *  2. gateways whose statement is fresh (a live gateway re-announces every
 *     `GATEWAY_REFRESH_S`; one silent for `GATEWAY_STALE_S` is taken to be down), preferring
 *     those heard directly on a link lately (the nearest); among equals the same one every
 *     time (by name), not whichever refreshed last, so a sender's mail keeps one route;
 *  3. only when every gateway is stale: the freshest of them (mail waits in a delay-tolerant
 *     mesh rather than being refused).
 * Ties go by household name, then key id. A withdrawn statement (no SMTP bit) is never chosen,
 * nor a gateway that takes internet mail in but has no smarthost to send it out (SmtpInOnly).
 */
import { toHex } from '../mesh/bytes.ts';
import { GatewayService, type KnownGateway } from '../mesh/directory.ts';

/** A gateway re-publishes its statement this often, so others can tell it is alive. */
export const GATEWAY_REFRESH_S = 6 * 3600;
/** A gateway whose newest statement is older than this is taken to be down. */
export const GATEWAY_STALE_S = 4 * GATEWAY_REFRESH_S;

export interface GatewayChoiceContext {
  /** This household's key id. */
  self: Uint8Array;
  /** Unix seconds. */
  now: number;
  /** Household key ids (hex) heard directly on a link lately. */
  heard?: ReadonlySet<string>;
}

function byName(a: KnownGateway, b: KnownGateway): number {
  return a.household.name.localeCompare(b.household.name) || toHex(a.household.id).localeCompare(toHex(b.household.id));
}

/** The SMTP gateway to seal internet mail to, or undefined when the mesh knows none. */
export function chooseMailGateway(gateways: readonly KnownGateway[], context: GatewayChoiceContext): KnownGateway | undefined {
  // A gateway that takes mail in but has no smarthost cannot send any out.
  const smtp = gateways.filter((g) => (g.services & GatewayService.Smtp) !== 0 && (g.services & GatewayService.SmtpInOnly) === 0);
  const self = toHex(context.self);
  const own = smtp.find((g) => toHex(g.household.id) === self);
  if (own) return own;
  const fresh = smtp.filter((g) => context.now - g.time <= GATEWAY_STALE_S);
  if (fresh.length === 0) return [...smtp].sort((a, b) => b.time - a.time || byName(a, b))[0];
  const heard = (g: KnownGateway) => (context.heard?.has(toHex(g.household.id)) ? 0 : 1);
  return fresh.sort((a, b) => heard(a) - heard(b) || byName(a, b))[0];
}
