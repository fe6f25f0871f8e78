/**
 * The internet and LAN gateways of `citizen start` (SPEC §2: --p2p-listen, --p2p-peer, --lan,
 * --smtp-listen, --mail-domain, --smtp-relay, --smtp-relay-ca), built from gateway/ and wired to this node:
 * the libp2p link (synced over like any other link), the gateway statement in the directory,
 * and the SMTP bridge.
 */
import { readFileSync } from 'node:fs';
import type { Clock } from '../../mesh/clock.ts';
import { fromHex } from '../../mesh/bytes.ts';
import { GatewayService } from '../../mesh/directory.ts';
import type { MeshNode } from '../../mesh/node.ts';
import { announceGateway, NO_PEER_KEY } from '../../gateway/announce.ts';
import { GATEWAY_REFRESH_S } from '../../gateway/gateway-choice.ts';
import type { Libp2pGatewayStats, Libp2pLink } from '../../gateway/libp2p-link.ts';
import { GatewayError } from '../../gateway/errors.ts';
import { AppError } from '../errors.ts';
import { MailGateway } from '../mail/mail-gateway.ts';
import type { Mailbox } from '../mail/mailbox.ts';
import type { SmtpInStats } from '../../gateway/smtp-in.ts';
import type { SmtpRelayStats } from '../../gateway/smtp-out.ts';

export interface GatewayOptions {
  /** --p2p-listen multiaddrs. */
  p2pListen?: string[];
  /** --p2p-peer multiaddrs (ending in /p2p/<id>). */
  p2pPeers?: string[];
  /** --lan: libp2p with mDNS discovery (listens on every interface unless --p2p-listen says where). */
  lan?: boolean;
  /** --smtp-listen */
  smtpListen?: { host: string; port: number };
  /** --mail-domain */
  mailDomain?: string;
  /** --smtp-relay */
  smtpRelay?: string;
  /** --smtp-relay-ca: a PEM file of the CA (or self-signed certificate) to trust for the smarthost. */
  smtpRelayCa?: string;
  /** mDNS query interval (tests shorten it). */
  lanIntervalMs?: number;
  /** First SMTP retry delay in ms (tests shorten it). */
  smtpRetryBaseMs?: number;
}

/** `p2p` in /api/status (SPEC §4), with the gateway's counters. */
export interface P2pStatus extends Omit<Libp2pGatewayStats, 'connections'> {
  peer_id: string;
  addrs: string[];
  connections: number;
}

/** True when any libp2p flag was given. */
export function wantsP2p(options: GatewayOptions): boolean {
  return (options.p2pListen?.length ?? 0) > 0 || (options.p2pPeers?.length ?? 0) > 0 || options.lan === true;
}

/**
 * The libp2p link for these options, or null when none was asked for. Its key is derived from
 * the household's, so the peer id survives restarts. Throws AppError USAGE on a bad multiaddr.
 */
export async function openP2pLink(options: GatewayOptions, deps: { node: MeshNode; clock: Clock; log: (line: string) => void }): Promise<Libp2pLink | null> {
  if (!wantsP2p(options)) return null;
  const listen = options.p2pListen?.length ? options.p2pListen : options.lan ? ['/ip4/0.0.0.0/tcp/0'] : [];
  // libp2p takes seconds to load on a Pi: only nodes that use it pay for it.
  const { createLibp2pLink, deriveLibp2pSeed } = await import('../../gateway/libp2p-link.ts');
  try {
    return await createLibp2pLink(
      {
        keySeed: deriveLibp2pSeed(fromHex(deps.node.household.exportSecret().ed25519_seed)),
        listen,
        peers: options.p2pPeers ?? [],
        mdns: options.lan ? { intervalMs: options.lanIntervalMs ?? 10_000 } : false,
      },
      {
        clock: deps.clock,
        log: deps.log,
        householdOf: (key) => deps.node.directory.householdOfPeerKey(key)?.name ?? null,
        bindings: {
          householdOfPeer: (key) => deps.node.directory.householdOfPeerKey(key)?.id ?? null,
          peerOfHousehold: (id) => {
            const statement = deps.node.directory.gateway(id);
            return statement && statement.services & GatewayService.Libp2p ? statement.peerKey : null;
          },
        },
      },
    );
  } catch (err) {
    if (err instanceof GatewayError) throw new AppError('USAGE', `--p2p: ${err.message}`, 2, { cause: err });
    throw err;
  }
}

/** The services this node offers as a gateway (GatewayService bits). */
export function gatewayServices(options: GatewayOptions, p2p: Libp2pLink | null): number {
  const smtp = options.mailDomain && (options.smtpListen || options.smtpRelay) ? GatewayService.Smtp | (options.smtpRelay ? 0 : GatewayService.SmtpInOnly) : 0;
  return (p2p ? GatewayService.Libp2p : 0) | smtp;
}

/**
 * Keep the household's gateway statement current: now, whenever the libp2p link comes up
 * (its addresses are known only then), and again every GATEWAY_REFRESH_S so the mesh can tell
 * this gateway is alive. Failures are logged, never thrown: the node runs on.
 */
