/**
 * Two mail gateways in one community, as real `citizen start` processes over libp2p on
 * 127.0.0.1 (issue 7): elm and oak both bridge `mesh.test` to a smarthost of their own (real
 * smtp-server instances in the test). Rose is linked to oak only, so oak is the gateway rose
 * hears; elm, first by name, is two hops away. Once rose knows both statements, mail from rose
 * to the internet is sealed to oak and leaves through oak's smarthost alone.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { citizen, eventually, login, startNode, stopNode, type RunningNode } from '../helpers/citizen.ts';
import { freePort } from '../helpers/net.ts';

interface Status {
  households_known: number;
  records: number;
  p2p: { addrs: string[] } | null;
  links: { neighbour_list: { name: string | null; verified: boolean }[] }[];
}

describe('two mail gateways: mail leaves through the one rose hears (issue 7)', function () {
  this.timeout(120_000);
  const root = mkdtempSync(join(tmpdir(), 'citizen-two-gw-'));
  const nodes: RunningNode[] = [];
  const smarthosts: SMTPServer[] = [];
  const received: { [gateway: string]: string[] } = { elm: [], oak: [] };
  const portals: { [name: string]: number } = {};

  const status = async (name: string) => (await (await fetch(`http://127.0.0.1:${portals[name]}/api/status`)).json()) as Status;

  async function smarthost(name: string): Promise<number> {
    const server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['AUTH', 'STARTTLS'],
      logger: false,
      onData(stream, _session, callback) {
        let data = '';
        stream.on('data', (c: Buffer) => (data += c.toString()));
        stream.on('end', () => {
          received[name]!.push(data);
          callback();
        });
      },
    });
    smarthosts.push(server);
    const port = await freePort();
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    return port;
  }

  async function household(name: string, flags: string[]): Promise<string> {
    const dir = join(root, name);
    assert.equal((await citizen(['init', '--name', name, '--data', dir])).code, 0);
    assert.equal((await citizen(['user', 'add', 'alice', '--admin', '--password-stdin', '--data', dir], `alice of ${name}\n`)).code, 0);
    portals[name] = await freePort();
    const p2p = await freePort();
    nodes.push(await startNode(['--data', dir, '--portal', `127.0.0.1:${portals[name]}`, '--p2p-listen', `/ip4/127.0.0.1/tcp/${p2p}`, ...flags], { env: { CITIZEN_SMTP_RETRY_MS: '200' } }));
    return (await status(name)).p2p!.addrs.find((a) => a.startsWith(`/ip4/127.0.0.1/tcp/${p2p}/`))!;
  }

  before(async () => {
    const gatewayFlags = async (name: string) => ['--mail-domain', 'mesh.test', '--smtp-relay', `smtp://127.0.0.1:${await smarthost(name)}`];
    const elm = await household('elm', await gatewayFlags('elm'));
    const oak = await household('oak', [...(await gatewayFlags('oak')), '--p2p-peer', elm]);
    await household('rose', ['--p2p-peer', oak]);
  });

  after(async () => {
    await Promise.all(nodes.map(stopNode));
    await Promise.all(smarthosts.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    rmSync(root, { recursive: true, force: true });
  });

  it('seals internet mail to the gateway heard on a link, not the first by name', async () => {
    // Every household holds every record (both gateway statements among them) before rose writes.
    await eventually(
      'the three households in sync',
      async () => {
        const all = await Promise.all(['elm', 'oak', 'rose'].map(status));
        return all.every((s) => s.households_known === 3 && s.records === all[0]!.records) ? true : undefined;
      },
      60_000,
    );
    // And rose hears oak as a verified neighbour: a beacon that came before oak's directory entry
    // is verified only with the next one (under load, after the records were in sync).
    await eventually(
      'rose hearing oak',
      async () => ((await status('rose')).links.some((l) => l.neighbour_list.some((n) => n.name === 'oak' && n.verified)) ? true : undefined),
      60_000,
    );
    const rose = await login(`http://127.0.0.1:${portals.rose}`, 'alice', 'alice of rose');
    const sent = await rose('/api/mail', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ to: ['bob@outside.test'], subject: 'Which gateway?', body: 'The near one.' }),
    });
    assert.equal(sent.status, 201, await sent.clone().text());
    await eventually('the mail at a smarthost', async () => (received.oak!.length + received.elm!.length > 0 ? true : undefined), 60_000);
    assert.equal(received.oak!.length, 1, 'through oak, the gateway rose hears');
    assert.equal(received.elm!.length, 0, 'not through elm, two hops away, though first by name');
    assert.match(received.oak![0]!, /The near one\./);
  });
});
