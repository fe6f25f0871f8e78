/**
 * `citizen radio list | probe SPEC | configure SPEC | emulate --tcp PORT` (SPEC §2): find,
 * inspect and set up Meshtastic radios, and run a software one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEmulatedDevice } from '../../firmware-bridge/device-emulator.ts';
import { createMemoryEther, createUdpEther, parseEtherSpec, type Ether } from '../../firmware-bridge/ether.ts';
import type { MeshtasticSpec, RadioInfo } from '../../firmware-bridge/meshtastic-client.ts';
import { configureRadio, probeRadio } from '../../firmware-bridge/radio-admin.ts';
import { listRadioPorts } from '../../firmware-bridge/serial-ports.ts';
import { parseLinkSpec } from '../../radio/link-spec.ts';
import { AppError } from '../errors.ts';
import { stringOption, type Command, type Io, type ParsedArgs } from './command.ts';

const USAGE =
  'citizen radio list | probe SPEC | configure SPEC --region R [--preset P] | emulate --tcp PORT [--ether udp://127.0.0.1:PORT] [--pty]';

function radioSpec(text: string | undefined): MeshtasticSpec {
  if (text === undefined) throw new AppError('USAGE', 'missing the radio SPEC, e.g. meshtastic+serial:///dev/ttyUSB0 or meshtastic+tcp://192.168.1.50', 2);
  let spec;
  try {
    spec = parseLinkSpec(text);
  } catch (err) {
    // A malformed radio spec keeps the parser's reason; anything else is told the radio forms
    // (the parser's own example is a UDP link, which is no radio).
    if (/^meshtastic\+(serial|tcp):\/\//.test(text)) throw new AppError('USAGE', (err as Error).message, 2, { cause: err });
    throw new AppError('USAGE', `"${text}" is not a radio: use meshtastic+serial://PATH or meshtastic+tcp://HOST[:PORT]`, 2, { cause: err });
  }
  if (spec.kind === 'udp') throw new AppError('USAGE', `${text} is not a radio; use meshtastic+serial://PATH or meshtastic+tcp://HOST[:PORT]`, 2);
  return spec;
}

/** Refuses positionals after the subcommand's own `count` (a second SPEC, a port without --tcp). */
function noMoreArguments(args: ParsedArgs, count: number, hint = ''): void {
  const extra = args.positionals[count + 1];
  if (extra !== undefined) throw new AppError('USAGE', `unexpected argument "${extra}"${hint}: ${USAGE}`, 2);
}

/** Radio errors become one clear line (connection problems are not usage errors: exit 1). */
function radioFailure(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const e = err as { code?: string; message?: string };
  const usage = e.code === 'REGION_UNKNOWN' || e.code === 'PRESET_UNKNOWN';
  return new AppError(e.code ?? 'RADIO_FAILED', e.message ?? String(err), usage ? 2 : 1, { cause: err });
}

function infoJson(spec: string, info: RadioInfo) {
  return {
    spec,
    node_num: info.nodeNum,
    node_id: info.nodeId,
    long_name: info.longName,
    short_name: info.shortName,
    hw_model: info.hwModel,
    firmware: info.firmwareVersion,
    region: info.region,
    preset: info.preset,
    modulation: { sf: info.modulation.sf, bw_hz: info.modulation.bw, cr: `4/${info.modulation.cr + 4}` },
    hop_limit: info.hopLimit,
    tx_enabled: info.txEnabled,
  };
}

async function list(args: ParsedArgs, io: Io): Promise<number> {
  noMoreArguments(args, 0);
  let result;
  try {
    result = await listRadioPorts();
  } catch (err) {
    throw radioFailure(err);
  }
  if (args.values.json) {
    io.out(JSON.stringify(result.radios.map((r) => ({ ...r, boards: r.boards.map((b) => b.id) }))));
    return result.radios.length > 0 ? 0 : 1;
  }
  if (result.radios.length === 0) {
    io.err(
      `citizen radio list: no serial port looks like a LoRa radio (${result.scanned} serial port${result.scanned === 1 ? '' : 's'} checked). ` +
        'Is the radio plugged in with a data (not charge-only) USB cable? A radio on Wi-Fi or a Pi HAT is reached with meshtastic+tcp://HOST instead.',
    );
    return 1;
  }
  const rows = result.radios.map((r) => [
    r.path,
    `${r.vid ?? '?'}:${r.pid ?? '?'}`,
    [r.manufacturer, r.product].filter(Boolean).join(' ') || r.usbNote || '',
    r.boards.length > 0 ? r.boards.map((b) => b.name).slice(0, 3).join(' / ') + (r.boards.length > 3 ? ' / …' : '') : `unknown board (${r.usbNote ?? 'radio vendor'})`,
  ]);
  const header = ['PORT', 'USB ID', 'DEVICE', 'BOARD (GUESS)'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const row of [header, ...rows]) io.out(row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join('  '));
  io.out(`\nCheck one with: citizen radio probe meshtastic+serial://${result.radios[0]!.path}`);
  return 0;
}

