/**
 * The `Link` contract suite (radio/link.ts): every link implementation runs these same tests
 * through `describeLinkContract` — frames arrive intact and once at every other link, never
 * at the sender; the MTU is enforced; a down link rejects sends; stats count; up/down events;
 * stopping releases what the link holds.
 *
 * Waiting is bounded everywhere. Checking that a frame arrives *once* needs a short real
 * pause after the expected arrivals (`settle`, 40 ms): loopback UDP and the memory medium
 * deliver in well under a millisecond, so a duplicate would show up within it.
 */
import assert from 'node:assert/strict';
import type { Clock, FrameMeta, Link } from '../../radio/link.ts';

/** How a contract run gets links of one kind. */
export interface LinkHarness {
  /** Three fresh links, all down, each hearing the other two; `clock` stamps received frames. */
  create(clock: Clock): Promise<Link[]>;
  /**
   * Stops `link` (which is up) and proves what it held was released (e.g. its UDP port can be
   * bound again).
   */
  stopAndCheckReleased(link: Link): Promise<void>;
}

/** Received frames of one link, as they arrive. */
export interface Inbox {
  frames: { frame: Uint8Array; meta: FrameMeta }[];
  /** Resolves once `n` frames have arrived; rejects after `timeoutMs`. */
  waitFor(n: number, timeoutMs?: number): Promise<void>;
}

