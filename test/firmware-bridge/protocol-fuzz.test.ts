/**
 * Untrusted bytes at every Meshtastic decoder: the protobuf decoders throw only BridgeError
 * PROTOBUF_INVALID; a link fed random frames and random (valid) FromRadio messages by a fake
 * radio stays up and delivers only PRIVATE_APP broadcasts; an emulated device fed random
 * bytes and random ToRadio messages still answers, and one fed random well-formed admin
 * messages (sets of every kind, gets of any index) answers every one of them and still
 * completes a config download. Seeded: FC_SEED=<seed> replays.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { create, toBinary } from '@bufbuild/protobuf';
import fc from 'fast-check';
import { createEmulatedDevice } from '../../firmware-bridge/device-emulator.ts';
import { createMemoryEther } from '../../firmware-bridge/ether.ts';
import type { RadioStream } from '../../firmware-bridge/meshtastic-client.ts';
import { createMeshtasticLink } from '../../firmware-bridge/meshtastic-link.ts';
import {
  decodeAdmin,
  decodeFromRadio,
  decodeRouting,
  decodeTelemetry,
  decodeToRadio,
  encodeAdmin,
  encodeFromRadio,
  encodeToRadio,
  Mesh,
  type FromRadio,
} from '../../firmware-bridge/meshtastic-protocol.ts';
import { createStreamDecoder, encodeStreamFrame } from '../../firmware-bridge/stream-codec.ts';
import { parseLinkSpec, type MeshtasticTcpLinkSpec } from '../../radio/link-spec.ts';
import { settle, waitUntil } from '../radio/link.contract.ts';

const seed = Number(process.env.FC_SEED ?? 20261127);

function check<T>(name: string, property: fc.IProperty<T> | fc.IAsyncProperty<T>, numRuns: number): Promise<void> | void {
  const report = (err: unknown) => {
    console.error(`${name} failed; replay with FC_SEED=${seed}`);
    throw err;
  };
  try {
    const result = fc.assert(property as fc.IAsyncProperty<T>, { seed, numRuns });
    return result instanceof Promise ? result.catch(report) : result;
  } catch (err) {
    report(err);
  }
}

/** Random but well-formed MeshPackets, some of them our frames. */
const packets = fc.record({
  from: fc.oneof(fc.constant(0x8001), fc.nat({ max: 0xffffffff })),
  to: fc.oneof(fc.constant(0xffffffff), fc.nat({ max: 0xffffffff })),
  id: fc.nat({ max: 0xffffffff }),
  portnum: fc.oneof(fc.constant(256), fc.constant(67), fc.constant(5), fc.nat({ max: 600 })),
  payload: fc.uint8Array({ maxLength: 300 }),
  encrypted: fc.boolean(),
  hopLimit: fc.nat({ max: 7 }),
});

