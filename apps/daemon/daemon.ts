/**
 * The daemon: the one place where concrete parts are wired together — the data directory,
 * the LevelDB store, the mesh node, the app models and the HTTP API. `citizen start` runs it.
 */
import { randomBytes } from 'node:crypto';
import { statfsSync } from 'node:fs';
import { Level } from 'level';
import { toHex } from '../../mesh/bytes.ts';
import { systemClock, type Clock } from '../../mesh/clock.ts';
import { MeshNode } from '../../mesh/node.ts';
import { RecordKind } from '../../mesh/record.ts';
import { DEFAULT_QUOTA } from '../../mesh/quota.ts';
import { RecordStore } from '../../mesh/record-store.ts';
import { LevelDatabase, type LevelDatabaseOptions } from '../../mesh/level-database.ts';
import { diskProblemOf } from '../../mesh/errors.ts';
import { DEFAULT_MAX_CLOCK_SKEW_S, Sync, type SyncOptions } from '../../mesh/sync.ts';
import { createMeshtasticLink } from '../../firmware-bridge/meshtastic-link.ts';
import { monotonicClock } from '../../radio/duty-cycle.ts';
import { AppError } from '../errors.ts';
import { Mailbox } from '../mail/mailbox.ts';
import { Blog } from '../blog/blog.ts';
import { Chat } from '../chat/chat.ts';
import { Files } from '../files/files.ts';
import { agreementKeyHex, createEvents } from './events.ts';
import { createAccounts } from './accounts.ts';
import { DataDir, fsReason, nameFromHost } from './data-dir.ts';
import { createClockWatch } from './clock-watch.ts';
import { createDiskWatch } from './disk-watch.ts';
import { keepGatewayAnnounced, openP2pLink, openSmtp, p2pStatus, wantsP2p, type GatewayOptions, type P2pStatus } from './gateways.ts';
import { createHttpApi } from './http-api.ts';
import { applyVouches } from './vouches.ts';
import { openLinks, type LinkFactoryDeps, type OpenedLink } from './links.ts';
import { renderMetrics } from './metrics.ts';
import type { NodeServices, StatusView } from './services.ts';
import { createSessions } from './sessions.ts';

const EXPIRY_INTERVAL_MS = 10 * 60 * 1000;
/** How long stopping waits for HTTP requests under way before cutting their connections. */
const STOP_GRACE_MS = 3000;

export interface DaemonOptions {
  dataDir: string;
  /** Where the portal and API listen. */
  portal: { host: string; port: number };
  /** Extra host names the portal answers to (besides IP literals and localhost). */
  hostNames?: string[];
  clock?: Clock;
  /** Link specs (SPEC §2) to sync over. */
  links?: string[];
  /** Builds Meshtastic links (firmware-bridge/), when available. */
  meshtastic?: LinkFactoryDeps['meshtastic'];
  /** Sync tuning (tests shorten the timers). */
  sync?: SyncOptions;
  /** Lines for the person who started the node. */
  log?: (line: string) => void;
  /** Largest file upload in bytes (default 16 MiB). */
  maxFileBytes?: number;
  /** Internet and LAN gateways: libp2p, mDNS, SMTP (SPEC §2). */
  gateway?: GatewayOptions;
}

export interface Daemon {
  url: string;
  node: MeshNode;
  sync: Sync;
  setupLink: string | null;
  stop(): Promise<void>;
}

/** How often the node looks at its neighbours' clocks (see clock-watch.ts). */
const CLOCK_CHECK_MS = 60_000;

/** Neighbours whose clocks are beyond what the mesh allows, as status shows it (null: none). */
function clockView(d: { households: number; offsetS: number } | null): { households: number; offset_s: number } | null {
  return d && { households: d.households, offset_s: d.offsetS };
}

