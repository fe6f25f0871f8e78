/** The duty-cycle governor on a manual clock: exact waits, and no rolling window ever over budget. */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createDutyCycleGovernor, type Timer } from '../../radio/duty-cycle.ts';

const seed = Number(process.env.FC_SEED ?? Date.now() % 2 ** 31);
const HOUR = 3_600_000;

/** A manual clock with timers that fire only when the test advances it. */
function manualTime(start = 0) {
  let now = start;
  let pending: { at: number; callback: () => void; id: number }[] = [];
  let nextId = 0;
  const timer: Timer = {
    setTimeout(callback, ms) {
      const id = nextId++;
      pending.push({ at: now + ms, callback, id });
      return id;
    },
    clearTimeout(handle) {
      pending = pending.filter((p) => p.id !== handle);
    },
  };
  return {
    clock: { now: () => now },
    timer,
    pendingCount: () => pending.length,
    /** Move time forward, firing due timers in order and letting promises settle after each. */
    async advance(ms: number) {
      const until = now + ms;
      for (;;) {
        pending.sort((a, b) => a.at - b.at);
        const due = pending[0];
        if (!due || due.at > until) break;
        pending.shift();
        now = due.at;
        due.callback();
        await settle();
      }
      now = until;
      await settle();
    },
  };
}

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