async function probe(args: ParsedArgs, io: Io): Promise<number> {
  const spec = radioSpec(args.positionals[1]);
  noMoreArguments(args, 1, ' (one radio at a time)');
  let info: RadioInfo;
  try {
    info = await probeRadio(spec, { handshakeTimeoutMs: 8000 });
  } catch (err) {
    throw radioFailure(err);
  }
  io.out(JSON.stringify(infoJson(spec.spec, info)));
  if (info.region === 'UNSET') io.err(`warning: the radio's region is UNSET, so it will not transmit; set it: citizen radio configure ${spec.spec} --region EU_868 (or your region)`);
  return 0;
}

async function configure(args: ParsedArgs, io: Io): Promise<number> {
  const spec = radioSpec(args.positionals[1]);
  noMoreArguments(args, 1, ' (one radio at a time)');
  const region = stringOption(args, 'region');
  if (region === undefined) throw new AppError('USAGE', 'missing --region R, e.g. --region EU_868 (see "citizen radio --help")', 2);
  const preset = stringOption(args, 'preset');
  let result;
  try {
    result = await configureRadio(spec, { region, ...(preset !== undefined ? { preset } : {}) });
  } catch (err) {
    throw radioFailure(err);
  }
  io.out(
    JSON.stringify({
      spec: spec.spec,
      node_id: result.before.nodeId,
      before: { region: result.before.region, preset: result.before.preset },
      after: result.after ? { region: result.after.region, preset: result.after.preset } : null,
    }),
  );
  if (!result.after) io.err('the radio has not come back yet (it reboots to apply a new region); check with: citizen radio probe ' + spec.spec);
  return 0;
}

/** Keeps a socat pseudo-terminal bridged to `port`, respawning it when a client closes it. */
function keepPty(path: string, port: number, io: Io): { stop(): void } {
  let child: ChildProcess | undefined;
  let stopped = false;
  const run = () => {
    if (stopped) return;
    child = spawn('socat', [`PTY,link=${path},raw,echo=0`, `TCP:127.0.0.1:${port}`], { stdio: 'ignore' });
    child.on('error', (err) => {
      stopped = true;
      io.err(`citizen radio emulate: --pty needs socat (${err.message}); install it with: sudo apt-get install socat`);
    });
    child.on('exit', () => setTimeout(run, 100));
  };
  run();
  return {
    stop() {
      stopped = true;
      child?.kill();
    },
  };
}