export function keepGatewayAnnounced(options: GatewayOptions, deps: { node: MeshNode; p2p: Libp2pLink | null; log: (line: string) => void }): () => void {
  const { node, p2p, log } = deps;
  const services = gatewayServices(options, p2p);
  if (services === 0) return () => undefined;
  const announce = () => {
    announceGateway(
      node,
      {
        peerKey: p2p ? p2p.peerKey : NO_PEER_KEY,
        services,
        domain: services & GatewayService.Smtp ? options.mailDomain! : '',
        addrs: p2p ? p2p.addrs() : [],
      },
      { refreshAfterS: GATEWAY_REFRESH_S },
    ).catch((err: unknown) => log(`gateway statement not published: ${(err as Error).message}`));
  };
  // Checked hourly; published only when the statement changed or is GATEWAY_REFRESH_S old.
  const refresh = setInterval(() => {
    if (!p2p || p2p.up) announce();
  }, 3600_000);
  refresh.unref?.();
  if (!p2p) {
    announce();
    return () => clearInterval(refresh);
  }
  if (p2p.up) announce();
  const off = p2p.on('up', announce);
  return () => {
    clearInterval(refresh);
    off();
  };
}

/** The `p2p` object of /api/status, or null without libp2p. */
export function p2pStatus(p2p: Libp2pLink | null): P2pStatus | null {
  if (!p2p) return null;
  return { peer_id: p2p.peerId, addrs: p2p.addrs(), ...p2p.gatewayStats() };
}


/** The PEM certificates of --smtp-relay-ca. Throws AppError USAGE when the file is unreadable or holds none. */
function readRelayCa(path: string): string {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (err) {
    throw new AppError('USAGE', `--smtp-relay-ca: cannot read ${path}: ${(err as Error).message}`, 2, { cause: err });
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new AppError('USAGE', `--smtp-relay-ca: ${path} holds no PEM certificate`, 2);
  return pem;
}

/** The SMTP bridge of a node: the server for --smtp-listen and the relay for --smtp-relay. */
export interface SmtpParts {
  stop(): Promise<void>;
  status(): { domain: string; listen: string | null; in: SmtpInStats | null; out: SmtpRelayStats | null };
}

/**
 * Start the SMTP bridge when --mail-domain came with --smtp-listen and/or --smtp-relay; null
 * otherwise. Throws AppError USAGE on bad options and PORT_IN_USE when the port is taken.
 */
export async function openSmtp(options: GatewayOptions, deps: { node: MeshNode; mailbox: Mailbox; log: (line: string) => void }): Promise<SmtpParts | null> {
  if (!options.mailDomain || (!options.smtpListen && !options.smtpRelay)) return null;
  const domain = options.mailDomain;
  const { createSmtpIn } = await import('../../gateway/smtp-in.ts');
  const { createSmtpRelay } = await import('../../gateway/smtp-out.ts');
  let gateway: MailGateway | undefined;
  let relay: ReturnType<typeof createSmtpRelay> | undefined;
  try {
    if (options.smtpRelay) {
      const ca = options.smtpRelayCa ? readRelayCa(options.smtpRelayCa) : undefined;
      relay = createSmtpRelay(
        { url: options.smtpRelay, ...(ca ? { ca } : {}), ...(options.smtpRetryBaseMs !== undefined ? { retryBaseMs: options.smtpRetryBaseMs } : {}) },
        { onSent: (m) => gateway!.sent(m), onFailed: (m, reason) => gateway!.failed(m, reason), onRetry: (m, state) => gateway!.retrying(m, state), log: deps.log },
      );
    }
  } catch (err) {
    if (err instanceof GatewayError) throw new AppError('USAGE', err.message, 2, { cause: err });
    throw err;
  }
  gateway = new MailGateway({ node: deps.node, mailbox: deps.mailbox, domain, ...(relay ? { relay } : {}), log: deps.log });
  const server = options.smtpListen
    ? createSmtpIn({ host: options.smtpListen.host, port: options.smtpListen.port, domain }, { isMember: gateway.isMember, deliver: gateway.deliver, log: deps.log })
    : undefined;
  try {
    await server?.start();
  } catch (err) {
    await relay?.stop();
    const cause = (err as { cause?: { code?: string } }).cause;
    if (cause?.code === 'EADDRINUSE') throw new AppError('PORT_IN_USE', `--smtp-listen: ${(err as Error).message}`, 500, { cause: err });
    throw err;
  }
  await gateway.start();
  const listen = server?.address();
  if (listen) deps.log(`SMTP: mail for *.${domain} on ${listen.host}:${listen.port}`);
  return {
    async stop() {
      gateway.stop();
      await server?.stop();
      await relay?.stop();
    },
    status: () => ({
      domain,
      listen: listen ? `${listen.host}:${listen.port}` : null,
      in: server ? server.stats() : null,
      out: relay ? relay.stats() : null,
    }),
  };
}
