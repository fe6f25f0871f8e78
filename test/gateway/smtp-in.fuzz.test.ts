/**
 * What the SMTP gateway reads from internet mail, against hostile text (fast-check; the seed
 * is printed and FC_SEED=<seed> replays it).
 *
 *  - textOfHtml gives exactly what its earlier regex chain gave (kept here as the reference)
 *    for random HTML made of tags, unclosed tags, comments, entities, non-ASCII letters and
 *    whitespace; and it stays linear on hostile HTML: a 256 KiB part of unclosed `<script>`,
 *    `<!--`, `<` or `<p` takes milliseconds (the regex chain took about a minute each, all of
 *    it on the gateway's event loop, and a 1 MiB mail about fifteen).
 *  - meshAddressOf gives null or `member@household` of the mesh's name rules.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { meshAddressOf, textOfHtml } from '../../gateway/smtp-in.ts';

const seed = Number(process.env.FC_SEED ?? 20261127);

const ENTITIES: { [name: string]: string } = { nbsp: ' ', lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' };
function entity(whole: string, name: string): string {
  const code = /^#x([0-9a-f]{1,6})$/i.exec(name)?.[1] ?? /^#([0-9]{1,7})$/.exec(name)?.[1];
  if (code === undefined) return ENTITIES[name.toLowerCase()] ?? whole;
  const n = name[1] === 'x' || name[1] === 'X' ? parseInt(code, 16) : Number(code);
  return n > 0 && n <= 0x10ffff && (n < 0xd800 || n > 0xdfff) ? String.fromCodePoint(n) : whole;
}

/** textOfHtml as it was (quadratic on unclosed tags): the reference for what it must give. */
function referenceTextOfHtml(html: string): string {
  return html
    .replace(/<(script|style|head|title)\b[^>]*>[\s\S]*?<\/\1\s*>/gi, ' ')
    .replace(/<!--[\s\S]*?-->/g, ' ')
    .replace(/<br\s*\/?>/gi, '\n')
    .replace(/<\/(p|div|h[1-6]|li|tr|table|blockquote|pre)\s*>/gi, '\n\n')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, entity)
    .replace(/[ \t\u00a0]+/g, ' ')
    .replace(/ *\n */g, '\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

const piece = fc.oneof(
  fc.constantFrom(
    '<script>', '</script>', '<SCRIPT type="x">', '</script >', '<scripts>', '<script', '</Script\n>', '<style>', '</style>', '<head>', '</HEAD>',
    '<title>', '</title>', '<script-x>', '<!--', '-->', '<!-->', '--', '<br>', '<BR/>', '<br />', '</p>', '</h3 >', '</li>', '<p>', '<b>', '</b>',
    '<', '>', '<a href="x>y">', '&amp;', '&#233;', '&#x2713;', '&#0;', '&bogus;', '&', ';', ' ', '\t', '\n', '\u00a0', 'İ', 'K', 'ſcript', 'text',
  ),
  fc.string({ maxLength: 4 }),
);
const html = fc.array(piece, { maxLength: 40 }).map((p) => p.join(''));

describe('gateway/smtp-in (fuzz)', () => {
  before(() => console.log(`    fast-check seed ${seed} (replay: FC_SEED=${seed})`));

  it('textOfHtml gives what the regex chain gave, for random HTML', () => {
    fc.assert(fc.property(html, (h) => assert.equal(textOfHtml(h), referenceTextOfHtml(h))), { seed, numRuns: 5000 });
  });

  it('textOfHtml is linear on unclosed tags and comments (256 KiB each in well under a second)', function () {
    // Real time, bounded: the point is that it no longer takes a minute.
    const size = 256 * 1024;
    for (const unit of ['<', '<p', '<script>', '<!--', '<style x', '<title><!--<', '<a <b <c', '&#x']) {
      const hostile = unit.repeat(Math.ceil(size / unit.length));
      const started = performance.now();
      const text = textOfHtml(hostile);
      const ms = performance.now() - started;
      assert.ok(ms < 500, `${JSON.stringify(unit)} × ${hostile.length / unit.length}: ${ms.toFixed(0)} ms`);
      assert.equal(typeof text, 'string');
    }
    // A closed part after many unclosed openings still loses its script.
    assert.equal(textOfHtml(`${'<style>'.repeat(10_000)}<script>alert(1)</script>hello`), 'hello');
  });

  it('meshAddressOf gives null or member@household', () => {
    const address = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.tuple(fc.string({ maxLength: 34 }), fc.constantFrom('@', '@@', ''), fc.string({ maxLength: 34 }), fc.constantFrom('.mesh.test', '.MESH.TEST', '.mesh.test.', 'mesh.test', '')).map((p) => p.join('')),
      fc.tuple(fc.stringMatching(/^[a-z0-9-]{0,34}$/), fc.stringMatching(/^[a-zA-Z0-9-]{0,34}$/)).map(([m, h]) => ` ${m}@${h}.mesh.test `),
    );
    let found = 0;
    fc.assert(
      fc.property(address, (a) => {
        const mesh = meshAddressOf(a, 'mesh.test');
        if (mesh === null) return;
        found++;
        assert.match(mesh, /^[a-z0-9-]{1,32}@[a-z0-9-]{1,32}$/);
        assert.equal(`${mesh.replace('@', '\u0000')}`.split('\u0000').length, 2);
      }),
      { seed, numRuns: 4000 },
    );
    assert.ok(found > 0);
  });
});