async function emulate(args: ParsedArgs, io: Io): Promise<number> {
  noMoreArguments(args, 0, ' (the port goes after --tcp)');
  const tcpText = stringOption(args, 'tcp');
  if (tcpText === undefined || !/^\d{1,5}$/.test(tcpText) || Number(tcpText) > 65535) {
    throw new AppError('USAGE', 'emulate needs --tcp PORT (0..65535; 0 picks a free port)', 2);
  }
  const host = stringOption(args, 'host') ?? '127.0.0.1';
  const etherText = stringOption(args, 'ether');
  const nodeText = stringOption(args, 'node');
  let nodeNum: number | undefined;
  if (nodeText !== undefined) {
    nodeNum = /^(!|0x)[0-9a-f]{1,8}$/i.test(nodeText) ? parseInt(nodeText.replace(/^(!|0x)/i, ''), 16) : /^\d+$/.test(nodeText) ? Number(nodeText) : NaN;
    if (!Number.isInteger(nodeNum) || nodeNum <= 3 || nodeNum >= 0xffffffff) throw new AppError('USAGE', `--node must be a node number like !a1b2c3d4 or 12345, got "${nodeText}"`, 2);
  }
  let ether: Ether;
  try {
    ether = etherText === undefined ? createMemoryEther() : createUdpEther(parseEtherSpec(etherText));
  } catch (err) {
    throw new AppError('USAGE', (err as Error).message, 2, { cause: err });
  }
  const name = stringOption(args, 'name');
  const lossText = stringOption(args, 'loss');
  const loss = lossText === undefined ? undefined : Number(lossText);
  if (loss !== undefined && !(lossText!.trim() !== '' && loss >= 0 && loss <= 1)) throw new AppError('USAGE', `--loss must be a share 0..1, e.g. 0.1, got "${lossText}"`, 2);
  let device;
  try {
    device = createEmulatedDevice(
      {
        region: stringOption(args, 'region') ?? 'EU_868',
        preset: stringOption(args, 'preset') ?? 'LongFast',
        airtime: args.values.airtime === true,
        ...(loss !== undefined ? { loss } : {}),
        ...(nodeNum !== undefined ? { nodeNum } : {}),
        ...(name !== undefined ? { longName: name } : {}),
      },
      { ether, log: (line) => io.err(line) },
    );
  } catch (err) {
    throw radioFailure(err);
  }
  let port: number;
  try {
    port = await device.listen(Number(tcpText), host);
  } catch (err) {
    await device.close();
    throw new AppError('LISTEN_FAILED', `cannot listen on ${host}:${tcpText}: ${(err as Error).message}`, 1, { cause: err });
  }
  let pty: { stop(): void } | undefined;
  let ptyPath: string | undefined;
  if (args.values.pty) {
    ptyPath = stringOption(args, 'pty-path') ?? join(tmpdir(), `citizen-radio-${device.nodeNum.toString(16)}`);
    const serialPort = await device.listen(0, '127.0.0.1', { consoleText: true });
    pty = keepPty(ptyPath, serialPort, io);
    const deadline = Date.now() + 3000;
    while (!existsSync(ptyPath) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }
  const tcpHost = host.includes(':') ? `[${host}]` : host;
  io.out(
    `Emulated Meshtastic device ${`!${device.nodeNum.toString(16).padStart(8, '0')}`} (${device.region}, ${device.preset}) on meshtastic+tcp://${tcpHost}:${port}` +
      (ptyPath ? ` and meshtastic+serial://${ptyPath}` : '') +
      (etherText ? `; ether ${etherText}` : '; no --ether: it hears no other device'),
  );
  // Device metrics to the clients every minute, as the firmware sends them.
  const telemetry = setInterval(() => device.reportTelemetry(), 60_000);
  telemetry.unref();
  const signal = await io.stopSignal();
  io.err(`citizen radio emulate: ${signal}, stopping`);
  clearInterval(telemetry);
  pty?.stop();
  await device.close();
  return 0;
}

export const radioCommand: Command = {
  name: 'radio',
  summary: 'Find, probe, configure and emulate LoRa radios (Meshtastic devices).',
  usage: USAGE,
  help: [
    '  list                     serial ports that look like LoRa radios (known USB VID/PID), as a table',
    '    --json                 the same as JSON',
    '  probe SPEC               connect to one radio and print what it is (firmware, region, preset, node) as JSON',
    '  configure SPEC --region R [--preset P]',
    '                           set the radio\'s LoRa region (EU_868, US, ...) and preset (LongFast, ...)',
    '  emulate --tcp PORT       a software Meshtastic device speaking the client protocol on TCP',
    '    --host HOST            address to listen on (default 127.0.0.1)',
    '    --ether udp://IP:PORT  emulated devices on one ether hear each other',
    '    --pty                  also expose it as a serial port (a pseudo-terminal; needs socat)',
    '    --pty-path PATH        where the pseudo-terminal appears (default under the temp dir)',
    '    --region R             default EU_868; UNSET emulates a radio fresh from the box',
    '    --preset P             default LongFast',
    '    --node NUM             node number, e.g. !a1b2c3d4 (default random)',
    '    --name NAME            the device owner\'s long name',
    '    --airtime              hold each transmission for its LoRa time on air',
    '    --loss SHARE           lose this share of what it hears, 0..1 (e.g. 0.1)',
    '  SPEC is meshtastic+serial:///dev/ttyUSB0 or meshtastic+tcp://HOST[:4403]',
  ].join('\n'),
  options: {
    json: { type: 'boolean' },
    region: { type: 'string' },
    preset: { type: 'string' },
    tcp: { type: 'string' },
    host: { type: 'string' },
    ether: { type: 'string' },
    pty: { type: 'boolean' },
    'pty-path': { type: 'string' },
    node: { type: 'string' },
    name: { type: 'string' },
    airtime: { type: 'boolean' },
    loss: { type: 'string' },
  },
  allowPositionals: true,
  async run(args, io) {
    const sub = args.positionals[0];
    switch (sub) {
      case 'list':
        return list(args, io);
      case 'probe':
        return probe(args, io);
      case 'configure':
        return configure(args, io);
      case 'emulate':
        return emulate(args, io);
      case undefined:
        throw new AppError('USAGE', `missing a subcommand: ${USAGE}`, 2);
      default:
        throw new AppError('USAGE', `unknown radio subcommand "${sub}" (list, probe, configure, emulate)`, 2);
    }
  },
};
