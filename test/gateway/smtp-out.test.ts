/**
 * SMTP out over TLS (gateway/smtp-out.ts, issue 7), against a real smtp-server in the test
 * standing in for the smarthost, with a self-signed certificate the test makes itself:
 * STARTTLS on smtp://, implicit TLS on smtps://, the certificate trusted only through `ca`
 * (--smtp-relay-ca), a password never sent in clear, and the retry state a restart hands back.
 */
import assert from 'node:assert/strict';
import { generate } from 'selfsigned';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { createSmtpRelay, isLoopbackHost, type OutboundMail, type RetryState, type SmtpRelay } from '../../gateway/smtp-out.ts';

interface Received {
  secure: boolean;
  user: string | undefined;
  from: string;
  data: string;
}

const mail = (id: string): OutboundMail => ({ id, envelopeFrom: 'alice@rose.mesh.test', to: ['bob@outside.test'], subject: `mail ${id}`, body: 'Over TLS.' });

describe('gateway/smtp-out: the smarthost over TLS', function () {
  this.timeout(30_000);
  let pems: { cert: string; private: string };
  /** Another self-signed certificate: a CA that does not vouch for the smarthost. */
  let otherCert: string;
  const servers: SMTPServer[] = [];
  const relays: SmtpRelay[] = [];
  let received: Received[] = [];
  let authTries = 0;

  before(async () => {
    const made = await generate([{ name: 'commonName', value: 'smarthost.test' }], {
      keySize: 2048,
      algorithm: 'sha256',
      extensions: [
        { name: 'basicConstraints', cA: true },
        { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] },
      ],
    });
    pems = { cert: made.cert, private: made.private };
    otherCert = (await generate([{ name: 'commonName', value: 'other.test' }], { keySize: 2048, algorithm: 'sha256', extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }] })).cert;
  });

  beforeEach(() => {
    received = [];
    authTries = 0;
  });

  afterEach(async () => {
    await Promise.all(relays.splice(0).map((r) => r.stop()));
    await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  });

  /** A smarthost with the test's certificate, or with smtp-server's own built-in one (expired, self-signed). */
  async function smarthost(options: SMTPServerOptions, { builtInCertificate = false } = {}): Promise<number> {
    const server = new SMTPServer({
      logger: false,
      ...(builtInCertificate ? {} : { key: pems.private, cert: pems.cert }),
      onAuth(auth, _session, callback) {
        authTries++;
        if (auth.username === 'gw' && auth.password === 's3cret') return callback(null, { user: auth.username });
        callback(new Error('bad credentials'));
      },
      onData(stream, session, callback) {
        let data = '';
        stream.on('data', (c: Buffer) => (data += c.toString()));
        stream.on('end', () => {
          received.push({ secure: session.secure, user: session.user as string | undefined, from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', data });
          callback();
        });
      },
      ...options,
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.server.address() as { port: number }).port;
  }

  function relay(url: string, ca: string | undefined, deps: Partial<Parameters<typeof createSmtpRelay>[1]> = {}) {
    const events = { sent: [] as string[], failed: [] as { id: string; reason: string }[], retries: [] as { id: string; state: RetryState }[] };
    let wake: () => void = () => undefined;
    const changed = () => wake();
    const r = createSmtpRelay(
      { url, retryBaseMs: 60_000, timeoutMs: 5000, ...(ca ? { ca } : {}) },
      {
        onSent: (m) => void (events.sent.push(m.id), changed()),
        onFailed: (m, reason) => void (events.failed.push({ id: m.id, reason }), changed()),
        onRetry: (m, state) => void (events.retries.push({ id: m.id, state }), changed()),
        ...deps,
      },
    );
    relays.push(r);
    const next = () => new Promise<void>((resolve) => (wake = resolve));
    return { r, events, next };
  }

  it('smtp:// upgrades with STARTTLS, trusts the smarthost through its CA, and logs in over TLS', async () => {
    const port = await smarthost({ authMethods: ['PLAIN', 'LOGIN'] });
    const { r, events, next } = relay(`smtp://gw:s3cret@127.0.0.1:${port}`, pems.cert);
    const done = next();
    r.enqueue(mail('a1'));
    await done;
    assert.deepEqual(events.sent, ['a1']);
    assert.equal(received.length, 1);
    assert.equal(received[0]!.secure, true, 'the message went over TLS');
    assert.equal(received[0]!.user, 'gw');
    assert.equal(received[0]!.from, 'alice@rose.mesh.test');
    assert.match(received[0]!.data, /Message-ID: <a1@rose\.mesh\.test>/i);
  });

  it('smtps:// speaks TLS from the first byte', async () => {
    const port = await smarthost({ secure: true, authOptional: true });
    const { r, events, next } = relay(`smtps://127.0.0.1:${port}`, pems.cert);
    const done = next();
    r.enqueue(mail('b1'));
    await done;
    assert.deepEqual(events.sent, ['b1']);
    assert.equal(received[0]!.secure, true);
  });

  it('a certificate it was not told to trust stops the mail: no fallback to plain text', async () => {
    const port = await smarthost({ authOptional: true });
    const { r, events, next } = relay(`smtp://127.0.0.1:${port}`, otherCert);
    const done = next();
    r.enqueue(mail('c1'));
    await done;
    assert.equal(events.sent.length, 0);
    assert.equal(received.length, 0, 'nothing reached the smarthost');
    assert.equal(events.retries.length, 1, 'a bad certificate is retried (the operator may fix the CA), then bounced');
    assert.equal(r.stats().queued, 1);
  });

  it('never sends a password to a smarthost that offers no STARTTLS', async () => {
    const port = await smarthost({ disabledCommands: ['STARTTLS'], allowInsecureAuth: true });
    const { r, events, next } = relay(`smtp://gw:s3cret@127.0.0.1:${port}`, pems.cert);
    const done = next();
    r.enqueue(mail('d1'));
    await done;
    assert.equal(authTries, 0, 'the credentials never went out');
    assert.equal(received.length, 0);
    assert.deepEqual(events.failed, [], 'not bounced at once: the gateway’s TLS set-up is at fault, not the mail');
    assert.equal(events.retries.length, 1);
  });

  it('a smarthost on loopback with no CA given: STARTTLS with whatever certificate it has, AUTH with a percent-encoded user and password', async () => {
    // smtp-server as it comes: STARTTLS with its built-in certificate, which no CA vouches for.
    // On loopback nothing leaves the machine; the mail goes, over TLS all the same.
    const port = await smarthost({ onAuth: (auth, _s, cb) => (authTries++, cb(auth.username === 'gw@rose' && auth.password === 'p@ss:w/rd' ? null : new Error('bad credentials'), { user: auth.username })) }, { builtInCertificate: true });
    const { r, events, next } = relay(`smtp://gw%40rose:p%40ss%3Aw%2Frd@127.0.0.1:${port}`, undefined);
    const done = next();
    r.enqueue(mail('f1'));
    await done;
    assert.deepEqual(events.sent, ['f1'], JSON.stringify(events));
    assert.equal(received[0]!.secure, true, 'STARTTLS was still used');
    assert.equal(received[0]!.user, 'gw@rose');
    assert.equal(received[0]!.from, 'alice@rose.mesh.test');
  });

  it('a smarthost on loopback that offers no STARTTLS gets the password there (it never leaves the machine)', async () => {
    const port = await smarthost({ disabledCommands: ['STARTTLS'], allowInsecureAuth: true });
    const { r, events, next } = relay(`smtp://gw:s3cret@localhost:${port}`, undefined);
    const done = next();
    r.enqueue(mail('g1'));
    await done;
    assert.deepEqual(events.sent, ['g1'], JSON.stringify(events));
    assert.equal(received[0]!.secure, false);
    assert.equal(received[0]!.user, 'gw');
  });

  it('a mail taken for some recipients and refused for others is sent once, and the refused ones are reported', async () => {
    const port = await smarthost({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      onRcptTo: (address, _s, cb) => cb(address.address.startsWith('nobody@') ? Object.assign(new Error('5.1.1 no such user'), { responseCode: 550 }) : null),
    });
    const failed: OutboundMail[] = [];
    let wake = () => undefined as void;
    const bounced = new Promise<void>((resolve) => (wake = resolve));
    const { r, events } = relay(`smtp://127.0.0.1:${port}`, undefined, { onFailed: (m, reason) => void (failed.push(m), events.failed.push({ id: m.id, reason }), wake()) });
    r.enqueue({ ...mail('h1'), to: ['bob@outside.test', 'nobody@outside.test'] });
    await bounced;
    assert.deepEqual(events.sent, ['h1']);
    assert.equal(received.length, 1, 'the mail went once');
    assert.deepEqual(failed.map((m) => m.to), [['nobody@outside.test']]);
    assert.match(events.failed[0]!.reason, /^nobody@outside\.test: 550 5\.1\.1 no such user/);
    assert.deepEqual(r.stats(), { queued: 0, sent: 1, failed: 1, retries: 0 });
  });

  it('a login the smarthost refuses (wrong password, or none where one is required) is retried, not bounced', async () => {
    const port = await smarthost({ disabledCommands: ['STARTTLS'], allowInsecureAuth: true });
    const wrong = relay(`smtp://gw:wrong@127.0.0.1:${port}`, undefined);
    let done = wrong.next();
    wrong.r.enqueue(mail('i1'));
    await done;
    assert.equal(authTries, 1);
    assert.deepEqual(wrong.events.failed, [], 'not the mail’s fault');
    assert.equal(wrong.events.retries.length, 1);
    assert.equal(wrong.r.stats().queued, 1);
    const required = await smarthost({ disabledCommands: ['STARTTLS'], authOptional: false, allowInsecureAuth: true });
    const none = relay(`smtp://127.0.0.1:${required}`, undefined);
    done = none.next();
    none.r.enqueue(mail('i2'));
    await done;
    assert.deepEqual(none.events.failed, []);
    assert.equal(none.events.retries.length, 1);
    assert.equal(received.length, 0);
  });

  it('a hook of the caller that throws (its store, the bounce) is logged, not an unhandled rejection that would end the node', async () => {
    const port = await smarthost({ disabledCommands: ['STARTTLS'], authOptional: true, onRcptTo: (_a, _s, cb) => cb(Object.assign(new Error('no such user'), { responseCode: 550 })) });
    const logged = new Promise<string>((resolve) => {
      relay(`smtp://127.0.0.1:${port}`, undefined, {
        onFailed: () => Promise.reject(new Error('the store is closed')),
        log: (line) => {
          if (/the store is closed/.test(line)) resolve(line);
        },
      }).r.enqueue(mail('j1'));
    });
    assert.equal(await logged, 'smtp: mail j1: the store is closed');
  });

  it('knows loopback hosts', () => {
    for (const host of ['localhost', 'LOCALHOST', 'mail.localhost', '127.0.0.1', '127.1.2.3', '::1', '[::1]', '::ffff:127.0.0.1', new URL('smtp://[::ffff:127.0.0.1]:25').hostname]) assert.equal(isLoopbackHost(host), true, host);
    for (const host of ['128.0.0.1', '10.0.0.1', 'smtp.example.org', 'localhost.example.org', '::2', '1127.0.0.1', '::ffff:8000:1']) assert.equal(isLoopbackHost(host), false, host);
  });

  it('a mail resumed after a restart counts its earlier tries and waits until its next try is due', async () => {
    const port = await smarthost({ disabledCommands: ['STARTTLS'], authOptional: true, onRcptTo: (_a, _s, cb) => cb(Object.assign(new Error('try later'), { responseCode: 451 })) });
    let now = 1_000_000;
    const { r, events, next } = relay(`smtp://127.0.0.1:${port}`, undefined, { now: () => now });
    // Nine tries were made before the restart, the tenth is the last: a 4xx now gives up.
    const done = next();
    r.enqueue(mail('e1'), { attempts: 9, nextAt: now - 1 });
    await done;
    assert.equal(events.failed.length, 1);
    assert.match(events.failed[0]!.reason, /451/);
    // A mail whose next try is far off is held, not tried at once.
    now = 2_000_000;
    r.enqueue(mail('e2'), { attempts: 1, nextAt: now + 3_600_000 });
    assert.equal(r.stats().queued, 1);
    assert.equal(events.retries.length + events.failed.length + events.sent.length, 1, 'e2 not tried yet');
  });
});
