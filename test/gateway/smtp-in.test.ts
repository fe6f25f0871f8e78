/**
 * SMTP in (gateway/smtp-in.ts) against abuse, in process with a real client (nodemailer) and
 * raw sockets: too many recipients, malformed MIME, a slow-loris client — each refused or cut
 * off with the right code, counted, and the server keeps serving.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { createTransport } from 'nodemailer';
import { createSmtpIn, meshAddressOf, textOfHtml, type InboundMail, type SmtpIn } from '../../gateway/smtp-in.ts';

describe('gateway/smtp-in: abuse', function () {
  this.timeout(20_000);
  let server: SmtpIn;
  const delivered: InboundMail[] = [];
  const client = () => createTransport({ host: '127.0.0.1', port: server.address()!.port, secure: false, ignoreTLS: true });

  beforeEach(async () => {
    delivered.length = 0;
    server = createSmtpIn(
      { host: '127.0.0.1', port: 0, domain: 'mesh.test', maxRecipients: 2, idleTimeoutMs: 400, maxBytes: 64 * 1024 },
      { isMember: (a) => a.startsWith('alice@') || a.startsWith('bob@'), deliver: async (m) => void delivered.push(m) },
    );
    await server.start();
  });

  afterEach(() => server.stop());

  it('maps alice@rose.D to alice@rose and nothing else', () => {
    assert.equal(meshAddressOf('Alice@Rose.mesh.test', 'mesh.test'), 'alice@rose');
    assert.equal(meshAddressOf('alice@a.b.mesh.test', 'mesh.test'), null);
    assert.equal(meshAddressOf('alice@mesh.test', 'mesh.test'), null);
    assert.equal(meshAddressOf('alice@rose.mesh.test.evil.org', 'mesh.test'), null);
  });

  it('answers 5.1.1 (no such member) for an address in the domain that is no member@household, 5.7.1 for another domain', async () => {
    const rcpt = async (to: string) => {
      const err = (await client()
        .sendMail({ envelope: { from: 'x@example.org', to: [to] }, raw: 'Subject: x\r\n\r\nx' })
        .then(() => null, (e: unknown) => e)) as { response?: string } | null;
      return err?.response?.replace(/ <.*$/, '');
    };
    assert.equal(await rcpt('alice.smith@rose.mesh.test'), '550 5.1.1');
    assert.equal(await rcpt('alice@MESH.test'), '550 5.1.1');
    assert.equal(await rcpt('alice@a.b.mesh.test'), '550 5.1.1');
    assert.equal(await rcpt('alice@rose.mesh.test.example.org'), '550 5.7.1');
    assert.equal(await rcpt('alice@notmesh.test'), '550 5.7.1');
    assert.deepEqual(server.stats().refused, { 'unknown-recipient': 3, relay: 2 });
  });

  it('takes recipients up to the limit and refuses more with 452', async () => {
    const info = await client().sendMail({ from: 'x@example.org', to: ['alice@rose.mesh.test', 'bob@rose.mesh.test', 'alice@oak.mesh.test'], text: 'hi' });
    assert.deepEqual(info.accepted, ['alice@rose.mesh.test', 'bob@rose.mesh.test']);
    assert.equal(delivered.length, 1);
    assert.deepEqual(delivered[0]!.to, ['alice@rose', 'bob@rose']);
    assert.equal(server.stats().refused['too-many-recipients'], 1);
  });

  it('carries text of broken MIME, notes attachments instead of carrying them, and keeps serving', async () => {
    const raw = [
      'From: x@example.org',
      'To: alice@rose.mesh.test',
      'Subject: broken',
      'Content-Type: multipart/mixed; boundary="nope"',
      '',
      '--wrong-boundary',
      'Content-Type: text/plain',
      '',
      'text without a closing boundary',
    ].join('\r\n');
    await client().sendMail({ envelope: { from: 'x@example.org', to: ['alice@rose.mesh.test'] }, raw });
    const withFile = await client().sendMail({
      from: 'x@example.org',
      to: 'alice@rose.mesh.test',
      subject: 'file',
      text: 'see attached',
      attachments: [{ filename: 'photo.jpg', content: Buffer.alloc(2000, 1), contentType: 'image/jpeg' }],
    });
    assert.deepEqual(withFile.accepted, ['alice@rose.mesh.test']);
    assert.equal(delivered.length, 2);
    assert.equal(delivered[0]!.subject, 'broken');
    assert.match(delivered[1]!.body, /^see attached\n\n\[attachment not carried into the mesh: photo\.jpg \(image\/jpeg, 2000 bytes\)\]$/);
  });

  it('carries the text of an HTML-only mail without its scripts, styles and tags', async () => {
    const raw = [
      'From: x@example.org',
      'To: alice@rose.mesh.test',
      'Subject: html only',
      'MIME-Version: 1.0',
      'Content-Type: multipart/alternative; boundary="b"',
      '',
      '--b',
      'Content-Type: text/html; charset=utf-8',
      '',
      '<html><head><style>p { color: red }</style></head><body><p>Hello <b>you</b> &amp; &#233;&#x2713;</p><script>alert(1)</script><p>Second&nbsp;line<br>third</p></body></html>',
      '--b--',
    ].join('\r\n');
    await client().sendMail({ envelope: { from: 'x@example.org', to: ['alice@rose.mesh.test'] }, raw });
    assert.equal(delivered[0]!.body, 'Hello you & é✓\n\nSecond line\nthird');
    assert.equal(textOfHtml('&#0; &#xd800; &#99999999; &bogus;'), '&#0; &#xd800; &#99999999; &bogus;', 'references to no character are left as written');
  });

  it('cuts off a slow-loris client that stops talking', async () => {
    const socket = connect(server.address()!.port, '127.0.0.1');
    socket.on('error', () => undefined);
    const began = Date.now();
    await new Promise<void>((resolve) => {
      socket.on('data', (d) => {
        if (d.toString().startsWith('220')) socket.write('EHLO slow\r\nMAIL FROM:<x@example.org>\r\n');
      });
      socket.on('close', () => resolve());
    });
    const held = Date.now() - began;
    assert.ok(held >= 300 && held < 5000, `held for ${held} ms`);
    const ok = await client().sendMail({ from: 'x@example.org', to: 'alice@rose.mesh.test', text: 'after the loris' });
    assert.deepEqual(ok.accepted, ['alice@rose.mesh.test']);
  });
});