describe('firmware-bridge: fuzzing the Meshtastic decoders', function () {
  this.timeout(20_000);

  it('protobuf decoders accept or throw BridgeError PROTOBUF_INVALID, nothing else', () => {
    const decoders = [decodeFromRadio, decodeToRadio, decodeAdmin, decodeRouting, decodeTelemetry];
    check(
      'protobuf decoders',
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        for (const decode of decoders) {
          try {
            decode(bytes);
          } catch (err) {
            assert.equal((err as { code?: string }).code, 'PROTOBUF_INVALID', String(err));
          }
        }
      }),
      1500,
    );
  });

  it('a link fed random frames and random FromRadio messages stays up and delivers only our frames', async () => {
    const myNodeNum = 0x8000;
    let deliver: ((chunk: Uint8Array) => void) | undefined;
    const fakeRadio = async (): Promise<RadioStream> => {
      const decoder = createStreamDecoder({
        onFrame(payload) {
          const m = decodeToRadio(payload);
          if (m.payloadVariant.case !== 'wantConfigId') return;
          const nonce = m.payloadVariant.value;
          const reply = (init: Parameters<typeof encodeFromRadio>[0]) => deliver?.(encodeStreamFrame(encodeFromRadio(init)));
          setImmediate(() => {
            reply({ payloadVariant: { case: 'myInfo', value: { myNodeNum } } });
            reply({ payloadVariant: { case: 'config', value: { payloadVariant: { case: 'lora', value: { usePreset: true, region: 3, modemPreset: 8 } } } } });
            reply({ payloadVariant: { case: 'configCompleteId', value: nonce } });
          });
        },
      });
      return {
        write: (bytes) => decoder.push(bytes),
        onClose: () => undefined,
        onData: (l) => void (deliver = l),
        close: () => undefined,
      };
    };
    const frames: Uint8Array[] = [];
    const link = createMeshtasticLink(parseLinkSpec('meshtastic+tcp://127.0.0.1:9') as MeshtasticTcpLinkSpec, { clock: { now: () => 0 } }, { openStream: fakeRadio });
    link.on('frame', (f) => frames.push(f));
    await link.start();
    let expected = 0;
    await check(
      'link input',
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 700 }),
          fc.uint8Array({ maxLength: 512 }).map((b) => encodeStreamFrame(b)),
          packets.map((p) => {
            const packet = create(Mesh.MeshPacketSchema, {
              from: p.from,
              to: p.to,
              id: p.id,
              hopLimit: p.hopLimit,
              payloadVariant: p.encrypted ? { case: 'encrypted', value: p.payload } : { case: 'decoded', value: { portnum: p.portnum, payload: p.payload } },
            });
            if (!p.encrypted && p.portnum === 256 && p.to === 0xffffffff && p.from !== myNodeNum && p.payload.length <= 233) expected++;
            return encodeStreamFrame(encodeFromRadio({ payloadVariant: { case: 'packet', value: packet } }));
          }),
        ),
        async (chunk) => {
          deliver!(chunk);
          assert.equal(link.up, true);
        },
      ),
      400,
    );
    // Random bytes can swallow a following frame (a fake header's length runs over it), so
    // fewer frames may arrive than were valid; never more, and never anything but ours.
    await settle();
    assert.ok(frames.length <= expected, `${frames.length} frames for ${expected} valid ones`);
    assert.ok(frames.every((f) => f.length <= 233));
    await link.stop();
  });

  it('an emulated device fed random bytes and random ToRadio messages still answers', async () => {
    const device = createEmulatedDevice({ nodeNum: 0x8100, region: 'EU_868' }, { ether: createMemoryEther() });
    const port = await device.listen(0);
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    const answers: string[] = [];
    const decoder = createStreamDecoder({ onFrame: (f) => answers.push(String(decodeFromRadio(f).payloadVariant.case)) });
    socket.on('data', (d) => decoder.push(d));
    try {
      const toRadio = fc.oneof(
        fc.uint8Array({ maxLength: 600 }),
        fc.uint8Array({ maxLength: 512 }).map((b) => encodeStreamFrame(b)),
        packets.map((p) =>
          encodeStreamFrame(
            encodeToRadio({
              payloadVariant: {
                case: 'packet',
                value: { to: p.to, id: p.id, hopLimit: p.hopLimit, wantAck: p.hopLimit % 2 === 0, payloadVariant: { case: 'decoded', value: { portnum: p.portnum === 6 ? 1 : p.portnum, payload: p.payload } } },
              },
            }),
          ),
        ),
        fc.uint8Array({ maxLength: 200 }).map((payload) =>
          encodeStreamFrame(encodeToRadio({ payloadVariant: { case: 'packet', value: { to: 0x8100, id: 1, payloadVariant: { case: 'decoded', value: { portnum: 6, payload } } } } })),
        ),
      );
      check(
        'emulator input',
        fc.property(toRadio, (bytes) => void socket.write(bytes)),
        300,
      );
      // Resynchronise (a random header may be waiting for up to 512 bytes), then ask.
      socket.write(new Uint8Array(520));
      socket.write(encodeStreamFrame(encodeToRadio({ payloadVariant: { case: 'heartbeat', value: {} } })));
      socket.write(encodeStreamFrame(toBinary(Mesh.ToRadioSchema, create(Mesh.ToRadioSchema, { payloadVariant: { case: 'wantConfigId', value: 5 } }))));
      await waitUntil(() => answers.includes('configCompleteId'), 'the device to answer after the noise', 5000);
      assert.ok(device.stats().badFrames > 0);
    } finally {
      socket.destroy();
      await device.close();
    }
  });
  it('an emulated device fed random well-formed admin messages answers each and still configures a client', async () => {
    const device = createEmulatedDevice({ nodeNum: 0x8200, region: 'EU_868' }, { ether: createMemoryEther() });
    const port = await device.listen(0);
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    const messages: FromRadio[] = [];
    const decoder = createStreamDecoder({ onFrame: (f) => messages.push(decodeFromRadio(f)) });
    socket.on('data', (d) => decoder.push(d));
    const text = fc.string({ maxLength: 120 });
    const bytes = fc.uint8Array({ maxLength: 80 });
    const u32 = fc.nat({ max: 0xffffffff });
    type AdminVariant = NonNullable<Parameters<typeof encodeAdmin>[0]['payloadVariant']>;
    const admin: fc.Arbitrary<AdminVariant> = fc.oneof(
      fc.nat({ max: 12 }).map((value) => ({ case: 'getConfigRequest' as const, value })),
      fc.nat({ max: 16 }).map((value) => ({ case: 'getModuleConfigRequest' as const, value })),
      fc.nat({ max: 12 }).map((value) => ({ case: 'getChannelRequest' as const, value })),
      fc.constant({ case: 'getOwnerRequest' as const, value: true }),
      fc.constant({ case: 'getDeviceMetadataRequest' as const, value: true }),
      fc.constant({ case: 'getCannedMessageModuleMessagesRequest' as const, value: true }),
      fc.record({ longName: text, shortName: fc.string({ maxLength: 8 }) }).map((value) => ({ case: 'setOwner' as const, value })),
      fc.record({ index: fc.nat({ max: 10 }), role: fc.nat({ max: 3 }), settings: fc.record({ name: fc.string({ maxLength: 20 }), psk: bytes }) }).map((value) => ({ case: 'setChannel' as const, value })),
      fc
        .record({ region: fc.nat({ max: 30 }), modemPreset: fc.nat({ max: 12 }), usePreset: fc.boolean(), bandwidth: fc.nat({ max: 1000 }), spreadFactor: fc.nat({ max: 14 }), codingRate: fc.nat({ max: 9 }), hopLimit: u32, txPower: fc.integer({ min: -10, max: 40 }) })
        .map((lora) => ({ case: 'setConfig' as const, value: { payloadVariant: { case: 'lora' as const, value: lora } } })),
      fc.record({ wifiSsid: text, wifiPsk: text, ntpServer: text }).map((network) => ({ case: 'setConfig' as const, value: { payloadVariant: { case: 'network' as const, value: network } } })),
      fc.record({ enabled: fc.boolean(), address: text, username: text, password: text }).map((mqtt) => ({ case: 'setModuleConfig' as const, value: { payloadVariant: { case: 'mqtt' as const, value: mqtt } } })),
      fc.record({ latitudeI: fc.integer(), longitudeI: fc.integer(), altitude: fc.integer() }).map((value) => ({ case: 'setFixedPosition' as const, value })),
      text.map((value) => ({ case: 'setCannedMessageModuleMessages' as const, value })),
      u32.map((value) => ({ case: 'removeByNodenum' as const, value })),
      fc.integer({ min: -100, max: -1 }).map((value) => ({ case: 'rebootSeconds' as const, value })), // negative: cancel, so the client stays
    );
    try {
      socket.write(encodeStreamFrame(encodeToRadio({ payloadVariant: { case: 'wantConfigId', value: 1 } })));
      const sent: number[] = [];
      check(
        'emulator admin',
        fc.property(admin, (variant) => {
          const id = 1000 + sent.length;
          sent.push(id);
          socket.write(
            encodeStreamFrame(
              encodeToRadio({
                payloadVariant: {
                  case: 'packet',
                  value: { to: 0x8200, id, wantAck: true, payloadVariant: { case: 'decoded', value: { portnum: 6, wantResponse: true, payload: encodeAdmin({ payloadVariant: variant }) } } },
                },
              }),
            ),
          );
        }),
        200,
      );
      const answered = () =>
        new Set(messages.flatMap((m) => (m.payloadVariant.case === 'packet' && m.payloadVariant.value.payloadVariant.case === 'decoded' ? [m.payloadVariant.value.payloadVariant.value.requestId] : [])));
      await waitUntil(() => sent.every((id) => answered().has(id)), 'an answer (admin response, ACK or error) to every admin message', 5000);
      socket.write(encodeStreamFrame(encodeToRadio({ payloadVariant: { case: 'wantConfigId', value: 2 } })));
      await waitUntil(() => messages.some((m) => m.payloadVariant.case === 'configCompleteId' && m.payloadVariant.value === 2), 'a second config download', 5000);
      assert.equal(device.stats().tooLarge, 0);
    } finally {
      socket.destroy();
      await device.close();
    }
  });
});
