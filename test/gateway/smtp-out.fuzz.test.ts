/**
 * The `--smtp-relay` URL against hostile text (fast-check; the seed is printed and
 * FC_SEED=<seed> replays it): random strings and nearly-right relay URLs with odd schemes,
 * hosts, ports and percent-encodings in the user name and password. parseRelayUrl gives a
 * host, a port and the credentials, or GatewayError SMTP_OPTIONS_INVALID; nothing else.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { GatewayError } from '../../gateway/errors.ts';
import { parseRelayUrl } from '../../gateway/smtp-out.ts';

const seed = Number(process.env.FC_SEED ?? 20261127);

function parse(url: string): ReturnType<typeof parseRelayUrl> | GatewayError {
  try {
    return parseRelayUrl(url);
  } catch (err) {
    assert.ok(err instanceof GatewayError, `${JSON.stringify(url)} threw ${String(err)}`);
    assert.equal(err.code, 'SMTP_OPTIONS_INVALID');
    return err;
  }
}

describe('gateway/smtp-out relay URLs (fuzz)', () => {
  before(() => console.log(`    fast-check seed ${seed} (replay: FC_SEED=${seed})`));

  it('a stray % in the user name or password is SMTP_OPTIONS_INVALID (was a URIError), and the message keeps the password out', () => {
    for (const url of ['smtp://us%E0er:pw@relay.example:25', 'smtp://user:p%ZZsecret@relay.example', 'smtps://user:secret%@relay.example']) {
      const result = parse(url);
      assert.ok(result instanceof GatewayError, url);
      assert.doesNotMatch(result.message, /secret/);
    }
    assert.deepEqual(parseRelayUrl('smtp://us%40er:p%25w@relay.example:2525'), { host: 'relay.example', port: 2525, secure: false, auth: { user: 'us@er', pass: 'p%w' } });
  });

  it('a URL that does not parse is shown without its user part; port 0 is refused', () => {
    const bad = parse('smtp://bob:secret@[bad host:25');
    assert.ok(bad instanceof GatewayError);
    assert.doesNotMatch(bad.message, /secret|bob/);
    assert.match(bad.message, /got "smtp:\/\/…@\[bad host:25"/);
    const zero = parse('smtp://127.0.0.1:0');
    assert.ok(zero instanceof GatewayError && /port 0/.test(zero.message));
  });

  it('random and nearly-right URLs: a relay or SMTP_OPTIONS_INVALID', () => {
    const part = fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('%', '%E0', '%ZZ', '%25', '%40', ':', '@', '[', ']', '::1', '0', '65535', '65536', 'ü', ''));
    const url = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.tuple(fc.constantFrom('smtp', 'smtps', 'SMTP', 'http', 'smtp:'), part, part, fc.constantFrom('relay.example', '[::1]', '127.0.0.1', '', 'ex ample'), fc.option(part)).map(
        ([scheme, user, pass, host, port]) => `${scheme}://${user}:${pass}@${host}${port === null ? '' : `:${port}`}`,
      ),
    );
    let relays = 0;
    fc.assert(
      fc.property(url, (u) => {
        const result = parse(u);
        if (result instanceof GatewayError) return;
        relays++;
        assert.ok(result.host.length > 0);
        assert.ok(Number.isInteger(result.port) && result.port >= 0 && result.port <= 65535);
        if (result.auth) assert.equal(typeof result.auth.user + typeof result.auth.pass, 'stringstring');
      }),
      { seed, numRuns: 4000 },
    );
    assert.ok(relays > 0);
  });
});
