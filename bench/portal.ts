/**
 * Portal benchmark (issue 6): a node holding 10,000 mails, 10,000 chat messages and 1,000
 * blog posts; p50/p95 latency of the inbox, a room and the blog list over real HTTP, and the
 * RSS of the node with its portal (its own process). Run: node --import ./bin/node-compat.mjs --import tsx
 * bench/portal.ts (PORTAL_BENCH_SCALE=0.1 for a quick run). PORTAL_BENCH_DIR=DIR fills DIR once
 * and keeps it, so later runs (profiling start-up, say) skip the filling.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAccounts } from '../apps/daemon/accounts.ts';
import { openNode } from '../apps/daemon/daemon.ts';
import { DataDir } from '../apps/daemon/data-dir.ts';
import { Blog } from '../apps/blog/blog.ts';
import { Chat } from '../apps/chat/chat.ts';
import { Mailbox } from '../apps/mail/mailbox.ts';

const scale = Number(process.env.PORTAL_BENCH_SCALE ?? 1);
const counts = { mails: Math.round(10_000 * scale), messages: Math.round(10_000 * scale), posts: Math.round(1_000 * scale) };
const kept = process.env.PORTAL_BENCH_DIR;
const root = kept ?? mkdtempSync(join(tmpdir(), 'citizen-portal-bench-'));
const dir = new DataDir(root);
const filledMark = join(root, 'bench-filled.json');
if (kept && existsSync(filledMark)) {
  console.log(`reusing ${root}: ${readFileSync(filledMark, 'utf8')}`);
} else {
  mkdirSync(root, { recursive: true });
  await fill();
  writeFileSync(filledMark, JSON.stringify(counts));
}
/** The room the messages went to. */
const room = JSON.parse(readFileSync(join(root, 'bench-room.json'), 'utf8')) as string;

async function fill(): Promise<void> {
  dir.init('rose');
  await createAccounts(dir.accountsPath, { scryptCost: { N: 2 ** 10 } }).add('alice', 'alice password', { admin: true });
  await createAccounts(dir.accountsPath, { scryptCost: { N: 2 ** 10 } }).add('bob', 'bob password');

  const t = performance.now();
  const node = await openNode(dir);
  const memberIdentity = async (name: string) => {
    const identity = dir.memberIdentity(name);
    await node.certifyMember(name, identity);
    return identity;
  };
  await memberIdentity('alice');
  await memberIdentity('bob');
  const mail = new Mailbox({ node, memberIdentity });
  const chat = new Chat({ node, memberIdentity });
  const blog = new Blog({ node, memberIdentity });
  for (let i = 0; i < counts.mails; i++) await mail.send('bob', { to: ['alice@rose'], subject: `mail ${i}`, body: `body of mail ${i} `.repeat(5) });
  const { id: room } = await chat.createRoom('alice', { name: 'street' });
  writeFileSync(join(root, 'bench-room.json'), JSON.stringify(room));
  for (let i = 0; i < counts.messages; i++) await chat.post(i % 2 ? 'alice' : 'bob', room, `message ${i}`);
  for (let i = 0; i < counts.posts; i++) await blog.publish('bob', { title: `post ${i}`, body: `# Post ${i}\n\nSome **text**.` });
  await node.stop();
  await node.store.close();
  console.log(`filled ${counts.mails} mails, ${counts.messages} messages, ${counts.posts} posts in ${((performance.now() - t) / 1000).toFixed(1)} s`);
}

// The node runs as its own process (as `npm start` does), so its RSS is its own.
const t = performance.now();
const child = spawn(process.execPath, [join(import.meta.dirname, '../bin/citizen.mjs'), 'start', '--data', root, '--portal', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
const url = await new Promise<string>((resolve, reject) => {
  let output = '';
  const onData = (d: Buffer) => {
    output += d;
    const m = /Portal: (http:\/\/\S+)/.exec(output);
    if (m) resolve(m[1]!);
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  child.on('close', (code) => reject(new Error(`node exited with ${code}: ${output}`)));
});
console.log(`node started (store loaded, documents rebuilt) in ${((performance.now() - t) / 1000).toFixed(1)} s`);
async function logIn(user: string): Promise<string> {
  const login = await fetch(`${url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user, password: `${user} password` }) });
  return (login.headers.get('set-cookie') ?? '').split(';')[0]!;
}
const cookie = await logIn('alice');

async function measure(name: string, path: string, runs = 40, as = cookie): Promise<void> {
  const first = performance.now();
  const firstRes = await fetch(`${url}${path}`, { headers: { cookie: as } });
  const bytes = (await firstRes.arrayBuffer()).byteLength;
  const firstMs = performance.now() - first;
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    const res = await fetch(`${url}${path}`, { headers: { cookie: as } });
    await res.arrayBuffer();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  const p = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))]!.toFixed(1);
  console.log(`${name.padEnd(12)} first ${firstMs.toFixed(0)} ms  p50 ${p(0.5)} ms  p95 ${p(0.95)} ms  (${(bytes / 1024).toFixed(0)} KB)`);
}

const shown = (await (await fetch(`${url}/api/chat/rooms/${room}/messages`, { headers: { cookie } })).json()) as unknown[];
console.log(`room messages shown after the restart: ${shown.length} of ${counts.messages}`);
await measure('inbox', '/api/mail?folder=inbox');
const page = (await (await fetch(`${url}/api/mail?folder=inbox&limit=100`, { headers: { cookie } })).json()) as Array<{ id: string }>;
await measure('inbox p. 3', `/api/mail?folder=inbox&limit=50&before=${page.at(-1)!.id}`);
await measure('sent (bob)', '/api/mail?folder=sent', 40, await logIn('bob'));
await measure('room', `/api/chat/rooms/${room}/messages`);
await measure('room last 200', `/api/chat/rooms/${room}/messages?limit=200`);
await measure('blog list', '/api/blog');
await measure('rooms', '/api/chat/rooms');
const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1];
console.log(`RSS of the node with its portal: ${rss ? (Number(rss) / 1024).toFixed(0) : '?'} MB`);
child.kill('SIGTERM');
await new Promise((resolve) => child.on('close', resolve));
if (!kept) rmSync(root, { recursive: true, force: true });