/** Collects a link's 'frame' events. */
export function collect(link: Link): Inbox {
  const frames: Inbox['frames'] = [];
  const waiters: (() => void)[] = [];
  link.on('frame', (frame, meta) => {
    frames.push({ frame, meta });
    for (const w of waiters.splice(0)) w();
  });
  return {
    frames,
    waitFor(n, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${link.spec}: ${frames.length} of ${n} frames after ${timeoutMs} ms`)), timeoutMs);
        const check = () => {
          if (frames.length >= n) {
            clearTimeout(timer);
            resolve();
          } else waiters.push(check);
        };
        check();
      });
    },
  };
}

/** Bounded pause so that late duplicates would show up (see header). */
export function settle(ms = 40): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `condition` every few ms, failing after `timeoutMs`. The default is generous: what it
 * waits for takes milliseconds, and only a loaded machine (CI) needs the margin.
 */
export async function waitUntil(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

const bytes = (...values: number[]) => Uint8Array.from(values);
const filled = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

/** Runs the link contract against links made by `harness`. */
export function describeLinkContract(name: string, harness: LinkHarness): void {
  describe(`Link contract: ${name}`, () => {
    const clock: Clock = { now: () => 1_790_000_000_000 };
    let links: Link[] = [];

    beforeEach(async () => {
      links = await harness.create(clock);
      assert.equal(links.length, 3, 'the harness gives three links');
    });

    afterEach(async () => {
      await Promise.all(links.map((l) => l.stop()));
    });

    const startAll = () => Promise.all(links.map((l) => l.start()));

    it('describes itself: spec, MTU, bit rate, mode; starts down', () => {
      for (const link of links) {
        assert.equal(typeof link.spec, 'string');
        assert.ok(link.spec.length > 0);
        assert.ok(Number.isInteger(link.mtu) && link.mtu > 0);
        assert.ok(link.bitRate > 0);
        assert.ok(link.mode === 'broadcast' || link.mode === 'point-to-point');
        assert.equal(link.up, false);
      }
    });

    it("emits 'up' and 'down' once each; start and stop are idempotent", async () => {
      const [a] = links as [Link];
      const events: string[] = [];
      a.on('up', () => events.push('up'));
      a.on('down', () => events.push('down'));
      await a.start();
      await a.start();
      assert.equal(a.up, true);
      await a.stop();
      await a.stop();
      assert.equal(a.up, false);
      assert.deepEqual(events, ['up', 'down']);
    });

    it('can be started again after a stop', async () => {
      const [a, b] = links as [Link, Link];
      await startAll();
      await a.stop();
      await a.start();
      const inbox = collect(b);
      await a.send(bytes(9));
      await inbox.waitFor(1);
      assert.deepEqual(inbox.frames[0]!.frame, bytes(9));
    });

    it('a broadcast reaches both other links, intact and once, not the sender', async () => {
      const [a, b, c] = links as [Link, Link, Link];
      await startAll();
      const [inA, inB, inC] = [collect(a), collect(b), collect(c)];
      const frame = filled(100, 7);
      await a.send(frame);
      await Promise.all([inB.waitFor(1), inC.waitFor(1)]);
      await settle();
      assert.equal(inA.frames.length, 0, 'the sender does not hear itself');
      for (const inbox of [inB, inC]) {
        assert.equal(inbox.frames.length, 1);
        assert.deepEqual(inbox.frames[0]!.frame, frame);
        assert.ok(inbox.frames[0]!.frame instanceof Uint8Array);
        assert.equal(inbox.frames[0]!.meta.receivedAt, clock.now());
        assert.equal(typeof inbox.frames[0]!.meta.from, 'string');
      }
      assert.equal(inB.frames[0]!.meta.from, inC.frames[0]!.meta.from, 'both name the same sender');
    });

    it('carries an empty frame and a frame of exactly the MTU', async () => {
      const [a, b] = links as [Link, Link];
      await startAll();
      const inbox = collect(b);
      await a.send(new Uint8Array(0));
      await inbox.waitFor(1);
      await a.send(filled(a.mtu, 3));
      await inbox.waitFor(2);
      assert.equal(inbox.frames[0]!.frame.length, 0);
      assert.deepEqual(inbox.frames[1]!.frame, filled(a.mtu, 3));
    });

    it('rejects a frame over the MTU with FRAME_TOO_LARGE and sends nothing', async () => {
      const [a, b] = links as [Link, Link];
      await startAll();
      const inbox = collect(b);
      await assert.rejects(a.send(new Uint8Array(a.mtu + 1)), { name: 'RadioError', code: 'FRAME_TOO_LARGE' });
      await assert.rejects(a.send('hello' as unknown as Uint8Array), { code: 'FRAME_INVALID' });
      await settle();
      assert.equal(inbox.frames.length, 0);
      assert.equal(a.stats().framesOut, 0);
    });

    it('rejects sends with LINK_DOWN before start and after stop', async () => {
      const [a] = links as [Link];
      await assert.rejects(a.send(bytes(1)), { name: 'RadioError', code: 'LINK_DOWN' });
      await a.start();
      await a.stop();
      await assert.rejects(a.send(bytes(1)), { code: 'LINK_DOWN' });
      assert.equal(a.stats().framesOut, 0);
    });

    it('a stopped link hears nothing; the others still do', async () => {
      const [a, b, c] = links as [Link, Link, Link];
      await startAll();
      const [inB, inC] = [collect(b), collect(c)];
      await b.stop();
      await a.send(bytes(1, 2, 3));
      await inC.waitFor(1);
      await settle();
      assert.equal(inB.frames.length, 0);
      assert.equal(b.stats().framesIn, 0);
    });

    it('counts frames and bytes both ways', async () => {
      const [a, b, c] = links as [Link, Link, Link];
      await startAll();
      const [inB, inC] = [collect(b), collect(c)];
      await a.send(filled(10, 1));
      await a.send(filled(20, 2));
      await Promise.all([inB.waitFor(2), inC.waitFor(2)]);
      const sa = a.stats();
      assert.equal(sa.framesOut, 2);
      assert.equal(sa.bytesOut, 30);
      assert.equal(sa.framesIn, 0);
      for (const s of [b.stats(), c.stats()]) {
        assert.equal(s.framesIn, 2);
        assert.equal(s.bytesIn, 30);
        assert.equal(s.framesOut, 0);
        assert.equal(s.dropped, 0);
      }
      for (const key of ['framesOut', 'framesIn', 'bytesOut', 'bytesIn', 'airtimeMs', 'dropped'] as const) {
        assert.equal(typeof sa[key], 'number', key);
      }
    });

    it('copies the frame: the sender may reuse its buffer at once', async () => {
      const [a, b] = links as [Link, Link];
      await startAll();
      const inbox = collect(b);
      const buffer = bytes(1, 2, 3, 4);
      const sending = a.send(buffer);
      buffer.fill(0);
      await sending;
      await inbox.waitFor(1);
      assert.deepEqual(inbox.frames[0]!.frame, bytes(1, 2, 3, 4));
    });

    it('delivers a run of frames from several senders, each once', async () => {
      const [a, b, c] = links as [Link, Link, Link];
      await startAll();
      const inC = collect(c);
      for (let i = 0; i < 20; i++) {
        await (i % 2 ? a : b).send(bytes(i));
      }
      await inC.waitFor(20);
      await settle();
      assert.equal(inC.frames.length, 20);
      assert.deepEqual(new Set(inC.frames.map((f) => f.frame[0])), new Set(Array.from({ length: 20 }, (_, i) => i)));
    });

    it('unsubscribing a listener stops its frames', async () => {
      const [a, b] = links as [Link, Link];
      await startAll();
      const inbox = collect(b);
      let calls = 0;
      const off = b.on('frame', () => calls++);
      await a.send(bytes(1));
      await inbox.waitFor(1);
      off();
      await a.send(bytes(2));
      await inbox.waitFor(2);
      assert.equal(calls, 1);
    });

    it('stop releases what the link held', async () => {
      const [a] = links as [Link];
      await a.start();
      await harness.stopAndCheckReleased(a);
      assert.equal(a.up, false);
    });
  });
}
