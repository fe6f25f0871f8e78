/**
 * A real full disk, and a read-only one, under a real `citizen start`: its data directory on a
 * small tmpfs of the test's own (the test runs as root, as CI does, and fails if it cannot
 * mount). Filled with fallocate until writes fail, the node must answer every write with
 * success or 507 {"error":"disk_full"} (never a 500, never a hang), keep running, say so in its
 * log once rather than once a write, not spin, and take writes again — without a restart — as
 * soon as space is freed, with nothing it acknowledged lost, then or after a restart.
 *
 * A tmpfs cannot be remounted read-only under a running node (the kernel refuses while LevelDB
 * holds its log open for writing: EBUSY), so the read-only case starts on a read-only mount.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../mesh/clock.ts';
import { Identity } from '../../mesh/identity.ts';
import { diskError } from '../../mesh/level-database.ts';
import { MemoryDatabase } from '../../mesh/memory-database.ts';
import { MeshNode } from '../../mesh/node.ts';
import { createRecord, RecordKind } from '../../mesh/record.ts';
import { RecordStore } from '../../mesh/record-store.ts';
import { Mailbox } from '../../apps/mail/mailbox.ts';
import { CHUNK_BYTES, Files, reserveFor } from '../../apps/files/files.ts';
import { createDiskWatch } from '../../apps/daemon/disk-watch.ts';
import { freePort } from '../helpers/net.ts';
import { seededRandom } from '../helpers/random.ts';
import { BIN, citizen, login, startNode, stopNode, type Run, type RunningNode } from '../helpers/citizen.ts';

const KIB = 1024;
const FULL = /household's disk is full/;

type Call = (path: string, init?: RequestInit) => Promise<Response>;

/** Mount a tmpfs of `size` on a fresh directory; throws with the reason (not root, no tmpfs) if it cannot. */
function mountTmpfs(size: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'citizen-full-disk-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    const stderr = String((err as { stderr?: Buffer }).stderr ?? '').trim();
    throw new Error(`this test mounts a tmpfs and must run as root (CI does): mount failed: ${stderr || (err as Error).message}`);
  }
  return dir;
}

function unmount(dir: string): void {
  try {
    execFileSync('umount', [dir], { stdio: 'pipe' });
  } catch {
    execFileSync('umount', ['-l', dir], { stdio: 'pipe' }); // something still open in it: detach now, free later
  }
  rmSync(dir, { recursive: true, force: true });
}

/** Fill the file system under `dir` with one file until `leave` bytes remain; returns its path. */
function fill(dir: string, leave: number): string {
  const filler = join(dir, 'filler');
  const { bavail, bsize } = statfsSync(dir);
  const size = bavail * bsize - leave;
  if (size > 0) execFileSync('fallocate', ['-l', String(size), filler], { stdio: 'pipe' });
  return filler;
}

/** CPU seconds (user + system) the process has used so far. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const ticks = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
  return (Number(fields[11]) + Number(fields[12])) / ticks;
}

const json = (method: string, body: unknown): RequestInit => ({ method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const upload = (name: string, bytes: Uint8Array): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/octet-stream', 'x-file-name': name },
  body: bytes,
});

/**
 * The answer to a write on a full (or read-only) disk: a success, or exactly 507 with the
 * error shape — a machine code and a sentence saying what is wrong with the disk.
 */
async function succeededOrRefused(response: Response, what: string, success: number, problem: 'full' | 'read-only' = 'full'): Promise<boolean> {
  const text = await response.text();
  if (response.status === success) return true;
  assert.equal(response.status, 507, `${what}: ${success} or 507 expected, got ${response.status} ${text}`);
  assert.match(response.headers.get('content-type') ?? '', /^application\/json/, what);
  const body = JSON.parse(text) as Record<string, unknown>;
  assert.deepEqual(Object.keys(body).sort(), ['error', 'message'], `${what}: ${text}`);
  assert.equal(body.error, problem === 'full' ? 'disk_full' : 'disk_read_only', what);
  assert.match(String(body.message), problem === 'full' ? FULL : /household's disk is read-only/, what);
  return false;
}

/** A `citizen` command that should end by itself: killed (and failed) if it runs past 20 s, e.g. a start that did not refuse. */
function citizenEnds(args: string[], input = ''): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, CITIZEN_DATA: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`citizen ${args.join(' ')} still ran after 20 s:\n${stdout}${stderr}`));
    }, 20_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

