/**
 * `citizen radio list | probe | configure | emulate` (apps/cli/radio.ts) against emulated
 * devices, in-process through `main()` with captured output, plus one run of two real
 * `citizen radio emulate` processes on one UDP ether carrying frames between two Meshtastic
 * links; serial-port discovery over a made-up sysfs tree. Loopback only; every wait bounded.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../apps/cli/main.ts';
import type { Io } from '../../apps/cli/command.ts';
import { createEmulatedDevice, type EmulatedDevice } from '../../firmware-bridge/device-emulator.ts';
import { createMemoryEther } from '../../firmware-bridge/ether.ts';
import { connectMeshtastic } from '../../firmware-bridge/meshtastic-client.ts';
import { createMeshtasticLink } from '../../firmware-bridge/meshtastic-link.ts';
import { encodeAdmin, Portnums } from '../../firmware-bridge/meshtastic-protocol.ts';
import { listRadioPorts } from '../../firmware-bridge/serial-ports.ts';
import { parseLinkSpec, type MeshtasticSerialLinkSpec, type MeshtasticTcpLinkSpec } from '../../radio/link-spec.ts';
import { collect, waitUntil } from '../radio/link.contract.ts';
import { freePort } from '../helpers/net.ts';

const BIN = join(import.meta.dirname, '../../bin/citizen.mjs');

function captureIo(stop?: Promise<string>): Io & { out_: string[]; err_: string[] } {
  const out_: string[] = [];
  const err_: string[] = [];
  return {
    out_,
    err_,
    out: (l) => void out_.push(l),
    err: (l) => void err_.push(l),
    readStdin: async () => '',
    env: {},
    stopSignal: () => stop ?? new Promise(() => undefined),
  };
}

describe('citizen radio', function () {
  this.timeout(20_000);
  const cleanup: (() => Promise<unknown> | void)[] = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  async function emulated(options: Parameters<typeof createEmulatedDevice>[0]): Promise<{ device: EmulatedDevice; spec: string }> {
    const device = createEmulatedDevice(options, { ether: createMemoryEther() });
    const port = await device.listen(0);
    cleanup.push(() => device.close());
    return { device, spec: `meshtastic+tcp://127.0.0.1:${port}` };
  }

  it('probe prints the radio as JSON; warns about region UNSET', async () => {
    const { spec } = await emulated({ nodeNum: 0x6001, region: 'UNSET', preset: 'MediumFast', longName: 'Rose radio' });
    const io = captureIo();
    assert.equal(await main(['radio', 'probe', spec], io), 0);
    const info = JSON.parse(io.out_[0]!);
    assert.deepEqual(
      { node_id: info.node_id, node_num: info.node_num, region: info.region, preset: info.preset, firmware: info.firmware, long_name: info.long_name },
      { node_id: '!00006001', node_num: 0x6001, region: 'UNSET', preset: 'MEDIUM_FAST', firmware: '2.6.11.emulated', long_name: 'Rose radio' },
    );
    assert.match(io.err_.join('\n'), /region is UNSET.*citizen radio configure/);
  });

  it('configure sets region and preset; a link then comes up on that preset', async () => {
    const { device, spec } = await emulated({ nodeNum: 0x6002, region: 'UNSET' });
    const io = captureIo();
    assert.equal(await main(['radio', 'configure', spec, '--region', 'eu868', '--preset', 'ShortFast'], io), 0, io.err_.join('\n'));
    assert.deepEqual(JSON.parse(io.out_[0]!), {
      spec,
      node_id: '!00006002',
      before: { region: 'UNSET', preset: 'LONG_FAST' },
      after: { region: 'EU_868', preset: 'SHORT_FAST' },
    });
    assert.equal(device.region, 'EU_868');
    const link = createMeshtasticLink(parseLinkSpec(spec) as MeshtasticTcpLinkSpec, { clock: { now: () => 0 } });
    cleanup.push(() => link.stop());
    await link.start();
    assert.equal(link.radioInfo()!.preset, 'SHORT_FAST');
  });

  it("configure changes region and preset only: the radio's other LoRa settings are kept", async () => {
    const { device, spec } = await emulated({ nodeNum: 0x6003, region: 'EU_868' });
    const session = await connectMeshtastic(parseLinkSpec(spec) as MeshtasticTcpLinkSpec);
    const custom = { ...session.loraConfig!, txPower: 17, overrideDutyCycle: true, channelNum: 3, hopLimit: 5, ignoreMqtt: true };
    session.send({
      payloadVariant: {
        case: 'packet',
        value: {
          to: session.info.nodeNum,
          id: 77,
          wantAck: true,
          payloadVariant: { case: 'decoded', value: { portnum: Portnums.PortNum.ADMIN_APP, payload: encodeAdmin({ payloadVariant: { case: 'setConfig', value: { payloadVariant: { case: 'lora', value: custom } } } }) } },
        },
      },
    });
    await waitUntil(() => device.stats().adminMessages === 1, 'the custom LoRa settings to be set');
    session.close();
    const io = captureIo();
    assert.equal(await main(['radio', 'configure', spec, '--region', 'US', '--preset', 'MediumFast'], io), 0, io.err_.join('\n'));
    const after = await connectMeshtastic(parseLinkSpec(spec) as MeshtasticTcpLinkSpec);
    after.close();
    const lora = after.loraConfig!;
    assert.deepEqual(
      { region: lora.region, modemPreset: lora.modemPreset, txPower: lora.txPower, overrideDutyCycle: lora.overrideDutyCycle, channelNum: lora.channelNum, hopLimit: lora.hopLimit, ignoreMqtt: lora.ignoreMqtt },
      { region: 1, modemPreset: 4, txPower: 17, overrideDutyCycle: true, channelNum: 3, hopLimit: 5, ignoreMqtt: true },
    );
  });

  it('fails politely: no radio there, a bad spec, an unknown region, a missing subcommand', async () => {
    const port = await freePort();
    const cases: [string[], number, RegExp][] = [
      [['radio', 'probe', `meshtastic+tcp://127.0.0.1:${port}`], 1, /cannot connect to 127\.0\.0\.1:\d+/],
      [['radio', 'probe', 'udp://127.0.0.1:1?peer=127.0.0.1:2'], 2, /is not a radio/],
      [['radio', 'probe'], 2, /missing the radio SPEC/],
      [['radio', 'configure', `meshtastic+tcp://127.0.0.1:${port}`, '--region', 'Atlantis'], 2, /unknown region "Atlantis"/],
      [['radio', 'configure', `meshtastic+tcp://127.0.0.1:${port}`], 2, /missing --region/],
      [['radio'], 2, /missing a subcommand/],
      [['radio', 'dance'], 2, /unknown radio subcommand "dance"/],
      [['radio', 'emulate'], 2, /needs --tcp PORT/],
      [['radio', 'emulate', '--tcp', '0', '--ether', 'udp://localhost:1'], 2, /ether must be udp:\/\/IPV4:PORT/],
      [['radio', 'probe', `meshtastic+tcp://127.0.0.1:${port}`, 'meshtastic+tcp://127.0.0.1:4403'], 2, /unexpected argument "meshtastic\+tcp:\/\/127\.0\.0\.1:4403"/],
      [['radio', 'probe', 'meshtastic+serial:///dev/null'], 1, /^citizen radio: cannot open \/dev\/null: it is not a serial port$/],
      [['radio', 'probe', 'meshtastic+serial:///dev/ttyNoSuchRadio'], 1, /^citizen radio: cannot open \/dev\/ttyNoSuchRadio: No such file or directory$/],
      [['radio', 'list', '/dev/ttyUSB0'], 2, /unexpected argument "\/dev\/ttyUSB0"/],
      [['radio', 'emulate', '4403'], 2, /unexpected argument "4403".*--tcp/],
    ];
    for (const [argv, code, message] of cases) {
      const io = captureIo();
      assert.equal(await main(argv, io), code, argv.join(' '));
      assert.equal(io.err_.length, 1, `${argv.join(' ')}: one line, no stack: ${io.err_.join('\n')}`);
      assert.match(io.err_[0]!, message);
    }
  });

  it('probe of a port where something else answers names what it said and asks whether it is a radio', async () => {
    const { createServer } = await import('node:net');
    const sockets = new Set<import('node:net').Socket>();
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.end('SSH-2.0-OpenSSH_9.6\x1b[2J\r\n');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    });
    const io = captureIo();
    assert.equal(await main(['radio', 'probe', `meshtastic+tcp://127.0.0.1:${(server.address() as { port: number }).port}`], io), 1);
    assert.equal(io.err_.length, 1);
    assert.match(io.err_[0]!, /connection closed before any Meshtastic answer \(it said "SSH-2\.0-OpenSSH_9\.6\?\[2J"\); is this a Meshtastic radio's API \(TCP port 4403/);
  });

  it('list finds radios in sysfs and guesses the board; says so politely when there are none', async () => {
    const root = mkdtempSync(join(tmpdir(), 'citizen-sysfs-'));
    cleanup.push(() => rmSync(root, { recursive: true, force: true }));
    const usb = join(root, 'devices/pci0000:00/usb1/1-1');
    mkdirSync(join(usb, '1-1:1.0/ttyUSB0'), { recursive: true });
    writeFileSync(join(usb, 'idVendor'), '10c4\n');
    writeFileSync(join(usb, 'idProduct'), 'ea60\n');
    writeFileSync(join(usb, 'product'), 'CP2102 USB to UART Bridge Controller\n');
    const other = join(root, 'devices/pci0000:00/usb1/1-2');
    mkdirSync(join(other, '1-2:1.0/ttyACM0'), { recursive: true });
    writeFileSync(join(other, 'idVendor'), '046d\n');
    writeFileSync(join(other, 'idProduct'), 'c52b\n');
    mkdirSync(join(root, 'class/tty/ttyUSB0'), { recursive: true });
    mkdirSync(join(root, 'class/tty/ttyACM0'), { recursive: true });
    mkdirSync(join(root, 'class/tty/tty0'), { recursive: true });
    symlinkSync(join(usb, '1-1:1.0'), join(root, 'class/tty/ttyUSB0/device'));
    symlinkSync(join(other, '1-2:1.0'), join(root, 'class/tty/ttyACM0/device'));
    const { radios, scanned } = await listRadioPorts({ sysRoot: root, platform: 'linux' });
    assert.equal(scanned, 2);
    assert.equal(radios.length, 1);
    assert.equal(radios[0]!.path, '/dev/ttyUSB0');
    assert.equal(`${radios[0]!.vid}:${radios[0]!.pid}`, '10c4:ea60');
    assert.ok(radios[0]!.boards.some((b) => b.id === 'heltec-v3'));
    await assert.rejects(listRadioPorts({ sysRoot: join(root, 'nope'), platform: 'linux' }), { code: 'SERIAL_LIST_FAILED' });
    // On this machine: whatever is plugged in, list answers without a stack trace.
    const io = captureIo();
    const code = await main(['radio', 'list'], io);
    assert.ok(code === 0 || (code === 1 && /no serial port looks like a LoRa radio|cannot/.test(io.err_[0] ?? '')), io.err_.join('\n'));
  });

  it('emulate --tcp 0 --pty (in-process): one emulated radio serves a TCP link and a serial link on the pty', async function () {
    if (spawnSync('socat', ['-V']).error) this.skip(); // .ci/run installs socat
    let stop!: (s: string) => void;
    const io = captureIo(new Promise((resolve) => (stop = resolve)));
    const ptyPath = join(tmpdir(), `citizen-cli-pty-${process.pid}`);
    const running = main(['radio', 'emulate', '--tcp', '0', '--pty', '--pty-path', ptyPath, '--node', '!00006100'], io);
    cleanup.push(async () => {
      stop('SIGTERM');
      assert.equal(await running, 0);
    });
    await waitUntil(() => io.out_.length > 0, 'the emulator to start', 5000);
    const line = io.out_[0]!;
    assert.match(line, /Emulated Meshtastic device !00006100 \(EU_868, LONG_FAST\) on meshtastic\+tcp:\/\/127\.0\.0\.1:\d+ and meshtastic\+serial:\/\//);
    const tcp = /meshtastic\+tcp:\/\/\S+/.exec(line)![0];
    // One emulated radio, two clients: over its TCP port and over the pseudo-terminal.
    const serial = createMeshtasticLink(parseLinkSpec(`meshtastic+serial://${ptyPath}`) as MeshtasticSerialLinkSpec, { clock: { now: () => 0 } });
    const viaTcp = createMeshtasticLink(parseLinkSpec(tcp) as MeshtasticTcpLinkSpec, { clock: { now: () => 0 } });
    cleanup.push(() => serial.stop(), () => viaTcp.stop());
    await Promise.all([serial.start(), viaTcp.start()]);
    assert.equal(serial.radioInfo()!.nodeId, '!00006100');
    assert.equal(viaTcp.radioInfo()!.nodeId, '!00006100');
    await serial.send(Uint8Array.of(1));
  });

  it('two `citizen radio emulate` processes on one UDP ether carry frames between two links', async () => {
    const ether = await freePort();
    const children: ChildProcess[] = [];
    cleanup.push(() => {
      for (const c of children) c.kill('SIGTERM');
    });
    const start = (node: string) =>
      new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, [BIN, 'radio', 'emulate', '--tcp', '0', '--ether', `udp://127.0.0.1:${ether}`, '--node', node], { stdio: ['ignore', 'pipe', 'pipe'] });
        children.push(child);
        let out = '';
        const timer = setTimeout(() => reject(new Error(`emulator ${node} did not start: ${out}`)), 15_000);
        child.stdout.on('data', (d) => {
          out += d;
          const m = /meshtastic\+tcp:\/\/\S+/.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve(m[0].replace(/;$/, ''));
          }
        });
        child.stderr.on('data', (d) => (out += d));
        child.on('exit', (code) => reject(new Error(`emulator ${node} exited with ${code}: ${out}`)));
      });
    const [specA, specB] = await Promise.all([start('!00006201'), start('!00006202')]);
    const a = createMeshtasticLink(parseLinkSpec(specA!) as MeshtasticTcpLinkSpec, { clock: { now: () => 0 } });
    const b = createMeshtasticLink(parseLinkSpec(specB!) as MeshtasticTcpLinkSpec, { clock: { now: () => 0 } });
    cleanup.push(() => a.stop(), () => b.stop());
    await Promise.all([a.start(), b.start()]);
    const inbox = collect(b);
    // The ether's members say hello within a second; resend until the first frame crosses.
    for (let i = 0; i < 40 && inbox.frames.length === 0; i++) {
      await a.send(Uint8Array.of(42));
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(inbox.frames.length >= 1, 'a frame crossed the UDP ether');
    assert.deepEqual(inbox.frames[0]!.frame, Uint8Array.of(42));
    assert.equal(inbox.frames[0]!.meta.from, '!00006201');
    const exits = children.map((c) => new Promise((resolve) => c.once('exit', resolve)));
    for (const c of children) c.kill('SIGTERM');
    assert.deepEqual(await Promise.all(exits), [0, 0], 'SIGTERM stops the emulators cleanly');
  });
});
