/** What the node logs when its neighbours' clocks disagree with its own (apps/daemon/clock-watch.ts). */
import assert from 'node:assert/strict';
import { clockWarning, createClockWatch, spanInWords, type ClockDisagreement } from '../../apps/daemon/clock-watch.ts';

describe('apps/daemon clock watch', () => {
  it('says spans in words a person reads at a glance', () => {
    assert.deepEqual([45, 59.6, 60, 720, 3600, 21_900, 86_400, 90_000, -7200].map(spanInWords), ['45 s', '1 min', '1 min', '12 min', '1 h', '6 h 5 min', '1 d', '1 d 1 h', '2 h']);
  });

  it('names how many, how far, which way, the time the neighbours read, and what to do', () => {
    const now = Date.UTC(2026, 10, 27, 8, 0);
    const ahead = clockWarning({ households: 3, offsetS: 6 * 3600 + 300 }, 900, now);
    assert.match(ahead, /^Clock: 3 neighbouring households' clocks are about 6 h 5 min ahead of this node's \(the mesh allows 15 min\)/);
    assert.match(ahead, /theirs reads 2026-11-27 14:05 UTC: sudo date -u -s '2026-11-27 14:05'/);
    const behind = clockWarning({ households: 1, offsetS: -1800 }, 900, now);
    assert.match(behind, /^Clock: 1 neighbouring household's clock is about 30 min behind this node's/);
    assert.doesNotMatch(behind, /\n/);
  });

  it('logs once when it starts, reminds at most hourly, and says when the clocks agree again', () => {
    let t = 0;
    let seen: ClockDisagreement | null = null;
    const lines: string[] = [];
    const watch = createClockWatch(() => seen, (l) => lines.push(l), { allowedS: 900, now: () => t });
    watch.check();
    assert.deepEqual(lines, []);
    seen = { households: 2, offsetS: 7200 };
    for (let minute = 0; minute < 60; minute++, t += 60_000) watch.check();
    assert.equal(lines.length, 1, 'one line in the first hour, not one a minute');
    watch.check();
    assert.equal(lines.length, 2, 'a reminder after an hour');
    seen = null;
    watch.check();
    watch.check();
    assert.equal(lines.length, 3);
    assert.match(lines[2]!, /agree again/);
  });
});