/** One clear line on stderr and a non-zero exit: no stack trace. */
function assertOneClearLine(run: Run, pattern: RegExp, what: string): void {
  assert.notEqual(run.code, 0, `${what} exits non-zero: ${run.stdout}${run.stderr}`);
  const lines = run.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `${what}: one line, got:\n${run.stderr}`);
  assert.match(lines[0]!, pattern, what);
  assert.doesNotMatch(run.stderr, /^\s+at /m, `${what}: no stack trace`);
}

describe('a full disk and a read-only disk under a running node (real tmpfs)', function () {
  this.timeout(120_000);
  let mnt: string;
  let data: string;
  let node: RunningNode | undefined;
  let base: string;
  let call: Call;
  let room: string;
  const fileBytes = randomBytes(3000);
  let fileId: string;
  /** What the node acknowledged (201): it must all be there at the end. */
  const chatSaid: string[] = [];
  const chatRefused: string[] = [];
  const mailSubjects: string[] = [];
  let blogTitle = '';

  async function start(): Promise<void> {
    const port = await freePort();
    node = await startNode(['--data', data, '--portal', `127.0.0.1:${port}`]);
    base = `http://127.0.0.1:${port}`;
    call = await login(base, 'alice', 'alice password');
  }

  async function stop(): Promise<void> {
    if (node) assert.equal(await stopNode(node), 0, node.output());
    node = undefined;
  }

  /** Post a chat message `label`, padded to `pad` characters; true if it was stored. */
  async function say(label: string, pad = 0): Promise<boolean> {
    const text = `${label} |${'x'.repeat(pad)}`;
    const ok = await succeededOrRefused(await call(`/api/chat/rooms/${room}/messages`, json('POST', { text })), `chat "${label}"`, 201);
    (ok ? chatSaid : chatRefused).push(label);
    return ok;
  }

  /** Everything acknowledged is there: chat, mail, the file's bytes, the blog post. */
  async function assertNothingLost(): Promise<void> {
    const messages = (await (await call(`/api/chat/rooms/${room}/messages`)).json()) as Array<{ text: string }>;
    assert.deepEqual(messages.map((m) => m.text.split(' |')[0]), chatSaid, 'chat history: every acknowledged message, no refused one');
    const inbox = (await (await call('/api/mail?folder=inbox')).json()) as Array<{ subject: string; body: string }>;
    assert.deepEqual(inbox.map((m) => m.subject).sort(), [...mailSubjects].sort(), 'inbox');
    for (const m of inbox) assert.equal(m.body, `body of ${m.subject}`);
    const file = await call(`/api/files/${fileId}`);
    assert.equal(file.status, 200);
    assert.deepEqual(Buffer.from(await file.arrayBuffer()), fileBytes, "the file's bytes");
    const blog = (await (await call('/api/blog')).json()) as Array<{ title: string }>;
    assert.deepEqual(blog.map((p) => p.title), [blogTitle], 'blog');
  }

  before(async () => {
    mnt = mountTmpfs('8m');
    data = join(mnt, 'data');
    assert.equal((await citizen(['init', '--data', data, '--name', 'rose'])).code, 0);
    assert.equal((await citizen(['user', 'add', 'alice', '--admin', '--password-stdin', '--data', data], 'alice password\n')).code, 0);
    await start();
  });

  after(async () => {
    try {
      if (node) await stopNode(node);
    } finally {
      if (mnt) unmount(mnt);
    }
  });

  it('writes with room to spare: mail, chat, a file, a blog post', async () => {
    room = ((await (await call('/api/chat/rooms', json('POST', { name: 'street' }))).json()) as { id: string }).id;
    assert.equal(await say('before the disk filled'), true);
    assert.equal((await call('/api/mail', json('POST', { to: ['alice@rose'], subject: 'before', body: 'body of before' }))).status, 201);
    mailSubjects.push('before');
    const up = await call('/api/files', upload('before.bin', fileBytes));
    assert.equal(up.status, 201);
    fileId = ((await up.json()) as { id: string }).id;
    blogTitle = 'written with room to spare';
    assert.equal((await call('/api/blog', json('POST', { title: blogTitle, body: 'hello' }))).status, 201);
  });

  it('on a full disk: every write succeeds or answers 507 disk_full, the node runs on, logs it once and does not spin', async function () {
    fill(mnt, 8 * KIB);
    // Chat until the disk refuses (a few KB still fit).
    let refused = false;
    for (let i = 0; i < 50 && !refused; i++) refused = !(await say(`while full ${i}`, 1000));
    assert.ok(refused, 'the disk filled up');
    // The very next message in the same room: refused the same way (not "seq already used").
    assert.equal(await say('right after a refused one'), false);
    const mail = await call('/api/mail', json('POST', { to: ['alice@rose'], subject: 'while full', body: 'body of while full' }));
    if (await succeededOrRefused(mail, 'mail', 201)) mailSubjects.push('while full');
    assert.equal(await succeededOrRefused(await call('/api/files', upload('full.bin', randomBytes(20 * KIB))), 'file upload', 201), false);
    const blog = await call('/api/blog', json('POST', { title: 'while full', body: 'x' }));
    assert.equal(await succeededOrRefused(blog, 'blog post', 201), false);
    assert.equal(await succeededOrRefused(await call('/api/chat/rooms', json('POST', { name: 'new room' })), 'new room', 201), false);
    const rooms = (await (await call('/api/chat/rooms')).json()) as Array<{ name: string }>;
    assert.deepEqual(rooms.map((r) => r.name), ['street'], 'a refused room is not listed');
    assert.deepEqual(((await (await call('/api/blog')).json()) as Array<{ title: string }>).map((p) => p.title), [blogTitle], 'a refused post is not listed');
    const password = await call('/api/me/password', json('POST', { current: 'alice password', password: 'a new password' }));
    assert.equal(await succeededOrRefused(password, 'password change', 204), false, 'a password change on a full disk');
    const account = await call('/api/accounts', json('POST', { user: 'bob', password: 'bob password' }));
    assert.equal(await succeededOrRefused(account, 'new account', 201), false, 'a new account on a full disk');
    // Still running, still answering, still logged in.
    assert.equal(node!.child.exitCode, null);
    assert.equal((await call('/api/me')).status, 200);
    const status = await citizen(['status', '--data', data]);
    assert.equal(status.code, 0, status.stderr);
    assert.equal((JSON.parse(status.stdout) as { disk?: string }).disk, 'full');
    // Once in the log, not once a refused write; and no busy loop while it stays full.
    assert.equal(node!.output().match(/is full: /g)?.length, 1, node!.output());
    const cpuBefore = cpuSeconds(node!.child.pid!);
    await new Promise((resolve) => setTimeout(resolve, 2000)); // real time: the node is a real process
    const cpu = cpuSeconds(node!.child.pid!) - cpuBefore;
    assert.ok(cpu < 0.5, `the node used ${cpu.toFixed(2)} s of CPU in 2 s while the disk was full`);
  });

  it('takes writes again as soon as space is freed, without a restart, and has lost nothing', async () => {
    rmSync(join(mnt, 'filler'));
    assert.equal(await say('after the space was freed'), true);
    assert.equal((await call('/api/mail', json('POST', { to: ['alice@rose'], subject: 'after', body: 'body of after' }))).status, 201);
    mailSubjects.push('after');
    assert.match(node!.output(), /takes writes again/);
    await assertNothingLost();
  });

  it('stopped while full and started after freeing space, it has everything it acknowledged', async () => {
    const filler = fill(mnt, 8 * KIB);
    for (let i = 0; i < 50; i++) if (!(await say(`before the stop ${i}`, 1000))) break;
    assert.ok(chatRefused.length >= 3);
    await stop();
    // On the still full disk: one clear line each, no stack trace.
    assertOneClearLine(await citizenEnds(['start', '--data', data, '--portal', '127.0.0.1:0']), /disk is full/, 'start on a full disk');
    assertOneClearLine(await citizenEnds(['init', '--data', join(mnt, 'other'), '--name', 'iris']), /disk is full/, 'init on a full disk');
    assertOneClearLine(await citizenEnds(['user', 'add', 'carol', '--password-stdin', '--data', data], 'carol password\n'), /disk is full/, 'user add on a full disk');
    // One page left: the household key fits, its config does not. No half household may stay
    // behind, or every later init would refuse ("already holds a household").
    rmSync(filler);
    const onePageLeft = fill(mnt, 4 * KIB);
    assertOneClearLine(await citizenEnds(['init', '--data', join(mnt, 'other'), '--name', 'iris']), /disk is full/, 'init with one page left');
    rmSync(onePageLeft);
    const init = await citizenEnds(['init', '--data', join(mnt, 'other'), '--name', 'iris']);
    assert.equal(init.code, 0, `init once there is room: ${init.stderr}`);
    await start();
    await assertNothingLost();
  });

  it('on a read-only disk: start, init and user add give one clear line; writable again, nothing is lost', async () => {
    await stop();
    execFileSync('mount', ['-o', 'remount,ro', mnt], { stdio: 'pipe' });
    try {
      assertOneClearLine(await citizenEnds(['start', '--data', data, '--portal', '127.0.0.1:0']), /read-only/, 'start on a read-only disk');
      assertOneClearLine(await citizenEnds(['init', '--data', join(mnt, 'third'), '--name', 'iris']), /read-only/, 'init on a read-only disk');
      assertOneClearLine(await citizenEnds(['user', 'add', 'carol', '--password-stdin', '--data', data], 'carol password\n'), /read-only/, 'user add on a read-only disk');
    } finally {
      execFileSync('mount', ['-o', 'remount,rw', mnt], { stdio: 'pipe' });
    }
    await start();
    await assertNothingLost();
    assert.equal(await say('after the disk was writable again'), true);
  });
});

