/**
 * Outgoing internet mail waiting for a retry survives a restart of the gateway (issue 7): a
 * real `citizen start` process, mail gateway for itself, whose smarthost is down. The mail is
 * tried and waits; the gateway stops and starts again; the smarthost comes up (a real
 * smtp-server with a self-signed certificate, trusted through --smtp-relay-ca); the mail
 * arrives over TLS exactly once, and one more restart sends nothing again.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { SMTPServer } from 'smtp-server';
import { citizen, eventually, login, startNode, stopNode, type RunningNode } from '../helpers/citizen.ts';
import { freePort } from '../helpers/net.ts';

interface Out {
  queued: number;
  sent: number;
  failed: number;
  retries: number;
}

describe('SMTP out: the retry queue across a gateway restart (issue 7)', function () {
  this.timeout(120_000);
  const root = mkdtempSync(join(tmpdir(), 'citizen-smtp-restart-'));
  const dir = join(root, 'oak');
  const received: { secure: boolean; data: string }[] = [];
  let smarthost: SMTPServer | undefined;
  let node: RunningNode | undefined;
  let portal = 0;
  let relayPort = 0;
  let cert = { cert: '', private: '' };

  const out = async (): Promise<Out> => ((await (await fetch(`http://127.0.0.1:${portal}/api/status`)).json()) as { smtp: { out: Out } }).smtp.out;
  const start = async () => {
    node = await startNode(
      ['--data', dir, '--portal', `127.0.0.1:${portal}`, '--mail-domain', 'mesh.test', '--smtp-relay', `smtp://127.0.0.1:${relayPort}`, '--smtp-relay-ca', join(root, 'smarthost.pem')],
      { env: { CITIZEN_SMTP_RETRY_MS: '200' } },
    );
  };
  const stop = async () => {
    if (node) assert.equal(await stopNode(node), 0, node.output());
    node = undefined;
  };

  before(async () => {
    const made = await generate([{ name: 'commonName', value: 'smarthost.test' }], {
      keySize: 2048,
      algorithm: 'sha256',
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
    });
    cert = { cert: made.cert, private: made.private };
    writeFileSync(join(root, 'smarthost.pem'), made.cert);
    assert.equal((await citizen(['init', '--name', 'oak', '--data', dir])).code, 0);
    assert.equal((await citizen(['user', 'add', 'alice', '--admin', '--password-stdin', '--data', dir], 'alice of oak\n')).code, 0);
    portal = await freePort();
    relayPort = await freePort(); // nothing listens there yet: the smarthost is down
  });

  after(async () => {
    await stop().catch(() => undefined);
    if (smarthost) await new Promise<void>((resolve) => smarthost!.close(() => resolve()));
    rmSync(root, { recursive: true, force: true });
  });

  it('refuses --smtp-relay-ca that holds no certificate', async () => {
    writeFileSync(join(root, 'empty.pem'), 'not a certificate\n');
    const run = await citizen(['start', '--data', dir, '--portal', `127.0.0.1:${await freePort()}`, '--mail-domain', 'mesh.test', '--smtp-relay', 'smtp://127.0.0.1:1', '--smtp-relay-ca', join(root, 'empty.pem')]);
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /--smtp-relay-ca: .* holds no PEM certificate/);
  });

  it('delivers a mail that waited through a restart, exactly once', async () => {
    await start();
    const alice = await login(`http://127.0.0.1:${portal}`, 'alice', 'alice of oak');
    const written = Math.floor(Date.now() / 1000) * 1000;
    const sent = await alice('/api/mail', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ to: ['bob@outside.test'], subject: 'Through the restart', body: 'Waited for the smarthost.' }),
    });
    assert.equal(sent.status, 201, await sent.clone().text());
    await eventually('a failed try', async () => ((await out()).retries >= 1 ? true : undefined));

    await stop();
    await start();
    const resumed = await out();
    assert.equal(resumed.queued, 1, 'the waiting mail is queued again after the restart');
    assert.equal(resumed.sent, 0);

    smarthost = new SMTPServer({
      logger: false,
      authOptional: true,
      key: cert.private,
      cert: cert.cert,
      onData(stream, session, callback) {
        let data = '';
        stream.on('data', (c: Buffer) => (data += c.toString()));
        stream.on('end', () => {
          received.push({ secure: session.secure, data });
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => smarthost!.listen(relayPort, '127.0.0.1', resolve));
    const done = await eventually('the mail at the smarthost', async () => {
      const o = await out();
      return o.sent === 1 && o.queued === 0 ? o : undefined;
    });
    assert.equal(done.failed, 0);
    assert.equal(received.length, 1);
    assert.match(received[0]!.data, /Waited for the smarthost\./);
    assert.equal(received[0]!.secure, true, 'over STARTTLS, the smarthost trusted through --smtp-relay-ca');
    // Date: says when alice wrote it, not when the try after the restart went out.
    const date = Date.parse(/^Date: (.*)$/m.exec(received[0]!.data)![1]!);
    assert.ok(date >= written && date <= written + 2000, `Date: ${new Date(date).toISOString()}, written ${new Date(written).toISOString()}`);
    assert.match(received[0]!.data, /^From: alice@oak\.mesh\.test\r?$/m);
    assert.match(received[0]!.data, /^Message-ID:\s+<[0-9a-f]{64}@oak\.mesh\.test>\r?$/m);

    // Once sent, never again: a restart queues nothing.
    await stop();
    await start();
    assert.deepEqual(await out(), { queued: 0, sent: 0, failed: 0, retries: 0 });
    assert.equal(received.length, 1);
  });
});
