/** `citizen start`: run the node until SIGINT/SIGTERM. */
import { resolve } from 'node:path';
import { startDaemon } from '../daemon/daemon.ts';
import { isValidMailDomain } from '../../mesh/directory.ts';
import { AppError } from '../errors.ts';
import { dataDirOf, listOption, stringOption, type Command } from './command.ts';

/** "HOST:PORT", "[::1]:PORT" or ":PORT" → parts. */
export function parseHostPort(text: string, what: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]]*)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new AppError('USAGE', `${what} must be HOST:PORT, e.g. 127.0.0.1:8080; got "${text}"`, 2);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

export const startCommand: Command = {
  name: 'start',
  summary:
    'Run the household node: the record store, sync over every link, the HTTP API and the portal. Creates the household identity on first run (named after the host) if "citizen init" was not run. Stops cleanly on SIGINT/SIGTERM.',
  usage:
    'citizen start [--portal HOST:PORT] [--host-name NAME]... [--link SPEC]... [--lan] [--p2p-listen MULTIADDR]... [--p2p-peer MULTIADDR]... [--smtp-listen HOST:PORT] [--mail-domain DOMAIN] [--smtp-relay URL] [--smtp-relay-ca FILE] [--data DIR]',
  help: [
    '  --portal HOST:PORT  where the portal and API listen (default 127.0.0.1:8080)',
    '  --host-name NAME    another name the portal answers to, e.g. rose.local (repeatable)',
    '  --link SPEC         a radio or network link, e.g. udp://127.0.0.1:7001?peer=127.0.0.1:7002 (repeatable)',
    '  --lan               sync with households on the local network (libp2p + mDNS)',
    '  --p2p-listen ADDR   libp2p listen multiaddr (repeatable)',
    '  --p2p-peer ADDR     a libp2p peer to keep syncing with (repeatable)',
    '  --smtp-listen HOST:PORT, --mail-domain DOMAIN, --smtp-relay URL   the internet mail gateway',
    '  --smtp-relay-ca FILE   trust this PEM CA (or self-signed certificate) for the smarthost',
  ].join('\n'),
  options: {
    portal: { type: 'string' },
    'host-name': { type: 'string', multiple: true },
    link: { type: 'string', multiple: true },
    lan: { type: 'boolean' },
    'p2p-listen': { type: 'string', multiple: true },
    'p2p-peer': { type: 'string', multiple: true },
    'smtp-listen': { type: 'string' },
    'mail-domain': { type: 'string' },
    'smtp-relay': { type: 'string' },
    'smtp-relay-ca': { type: 'string' },
  },
  async run(args, io) {
    const portal = parseHostPort(stringOption(args, 'portal') ?? '127.0.0.1:8080', '--portal');
    const smtpListen = stringOption(args, 'smtp-listen');
    const mailDomain = stringOption(args, 'mail-domain')?.toLowerCase();
    const smtpRelay = stringOption(args, 'smtp-relay');
    if ((smtpListen || smtpRelay) && !mailDomain) throw new AppError('USAGE', '--smtp-listen and --smtp-relay need --mail-domain DOMAIN', 2);
    if (mailDomain && !isValidMailDomain(mailDomain)) throw new AppError('USAGE', `--mail-domain must be a domain name such as mesh.example.org; got "${mailDomain}"`, 2);
    if (stringOption(args, 'smtp-relay-ca') && !smtpRelay) throw new AppError('USAGE', '--smtp-relay-ca needs --smtp-relay URL', 2);
    if (smtpRelay && !/^smtps?:\/\//.test(smtpRelay)) throw new AppError('USAGE', `--smtp-relay must be smtp://[USER:PASS@]HOST:PORT; got "${smtpRelay}"`, 2);
    // Listen for SIGINT/SIGTERM from the start: one that comes while the node starts (even just
    // after it printed its portal) stops it cleanly once it is up, instead of killing it half-way.
    const stopRequested = io.stopSignal();
    const daemon = await startDaemon({
      dataDir: resolve(dataDirOf(args, io)),
      portal,
      hostNames: listOption(args, 'host-name'),
      links: listOption(args, 'link'),
      gateway: {
        p2pListen: listOption(args, 'p2p-listen'),
        p2pPeers: listOption(args, 'p2p-peer'),
        lan: args.values.lan === true,
        ...(smtpListen ? { smtpListen: parseHostPort(smtpListen, '--smtp-listen') } : {}),
        ...(mailDomain ? { mailDomain } : {}),
        ...(smtpRelay ? { smtpRelay } : {}),
        ...(stringOption(args, 'smtp-relay-ca') ? { smtpRelayCa: stringOption(args, 'smtp-relay-ca')! } : {}),
        ...(process.env.CITIZEN_SMTP_RETRY_MS ? { smtpRetryBaseMs: Number(process.env.CITIZEN_SMTP_RETRY_MS) } : {}),
        ...(process.env.CITIZEN_LAN_INTERVAL_MS ? { lanIntervalMs: Number(process.env.CITIZEN_LAN_INTERVAL_MS) } : {}),
      },
      log: io.out,
    });
    const signal = await stopRequested;
    io.out(`Stopping (${signal})...`);
    await daemon.stop();
    io.out('Stopped.');
    return 0;
  },
};