describe('radio/duty-cycle', () => {
  before(() => console.log(`    fast-check seed ${seed} (replay: FC_SEED=${seed})`));

  it('uses half the legal budget by default', () => {
    const g = createDutyCycleGovernor({ dutyCycle: 0.01 }, { clock: { now: () => 0 } });
    assert.equal(g.budgetMs, 18_000);
    assert.equal(g.windowMs, HOUR);
    const full = createDutyCycleGovernor({ dutyCycle: 0.1, shareOfLegal: 1 }, { clock: { now: () => 0 } });
    assert.equal(full.budgetMs, 360_000);
  });

  it('computes exact waits in a hand-worked case', () => {
    // 1% band, half share: 18,000 ms per hour.
    const t = manualTime();
    const g = createDutyCycleGovernor({ dutyCycle: 0.01, windowMs: HOUR, shareOfLegal: 0.5 }, { clock: t.clock });
    g.record(10_000); // [0, 10,000)
    void t.advance(10_000);
    g.record(8_000); // [10,000, 18,000): budget now full
    void t.advance(10_000); // now = 20,000
    assert.equal(g.canSend(0), true);
    assert.equal(g.canSend(1), false);
    // The first frame stops counting when its end (10,000) leaves the window: 10,000 + 3,600,000 − 20,000.
    assert.equal(g.waitTimeMs(1), 3_590_000);
    assert.equal(g.waitTimeMs(10_000), 3_590_000);
    // More than 8,000 ms also needs the second frame gone: 18,000 + 3,600,000 − 20,000.
    assert.equal(g.waitTimeMs(10_001), 3_598_000);
    assert.equal(g.waitTimeMs(18_000), 3_598_000);
    assert.throws(() => g.waitTimeMs(18_001), { code: 'AIRTIME_EXCEEDS_BUDGET' });
    assert.throws(() => g.canSend(18_001), { code: 'AIRTIME_EXCEEDS_BUDGET' });
    assert.throws(() => g.record(1), { code: 'DUTY_CYCLE_EXCEEDED' });
    assert.deepEqual(g.used(), { airtimeMs: 18_000, fraction: 18_000 / HOUR });
  });

  it('counts used airtime over the rolling window only', async () => {
    const t = manualTime();
    const g = createDutyCycleGovernor({ dutyCycle: 0.1 }, { clock: t.clock });
    g.record(1_000);
    await t.advance(HOUR + 500); // half of the frame has left the window
    assert.equal(g.used().airtimeMs, 500);
    await t.advance(500);
    assert.equal(g.used().airtimeMs, 0);
  });

  it('does not limit bands without a duty cycle, but still reports use', () => {
    const t = manualTime();
    const g = createDutyCycleGovernor({ dutyCycle: 1 }, { clock: t.clock });
    assert.equal(g.budgetMs, Infinity);
    for (let i = 0; i < 100; i++) {
      g.record(HOUR / 100);
      void t.advance(HOUR / 100);
    }
    assert.equal(g.canSend(10 * HOUR), true);
    assert.equal(g.waitTimeMs(10 * HOUR), 0);
    assert.equal(g.used().fraction, 1);
  });

  it('refuses invalid options and airtimes', () => {
    const clock = { now: () => 0 };
    assert.throws(() => createDutyCycleGovernor({ dutyCycle: 0 }, { clock }), { code: 'DUTY_CYCLE_INVALID' });
    assert.throws(() => createDutyCycleGovernor({ dutyCycle: 1.5 }, { clock }), { code: 'DUTY_CYCLE_INVALID' });
    assert.throws(() => createDutyCycleGovernor({ dutyCycle: 0.1, shareOfLegal: 0 }, { clock }), { code: 'DUTY_CYCLE_INVALID' });
    assert.throws(() => createDutyCycleGovernor({ dutyCycle: 0.1, windowMs: -1 }, { clock }), { code: 'DUTY_CYCLE_INVALID' });
    const g = createDutyCycleGovernor({ dutyCycle: 0.1 }, { clock });
    assert.throws(() => g.canSend(-1), { code: 'AIRTIME_INVALID' });
    assert.throws(() => g.record(Number.NaN), { code: 'AIRTIME_INVALID' });
  });

  it('acquire waits on the injected timer, serves callers in order, and records', async () => {
    const t = manualTime();
    const g = createDutyCycleGovernor({ dutyCycle: 0.01 }, { clock: t.clock, timer: t.timer });
    await g.acquire(18_000);
    const order: string[] = [];
    const first = g.acquire(5_000).then(() => order.push(`first@${t.clock.now()}`));
    const second = g.acquire(5_000).then(() => order.push(`second@${t.clock.now()}`));
    await settle();
    assert.deepEqual(order, []);
    await t.advance(HOUR + 18_000);
    await Promise.all([first, second]);
    assert.deepEqual(order, [`first@${HOUR + 18_000}`, `second@${HOUR + 18_000}`]);
    await assert.rejects(g.acquire(18_001), { code: 'AIRTIME_EXCEEDS_BUDGET' });
  });

  it('acquire can be aborted while waiting', async () => {
    const t = manualTime();
    const g = createDutyCycleGovernor({ dutyCycle: 0.01 }, { clock: t.clock, timer: t.timer });
    g.record(18_000);
    const controller = new AbortController();
    const waiting = g.acquire(1, { signal: controller.signal });
    await settle();
    assert.equal(t.pendingCount(), 1);
    controller.abort();
    await assert.rejects(waiting, { code: 'ABORTED' });
    assert.equal(t.pendingCount(), 0);
    // The queue is not stuck behind the aborted caller.
    const next = g.acquire(1);
    await t.advance(HOUR + 18_000);
    await next;
  });

  it('keeps memory bounded', () => {
    const t = manualTime();
    const g = createDutyCycleGovernor({ dutyCycle: 1, maxEntries: 16 }, { clock: t.clock });
    for (let i = 0; i < 1000; i++) {
      g.record(1);
      void t.advance(1);
    }
    const limited = createDutyCycleGovernor({ dutyCycle: 0.1, maxEntries: 8 }, { clock: t.clock });
    for (let i = 0; i < 1000; i++) {
      if (limited.canSend(10)) limited.record(10);
      void t.advance(100);
    }
    assert.ok(limited.used().airtimeMs <= limited.budgetMs);
  });

  it('never lets any rolling window exceed the budget (property)', async () => {
    const attempt = fc.record({
      gapMs: fc.oneof(fc.integer({ min: 0, max: 2_000 }), fc.integer({ min: 0, max: 4_000_000 })),
      airtimeMs: fc.oneof(fc.integer({ min: 1, max: 3_000 }), fc.double({ min: 0.001, max: 18_000, noNaN: true })),
      wait: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(0.001, 0.01, 0.1),
        fc.constantFrom(0.5, 1),
        fc.constantFrom(HOUR, 60_000),
        fc.array(attempt, { maxLength: 200 }),
        async (dutyCycle, shareOfLegal, windowMs, attempts) => {
          const t = manualTime(1_000_000);
          const g = createDutyCycleGovernor({ dutyCycle, shareOfLegal, windowMs, maxEntries: 32 }, { clock: t.clock, timer: t.timer });
          const sent: { start: number; end: number }[] = [];
          for (const { gapMs, airtimeMs, wait } of attempts) {
            await t.advance(gapMs);
            if (airtimeMs > g.budgetMs) {
              assert.throws(() => g.canSend(airtimeMs), { code: 'AIRTIME_EXCEEDS_BUDGET' });
              continue;
            }
            if (wait) {
              const waitMs = g.waitTimeMs(airtimeMs);
              const done = g.acquire(airtimeMs);
              await t.advance(waitMs);
              await done;
            } else if (g.canSend(airtimeMs)) {
              g.record(airtimeMs);
            } else {
              assert.throws(() => g.record(airtimeMs), { code: 'DUTY_CYCLE_EXCEEDED' });
              continue;
            }
            sent.push({ start: t.clock.now(), end: t.clock.now() + airtimeMs });
          }
          // The on-time in a window is largest when a window edge meets a frame edge.
          const starts = [...sent.map((s) => s.start), ...sent.map((s) => s.end - windowMs)];
          for (const from of starts) {
            const to = from + windowMs;
            let on = 0;
            for (const s of sent) on += Math.max(0, Math.min(s.end, to) - Math.max(s.start, from));
            assert.ok(on <= g.budgetMs + 1e-6, `window at ${from}: ${on} ms > ${g.budgetMs} ms`);
          }
        },
      ),
      { seed, numRuns: 200 },
    );
  });
});