/** The status object of SPEC §4, from a node (running or opened read-only by the CLI). */
export async function statusOf(
  node: MeshNode,
  running?: { sync: Sync; links: OpenedLink[]; p2p?: () => P2pStatus | null; smtp?: () => unknown; disk?: () => string },
): Promise<StatusView> {
  const stats = await node.store.stats();
  const syncStats = running?.sync.stats();
  const links = (running?.links ?? []).map(({ link, governor, region }, i) => {
    const s = syncStats!.links[i]!;
    const used = governor?.used();
    return {
      ...s,
      neighbour_list: running!.sync.neighbours(link).map((n) => ({ id: n.id, name: n.name, verified: n.verified, gateway: n.gateway, last_heard: new Date(n.lastHeard).toISOString(), ...(n.rssi !== undefined ? { rssi: n.rssi } : {}), ...(n.snr !== undefined ? { snr: n.snr } : {}) })),
      region,
      duty_cycle: used ? { used_ms: Math.round(used.airtimeMs), fraction: Number(used.fraction.toFixed(6)) } : null,
    };
  });
  return {
    household: node.householdName,
    node_id: toHex(node.household.id),
    fingerprint: node.household.fingerprint,
    links,
    sync_queue: syncStats?.queue ?? 0,
    records: stats.records,
    households_known: node.directory.householdCount,
    p2p: running?.p2p?.() ?? null,
    smtp: running?.smtp?.() ?? null,
    store_bytes: stats.bytes,
    authors: stats.authors,
    flagged_authors: stats.flagged,
    pending_records: node.pendingCount,
    clock_disagreement: clockView(running?.sync.clockDisagreement() ?? null),
    ...(running?.disk ? { disk: running.disk() } : {}),
  };
}

/** Bytes free (to an unprivileged user) and in all on the file system holding `path`, if it says. */
function diskSpace(path: string): { free: number; size: number } | undefined {
  try {
    const { bavail, blocks, bsize } = statfsSync(path);
    return { free: bavail * bsize, size: blocks * bsize };
  } catch {
    return undefined;
  }
}

/**
 * Open the data directory's store and mesh node (creating the household on first run).
 * `disk` hears about writes refused for a full or read-only disk.
 */
export async function openNode(dir: DataDir, clock: Clock = systemClock, disk: LevelDatabaseOptions = {}): Promise<MeshNode> {
  if (!dir.isInitialised()) {
    try {
      dir.init(nameFromHost());
    } catch (err) {
      // Another first run created it a moment ago: use that one (the store lock decides who runs).
      if ((err as AppError).code !== 'ALREADY_INITIALISED') throw err;
    }
  }
  const config = dir.readConfig();
  const household = dir.householdIdentity();
  const db = new Level<Uint8Array, Uint8Array>(dir.storePath, { keyEncoding: 'view', valueEncoding: 'view' });
  try {
    await db.open();
  } catch (cause) {
    // LevelDB's messages name its LOCK file whatever went wrong: a read-only disk is not a lock.
    const locked = diskProblemOf(cause) === null && /lock/i.test(String((cause as Error)?.cause ?? cause));
    throw new AppError(
      locked ? 'STORE_LOCKED' : 'STORE_UNAVAILABLE',
      locked ? `the store in ${dir.storePath} is in use by another process (is the node already running?)` : `cannot open the store in ${dir.storePath}: ${fsReason(cause, dir.storePath)}`,
      503,
      { cause },
    );
  }
  // Quotas follow trust (mesh/node.ts trustOf): the household's own keys are unlimited, a
  // stranger may keep a quarter of the default, a household we vouch for four times as much.
  let node: MeshNode | undefined;
  const store = await RecordStore.open(new LevelDatabase(db, disk), {
    quotaFor: (author) => {
      const owner = node?.directory.householdOfAuthor(author);
      if (toHex(author) === toHex(household.id) || (owner && toHex(owner.id) === toHex(household.id))) return null;
      const trust = owner && node ? node.trustOf(owner.id) : 0.25;
      return { records: Math.round(DEFAULT_QUOTA.records * trust), bytes: Math.round(DEFAULT_QUOTA.bytes * trust) };
    },
  });
  node = new MeshNode({ householdName: config.household }, { household, store, clock });
  await node.start();
  return node;
}

