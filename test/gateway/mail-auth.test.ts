/**
 * SPF, DKIM and DMARC of internet mail at the SMTP gateway (gateway/mail-auth.ts, issue 7).
 * There is no DNS in tests: the test signs a message with mailauth's dkimSign and a key it
 * generates, and publishes that key, an SPF record and a DMARC policy through a resolver of
 * its own. A tampered message fails DKIM; with no resolver answering, the mail is still taken
 * and the results say temperror. The results travel sealed inside the mail and the mailbox
 * shows them only for mail signed by a household that announced an SMTP gateway.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { MemoryLevel } from 'memory-level';
import { dkimSign, type DNSResolver } from 'mailauth';
import { createTransport } from 'nodemailer';
import { ManualClock } from '../../mesh/clock.ts';
import { GatewayService } from '../../mesh/directory.ts';
import { Identity } from '../../mesh/identity.ts';
import { MeshNode } from '../../mesh/node.ts';
import { RecordKind } from '../../mesh/record.ts';
import { RecordStore } from '../../mesh/record-store.ts';
import { seal } from '../../mesh/seal.ts';
import { announceGateway, NO_PEER_KEY } from '../../gateway/announce.ts';
import { createSmtpIn, type InboundMail, type SmtpIn } from '../../gateway/smtp-in.ts';
import { decodeMail, encodeMail, type MailContent } from '../../apps/mail/mail-codec.ts';
import { Mailbox, mailFeed } from '../../apps/mail/mailbox.ts';
import { seededRandom } from '../helpers/random.ts';

const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const dkimKey = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');

/** The DNS of example.org as the test makes it up; every other name does not exist. */
const zone: { [name: string]: string[] } = {
  'example.org': ['v=spf1 ip4:127.0.0.1 -all'],
  'sel1._domainkey.example.org': [`v=DKIM1; k=rsa; p=${dkimKey}`],
  '_dmarc.example.org': ['v=DMARC1; p=reject'],
};
const fakeDns: DNSResolver = async (name, type) => {
  const txt = type === 'TXT' ? zone[name.toLowerCase()] : undefined;
  if (!txt) throw Object.assign(new Error(`queryTxt ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
  return txt.map((t) => [t]);
};

async function signedMessage(body: string): Promise<string> {
  const message = ['From: Bob <bob@example.org>', 'To: alice@rose.mesh.test', 'Subject: signed', 'Date: Mon, 02 Nov 2026 09:00:00 +0000', 'Message-ID: <1@example.org>', '', body, ''].join('\r\n');
  const key = { signingDomain: 'example.org', selector: 'sel1', privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }) };
  const signed = await dkimSign(message, { ...key, signatureData: [key] });
  assert.deepEqual(signed.errors, []);
  assert.match(signed.signatures, /^DKIM-Signature: /);
  return signed.signatures + message;
}

describe('gateway/mail-auth: SPF, DKIM and DMARC recorded at the SMTP gateway', function () {
  this.timeout(20_000);
  let server: SmtpIn | undefined;
  const delivered: InboundMail[] = [];

  async function start(resolver: DNSResolver | undefined, authTimeoutMs = 5000, host = '127.0.0.1'): Promise<void> {
    delivered.length = 0;
    server = createSmtpIn(
      { host, port: 0, domain: 'mesh.test', authTimeoutMs },
      { isMember: (a) => a === 'alice@rose', deliver: async (m) => void delivered.push(m), ...(resolver ? { resolver } : {}) },
    );
    await server.start();
  }
  const send = (from: string, raw: string) =>
    createTransport({ host: '127.0.0.1', port: server!.address()!.port, secure: false, ignoreTLS: true }).sendMail({ envelope: { from, to: ['alice@rose.mesh.test'] }, raw });

  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  it('a DKIM-signed mail from an SPF-allowed host passes all three', async () => {
    await start(fakeDns);
    const info = await send('bob@example.org', await signedMessage('Signed and sealed.'));
    assert.deepEqual(info.accepted, ['alice@rose.mesh.test']);
    assert.deepEqual(delivered[0]!.authentication, { spf: 'pass', dkim: 'pass', dmarc: 'pass' });
  });

  it('a tampered body fails DKIM, and DMARC too when SPF does not align', async () => {
    await start(fakeDns);
    const tampered = (await signedMessage('Pay 10 euros.')).replace('Pay 10 euros.', 'Pay 1000 euros.');
    await send('bounce@elsewhere.test', tampered);
    assert.deepEqual(delivered[0]!.authentication, { spf: 'none', dkim: 'fail', dmarc: 'fail' });
    assert.equal(delivered[0]!.body, 'Pay 1000 euros.', 'the mail is still taken: the results are recorded, not enforced');
    const otherSubject = (await signedMessage('Fine.')).replace('Subject: signed', 'Subject: changed');
    await send('bob@example.org', otherSubject);
    assert.deepEqual(delivered[1]!.authentication, { spf: 'pass', dkim: 'fail', dmarc: 'pass' }, 'a changed signed header fails DKIM; SPF still aligns for DMARC');
  });

  it('checks SPF for an IPv4 client reaching a dual-stack socket by its IPv4 address', async () => {
    // The loopback only, as an IPv4-mapped IPv6 address: the client shows as ::ffff:127.0.0.1.
    await start(fakeDns, 5000, '::ffff:127.0.0.1');
    await send('bob@example.org', await signedMessage('Mapped.'));
    assert.deepEqual(delivered[0]!.authentication, { spf: 'pass', dkim: 'pass', dmarc: 'pass' });
  });

  it('SPF fails for a host the domain does not allow', async () => {
    zone['example.net'] = ['v=spf1 ip4:192.0.2.1 -all'];
    await start(fakeDns);
    await send('bob@example.net', 'From: bob@example.net\r\nTo: alice@rose.mesh.test\r\nSubject: unsigned\r\n\r\nhello\r\n');
    assert.equal(delivered[0]!.authentication.spf, 'fail');
    assert.equal(delivered[0]!.authentication.dkim, 'none');
  });

  it('with no DNS answering, the mail is still taken and the results say temperror', async () => {
    // A resolver that never answers: the checks are cut off after authTimeoutMs.
    await start(() => new Promise(() => undefined), 300);
    const began = Date.now();
    const info = await send('bob@example.org', await signedMessage('No DNS here.'));
    assert.deepEqual(info.accepted, ['alice@rose.mesh.test']);
    assert.ok(Date.now() - began < 4000);
    assert.deepEqual(delivered[0]!.authentication, { spf: 'temperror', dkim: 'temperror', dmarc: 'temperror' });
    // A resolver that fails at once (SERVFAIL): DKIM's key cannot be fetched, a temporary error.
    await server!.stop();
    await start(async () => {
      throw Object.assign(new Error('queryTxt ESERVFAIL'), { code: 'ESERVFAIL' });
    });
    await send('bob@example.org', await signedMessage('Still no DNS.'));
    assert.equal(delivered[0]!.authentication.dkim, 'temperror');
    assert.notEqual(delivered[0]!.authentication.spf, 'pass');
  });
});

describe('apps/mail: authentication results inside the sealed mail', () => {
  const auth = { spf: 'pass', dkim: 'fail', dmarc: 'none' } as const;

  it('decodes and encodes the known answers of test/vectors/mail-v2.json, and refuses its invalid ones', () => {
    const vectors = JSON.parse(readFileSync(new URL('../vectors/mail-v2.json', import.meta.url), 'utf8')) as {
      valid: { name: string; mail: MailContent; hex: string }[];
      invalid: { name: string; hex: string; code: string }[];
    };
    assert.ok(vectors.valid.length >= 2 && vectors.invalid.length >= 4);
    for (const v of vectors.valid) {
      assert.equal(Buffer.from(encodeMail(v.mail)).toString('hex'), v.hex, v.name);
      assert.deepEqual(decodeMail(Buffer.from(v.hex, 'hex')), v.mail, v.name);
    }
    for (const v of vectors.invalid) assert.throws(() => decodeMail(Buffer.from(v.hex, 'hex')), { code: v.code }, v.name);
  });

  it('is mail format version 2; mail without results stays version 1, byte for byte', () => {
    const plain: MailContent = { from: 'bob@example.org', to: ['alice@rose'], subject: 's', body: 'b' };
    const v1 = encodeMail(plain);
    assert.equal(v1[0], 1);
    assert.deepEqual(decodeMail(v1), plain);
    const v2 = encodeMail({ ...plain, authentication: auth });
    assert.equal(v2[0], 2);
    assert.deepEqual([...v2.subarray(v1.length)], [1, 2, 0]);
    assert.deepEqual(decodeMail(v2), { ...plain, authentication: auth });
    assert.throws(() => decodeMail(Uint8Array.from([...v2.subarray(0, -1), 8])), { code: 'MAIL_MALFORMED' });
    assert.throws(() => decodeMail(v2.subarray(0, -1)), { code: 'MAIL_MALFORMED' });
    assert.throws(() => decodeMail(Uint8Array.from([...v2, 0])), { code: 'DECODE_TRAILING' });
  });

  it('the mailbox shows the results of a mail gateway household, never a member’s claim', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 2, 9));
    const random = seededRandom(7);
    const store = await RecordStore.open(new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' }));
    const node = new MeshNode({ householdName: 'oak' }, { household: Identity.generate(random), store, clock, random });
    await node.start();
    const alice = Identity.generate(random);
    const mallory = Identity.generate(random);
    await node.certifyMember('alice', alice);
    await node.certifyMember('mallory', mallory);
    const ids = new Map([['alice', alice], ['mallory', mallory]]);
    const mailbox = new Mailbox({ node, memberIdentity: async (m) => ids.get(m)! });
    await announceGateway(node, { peerKey: NO_PEER_KEY, services: GatewayService.Smtp, domain: 'mesh.test', addrs: [] });
    await mailbox.deliverAsHousehold({ from: 'bob@example.org', to: ['alice@oak'], subject: 'from outside', body: 'hi', authentication: auth });
    // A member signs a mail that claims DKIM passed: the claim is not shown.
    const forged = encodeMail({ from: 'bank@example.com', to: ['alice@oak'], subject: 'forged', body: 'trust me', authentication: { spf: 'pass', dkim: 'pass', dmarc: 'pass' } });
    await node.publish(mallory, { kind: RecordKind.Mail, feed: mailFeed(mallory.id), sealed: true, priority: 0, payload: seal(forged, [alice.agreementKey], mallory.id, random) });
    const inbox = await mailbox.list('alice', 'inbox');
    assert.deepEqual(inbox.find((m) => m.subject === 'from outside')?.authentication, auth);
    const claim = inbox.find((m) => m.subject === 'forged');
    assert.ok(claim);
    assert.equal(claim.from, 'mallory@oak');
    assert.equal(claim.authentication, undefined);
  });
});