describe('a write the disk refused, in process', () => {
  const clock = new ManualClock(Date.UTC(2026, 10, 2, 9));

  /** Household rose on an in-memory store, with its member alice. */
  async function roseWithAlice(seed: number): Promise<{ store: RecordStore; node: MeshNode; alice: Identity }> {
    const random = seededRandom(seed);
    const store = await RecordStore.open(new MemoryDatabase());
    const node = new MeshNode({ householdName: 'rose' }, { household: Identity.generate(random), store, clock, random });
    await node.start();
    const alice = Identity.generate(random);
    await node.certifyMember('alice', alice);
    return { store, node, alice };
  }

  it('record store: a batch reported failed that reached the disk anyway (a failed fsync) leaves the totals right', async () => {
    const db = new MemoryDatabase();
    const write = db.write.bind(db);
    let landsThenFails = false;
    db.write = async (changes, options) => {
      await write(changes, options);
      if (landsThenFails) throw Object.assign(new Error('fsync: No space left on device'), { code: 'ENOSPC' });
    };
    const store = await RecordStore.open(db);
    const author = Identity.generate(seededRandom(7));
    const record = (seq: number) => createRecord({ kind: RecordKind.DocumentUpdate, feed: new Uint8Array(8), seq, time: 1_800_000_000, payload: Uint8Array.of(seq) }, author);
    landsThenFails = true;
    await assert.rejects(store.put([record(0)]), /No space left/);
    landsThenFails = false;
    await store.put([record(1)]);
    const held = [];
    for await (const r of store.records()) held.push(r);
    assert.equal(held.length, 2);
    assert.equal((await store.stats()).records, 2, 'the totals count the batch that landed');
    await store.close();
    await db.open();
    const reopened = await RecordStore.open(db);
    assert.equal((await reopened.stats()).records, 2, 'and so do the totals on disk');
  });

  it('mail: a mail stored whose index the disk refused is listed, with its body, in the same run', async () => {
    const { store, node, alice } = await roseWithAlice(3);
    const mailbox = new Mailbox({ node, memberIdentity: async () => alice });
    assert.deepEqual(await mailbox.list('alice', 'inbox'), []);
    // The record goes in (store.put); the index after it does not (store.putLocal): the disk filled in between.
    store.putLocal = async () => {
      throw diskError('full');
    };
    await mailbox.send('alice', { to: ['alice@rose'], subject: 'last page', body: 'took the last page' });
    const inbox = await mailbox.list('alice', 'inbox');
    assert.deepEqual(inbox.map((m) => [m.subject, m.body]), [['last page', 'took the last page']]);
  });

  it('files: the parts of an upload the disk refused halfway are removed once the disk takes writes again', async () => {
    const { store, node, alice } = await roseWithAlice(4);
    const files = new Files({ node, memberIdentity: async () => alice });
    const putLocal = store.putLocal.bind(store);
    const deleteLocal = store.deleteLocal.bind(store);
    let full = false;
    const refuse = async () => {
      throw diskError('full');
    };
    let staged = 0;
    store.putLocal = async (key, value, options) => {
      if (key.startsWith('file-upload/') && ++staged === 3) full = true; // the third part finds the disk full
      return full ? refuse() : putLocal(key, value, options);
    };
    store.deleteLocal = async (key) => (full ? refuse() : deleteLocal(key));
    async function* parts(n: number): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < n; i++) yield new Uint8Array(CHUNK_BYTES).fill(i);
    }
    await assert.rejects(files.upload('alice', { name: 'big.bin', shareWith: null, body: parts(5) }), /disk is full/);
    assert.equal((await store.listLocal('file-upload/')).length, 2, 'two parts were staged before the disk filled');
    full = false;
    await files.upload('alice', { name: 'small.bin', shareWith: null, body: parts(1) });
    assert.deepEqual((await store.listLocal('file-upload/')).map(([key]) => key), [], 'no part of the refused upload is left');
  });

  it('files: an upload stops before the disk is down to the room kept for mail and chat', async () => {
    const { store, node, alice } = await roseWithAlice(5);
    const size = 8 * 1024 * 1024;
    let free = reserveFor(size) + 10 * CHUNK_BYTES; // room for three parts or so, then the reserve
    const files = new Files({ node, memberIdentity: async () => alice, disk: () => ({ free, size }) });
    const putLocal = store.putLocal.bind(store);
    store.putLocal = async (key, value, options) => {
      free -= value.length;
      return putLocal(key, value, options);
    };
    async function* parts(n: number): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < n; i++) yield new Uint8Array(CHUNK_BYTES).fill(i);
    }
    await assert.rejects(files.upload('alice', { name: 'big.bin', shareWith: null, body: parts(20) }), (err: Error & { code?: string; status?: number }) => {
      assert.equal(err.code, 'disk_full');
      assert.equal(err.status, 507);
      assert.match(err.message, /household's disk is full \(the last 256 KiB are kept for mail and chat\)/);
      return true;
    });
    assert.deepEqual((await store.listLocal('file-upload/')).map(([key]) => key), []);
    assert.deepEqual(await files.list('alice'), []);
    // A mail still fits.
    const mailbox = new Mailbox({ node, memberIdentity: async () => alice });
    await mailbox.send('alice', { to: ['alice@rose'], subject: 'still fits', body: 'yes' });
  });

  it('the log: one line when writes are refused, a reminder at most every 10 minutes, one when they work again', () => {
    const lines: string[] = [];
    let now = 0;
    const watch = createDiskWatch((line) => lines.push(line), '/data', { now: () => now });
    for (let i = 0; i < 1000; i++) {
      watch.problem('full');
      now += 1000; // a refused write a second for 1000 s
    }
    assert.equal(watch.state(), 'full');
    assert.equal(lines.length, 2, lines.join('\n'));
    assert.match(lines[0]!, /disk under \/data is full/);
    assert.match(lines[1]!, /is still full \(for 10 min; 601 writes refused so far\)/);
    watch.recovered();
    watch.recovered();
    assert.equal(lines.length, 3);
    assert.match(lines[2]!, /takes writes again \(1000 writes were refused while it was full\)/);
    assert.equal(watch.state(), 'ok');
    watch.problem('read-only');
    assert.match(lines[3]!, /is read-only/);
  });
});