export async function startDaemon(options: DaemonOptions): Promise<Daemon> {
  const log = options.log ?? (() => undefined);
  const dir = new DataDir(options.dataDir);
  const clock = options.clock ?? systemClock;
  // Duty cycle counts real time, not the wall clock (which may be set while the node runs); a test's clock drives both.
  const airtimeClock = options.clock ?? monotonicClock;
  // Links are built (not started) first: a bad --link is refused before anything is created.
  const meshtastic: LinkFactoryDeps['meshtastic'] =
    options.meshtastic ??
    ((spec) => {
      if (spec.kind === 'udp') throw new AppError('USAGE', 'not a Meshtastic link spec', 2);
      return createMeshtasticLink(spec, { clock, airtimeClock, log });
    });
  const links: OpenedLink[] = openLinks(options.links ?? [], { clock, airtimeClock, meshtastic });
  // The store's lock says whether a node runs here; node.json only says where. After a power
  // cut node.json stays behind, and its pid may by then belong to another process (or to us).
  const disk = createDiskWatch(log, dir.path);
  let node: MeshNode;
  try {
    node = await openNode(dir, clock, { onDiskProblem: disk.problem, onRecovered: disk.recovered });
  } catch (err) {
    const running = (err as AppError).code === 'STORE_LOCKED' ? dir.runningNode() : null;
    if (running) throw new AppError('ALREADY_RUNNING', `a node is already running for ${dir.path} (pid ${running.pid}, ${running.portal})`, 409, { cause: err });
    throw err;
  }
  const gatewayOptions = options.gateway ?? {};
  let p2p: Awaited<ReturnType<typeof openP2pLink>>;
  try {
    p2p = await openP2pLink(gatewayOptions, { node, clock, log });
  } catch (err) {
    await node.stop();
    await node.store.close();
    throw err;
  }
  if (p2p) links.push({ link: p2p, governor: null, region: null });
  const syncOptions = { ...options.sync, gateway: options.sync?.gateway ?? (wantsP2p(gatewayOptions) || gatewayOptions.smtpListen !== undefined) };
  const sync = new Sync({ node, clock, timer: { setTimeout: (f, ms) => setTimeout(f, ms), clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout) } }, syncOptions);
  for (const { link } of links) sync.addLink(link);
  const accounts = createAccounts(dir.accountsPath);
  // Accounts may be added by `citizen user add` while the node runs: certify members on use.
  const memberIdentity = async (name: string) => {
    const identity = dir.memberIdentity(name);
    await node.certifyMember(name, identity);
    return identity;
  };
  for (const account of await accounts.list()) await memberIdentity(account.name);

  const mail = new Mailbox({
    node,
    memberIdentity,
    isLocalMember: async (name) => (await accounts.get(name)) !== null,
    // The nearest mail gateway: households whose beacons this node hears on a link.
    heardHouseholds: () => new Set(links.flatMap(({ link }) => sync.neighbours(link).filter((n) => n.verified).map((n) => n.id))),
    neighbours: () => sync.stats().links.reduce((n, l) => n + (l.up ? l.neighbours : 0), 0),
    carriers: (id: Uint8Array) => sync.carriers(id),
  });
  await mail.flushOutbox();
  // Vouches chosen with `citizen vouch` go out once the household they name is known.
  let vouching: Promise<unknown> = Promise.resolve();
  const vouch = () => {
    vouching = vouching.then(() => applyVouches(dir.path, node, log)).catch((err: unknown) => log(`vouching failed: ${(err as Error).message}`));
  };
  vouch();
  node.on('record', (record) => {
    if (record.kind === RecordKind.Directory) vouch();
  });
  const smtp = await openSmtp(gatewayOptions, { node, mailbox: mail, log }).catch(async (err: unknown) => {
    await node.stop();
    await node.store.close();
    throw err;
  });
  const apps = { node, memberIdentity };
  const events = createEvents({ node, agreementKeyId: async (name) => agreementKeyHex((await memberIdentity(name)).agreementKey) });
  const running = { sync, links, p2p: () => p2pStatus(p2p), smtp: () => smtp?.status() ?? null, disk: disk.state };
  const services: NodeServices = {
    household: node.householdName,
    mail,
    chat: new Chat(apps),
    blog: new Blog(apps),
    files: new Files({ ...apps, ...(options.maxFileBytes ? { maxBytes: options.maxFileBytes } : {}), disk: () => diskSpace(dir.storePath) }),
    events,
    directory: async () => node.directory.allHouseholds().flatMap((h) => [...h.members.keys()].map((m) => `${m}@${h.name}`)).sort(),
    status: () => statusOf(node, running),
    metrics: async () => renderMetrics(node, await statusOf(node, running)),
  };
  let setupToken: { value: string; consume(): void } | null = null;
  if (!(await accounts.hasAdmin())) {
    const value = randomBytes(24).toString('base64url');
    setupToken = { value, consume: () => { setupToken = null; } };
  }
  const app = await createHttpApi(
    { allowedHosts: options.hostNames ?? [], portalPort: options.portal.port },
    {
      services,
      accounts,
      sessions: createSessions({ clock }),
      get setupToken() {
        return setupToken;
      },
      clock,
      onAccountCreated: async (name: string) => void (await memberIdentity(name)),
      onDiskProblem: disk.problem,
      onInternalError: (error, request) => log(`${request.method} ${request.path} failed: ${String((error as Error)?.message ?? error).split('\n')[0]}`),
    },
  );
  try {
    await app.listen({ host: options.portal.host, port: options.portal.port });
  } catch (cause) {
    await smtp?.stop();
    await node.stop();
    await node.store.close();
    const code = (cause as { code?: string }).code;
    throw new AppError(
      code === 'EADDRINUSE' ? 'PORT_IN_USE' : 'LISTEN_FAILED',
      code === 'EADDRINUSE'
        ? `port ${options.portal.port} on ${options.portal.host} is already in use; choose another with --portal HOST:PORT`
        : `cannot listen on ${options.portal.host}:${options.portal.port}: ${(cause as Error).message}`,
      500,
      { cause },
    );
  }
  // Everything started from here on is undone by stop(), also when starting fails half-way.
  let stopped = false;
  let stopping = false;
  let stopAnnouncing: () => void = () => undefined;
  let expiry: NodeJS.Timeout | undefined;
  let clockCheck: NodeJS.Timeout | undefined;
  const retries = new Set<NodeJS.Timeout>();
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    clearInterval(expiry);
    clearInterval(clockCheck);
    stopAnnouncing();
    stopping = true;
    for (const retry of retries) clearTimeout(retry);
    // Requests under way get a moment to finish; a client that never finishes its request
    // (a stalled upload, a half-sent header) must not keep the node from stopping.
    const cut = setTimeout(() => app.server.closeAllConnections(), STOP_GRACE_MS);
    await app.close();
    clearTimeout(cut);
    await smtp?.stop();
    await sync.stop();
    for (const { link } of links) await link.stop();
    await node.stop();
    await node.store.close();
    dir.clearRunning();
  };
  let url: string;
  let setupLink: string | null;
  try {
    await sync.start();
    stopAnnouncing = keepGatewayAnnounced(gatewayOptions, { node, p2p, log });
    // A radio unplugged at boot is normal life: the node runs, and keeps trying the link.
    const bringUp = async (link: OpenedLink['link'], attempt: number): Promise<void> => {
      try {
        await link.start();
        log(`Link up: ${link.spec}`);
      } catch (err) {
        const waitS = Math.min(300, 5 * 2 ** Math.min(attempt, 6));
        if (attempt === 0 || waitS === 300) log(`Link ${link.spec} is down (${(err as Error).message}); trying again in ${waitS} s, backing off to 5 min`);
        if (stopping) return;
        const retry = setTimeout(() => {
          retries.delete(retry);
          void bringUp(link, attempt + 1);
        }, waitS * 1000);
        retry.unref();
        retries.add(retry);
      }
    };
    for (const { link } of links) await bringUp(link, 0);
    if (p2p?.up) log(`libp2p peer ${p2p.peerId}: ${p2p.addrs().join(' ') || 'dials out only (no --p2p-listen)'}`);
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : options.portal.port;
    const host = options.portal.host.includes(':') ? `[${options.portal.host}]` : options.portal.host;
    const shownHost = host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host;
    url = `http://${shownHost}:${port}`;
    dir.markRunning({ pid: process.pid, portal: url });
    setupLink = setupToken ? `${url}/setup?token=${(setupToken as { value: string }).value}` : null;
    log(`Citizen Cloud node "${node.householdName}" (key ${node.household.fingerprint})`);
    log(`Portal: ${url}`);
    // Listing mail needs each member's mail index: load it now, not on the first inbox opened.
    void mail.warm((await accounts.list()).map((a) => a.name));
    if (setupLink) log(`Create the first (admin) account: ${setupLink}`);

    // Expired records leave the store (and free their authors' quotas) every few minutes.
    expiry = setInterval(() => {
      node.store
        .expire(node.now())
        .then(() => sync.refresh())
        .then(() => vouch())
        .catch((err: unknown) => log(`expiry failed: ${(err as Error).message}`));
    }, EXPIRY_INTERVAL_MS);
    expiry.unref();

    // Neighbours whose clocks disagree with ours: said in the log (the node does not take their time).
    const clockWatch = createClockWatch(() => sync.clockDisagreement(), log, { allowedS: syncOptions.maxClockSkewS ?? DEFAULT_MAX_CLOCK_SKEW_S });
    clockCheck = setInterval(() => clockWatch.check(), CLOCK_CHECK_MS);
    clockCheck.unref();
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }

  return {
    url,
    node,
    sync,
    setupLink,
    stop,
  };
}
