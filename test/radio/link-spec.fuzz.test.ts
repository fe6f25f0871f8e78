/**
 * Link specs from the command line against hostile text (fast-check; the seed is printed and
 * FC_SEED=<seed> replays it): random strings, and specs built from pieces that are nearly
 * right (schemes in any case, IPv4/IPv6/host names with and without brackets, ports from -1
 * to 10^20, repeated and unknown parameters, stray percent signs, control characters).
 * parseLinkSpec gives a spec whose endpoints are IP addresses (host names for meshtastic+tcp)
 * with ports in range, or RadioError LINK_SPEC_INVALID; nothing else.
 */
import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import fc from 'fast-check';
import { RadioError } from '../../radio/errors.ts';
import { parseLinkSpec, type LinkSpec } from '../../radio/link-spec.ts';

const seed = Number(process.env.FC_SEED ?? 20261127);

const host = fc.oneof(
  fc.constantFrom('127.0.0.1', '0.0.0.0', '::1', '[::1]', '[127.0.0.1]', 'localhost', 'a-b.example', '256.1.1.1', '', '-x', '[::1', '::ffff:127.0.0.1', '[fe80::1%eth0]'),
  fc.ipV4(),
  fc.ipV6().map((a) => `[${a}]`),
  fc.string({ maxLength: 12 }),
);
const port = fc.oneof(fc.integer({ min: -1, max: 70_000 }).map(String), fc.constantFrom('', '0', '65535', '65536', '00004000', '99999999999999999999', '4e3', '0x10', ' 1'), fc.string({ maxLength: 4 }));
const endpoint = fc.tuple(host, fc.option(port)).map(([h, p]) => (p === null ? h : `${h}:${p}`));
const param = fc.oneof(
  endpoint.map((e) => `peer=${e}`),
  endpoint.map((e) => `peer=${encodeURIComponent(e)}`),
  fc.constantFrom('preset=LongFast', 'preset=longfast', 'preset=nope', 'region=EU868', 'region=eu_868', 'region=', 'peer', 'x=1', '=', 'peer=%', 'peer=%E0%A4%A', '&'),
  fc.string({ maxLength: 10 }),
);
const nearlyValidUdp = fc
  .tuple(fc.ipV4(), fc.nat({ max: 65535 }), fc.array(fc.tuple(fc.ipV4(), fc.integer({ min: 1, max: 65535 })), { minLength: 1, maxLength: 3 }), fc.constantFrom('', '&preset=LongFast', '&preset=ShortFast&region=eu868', '&region=EU868'))
  .map(([bind, p, peers, tail]) => `udp://${bind}:${p}?${peers.map(([h, q]) => `peer=${h}:${q}`).join('&')}${tail}`);
const spec = fc.oneof(
  nearlyValidUdp,
  fc.tuple(fc.constantFrom('udp', 'UDP', 'Udp'), endpoint, fc.array(param, { maxLength: 4 })).map(([s, bind, params]) => `${s}://${bind}${params.length ? `?${params.join('&')}` : ''}`),
  fc.tuple(fc.constantFrom('meshtastic+tcp', 'MESHTASTIC+TCP'), endpoint, fc.constantFrom('', '/', '/x', '?a', '@')).map(([s, e, tail]) => `${s}://${e}${tail}`),
  fc.tuple(fc.constantFrom('meshtastic+serial://', 'meshtastic+serial:///dev/', 'meshtastic+serial://COM'), fc.string({ maxLength: 12 })).map(([s, p]) => s + p),
  fc.string({ maxLength: 60 }),
  fc.string({ maxLength: 20 }).map((s) => `udp://${s}`),
  fc.constant('udp://127.0.0.1:1?peer=127.0.0.1:2&'.repeat(200)),
);

function checkSpec(parsed: LinkSpec, text: string): void {
  assert.equal(parsed.spec, text);
  const inRange = (p: number, min: number) => Number.isInteger(p) && p >= min && p <= 65535;
  if (parsed.kind === 'udp') {
    assert.ok(isIP(parsed.bind.host) !== 0 && inRange(parsed.bind.port, 0), `bind ${JSON.stringify(parsed.bind)}`);
    assert.ok(parsed.peers.length > 0);
    for (const p of parsed.peers) assert.ok(isIP(p.host) === isIP(parsed.bind.host) && inRange(p.port, 1), `peer ${JSON.stringify(p)}`);
  } else if (parsed.kind === 'meshtastic-tcp') {
    assert.ok(parsed.host.length > 0 && inRange(parsed.port, 1), `radio ${JSON.stringify(parsed)}`);
  } else {
    assert.ok(parsed.path.length > 0);
  }
}

describe('radio/link-spec (fuzz)', () => {
  before(() => console.log(`    fast-check seed ${seed} (replay: FC_SEED=${seed})`));

  it('random and nearly-right specs: a spec with sane endpoints or LINK_SPEC_INVALID', () => {
    const outcomes = new Map<string, number>();
    fc.assert(
      fc.property(spec, (text) => {
        let parsed: LinkSpec;
        try {
          parsed = parseLinkSpec(text);
        } catch (err) {
          assert.ok(err instanceof RadioError, `threw ${String(err)}`);
          assert.equal(err.code, 'LINK_SPEC_INVALID');
          assert.ok(err.message.length < 600, 'the message quotes a long spec shortened');
          outcomes.set('invalid', (outcomes.get('invalid') ?? 0) + 1);
          return;
        }
        checkSpec(parsed, text);
        outcomes.set(parsed.kind, (outcomes.get(parsed.kind) ?? 0) + 1);
      }),
      { seed, numRuns: 5000 },
    );
    console.log(`      outcomes: ${[...outcomes].map(([k, n]) => `${k} ${n}`).join(', ')}`);
    assert.ok((outcomes.get('udp') ?? 0) > 0 && (outcomes.get('meshtastic-tcp') ?? 0) > 0 && (outcomes.get('meshtastic-serial') ?? 0) > 0);
  });
});
