/** The pictures: axis ticks that mean something, cuts drawn inside the canvas, valid XML text. */
import assert from 'node:assert/strict';
import { airtimeSvg, mapSvg } from '../../simulations/pictures.ts';
import type { StrategyResult } from '../../simulations/run.ts';
import type { World } from '../../simulations/world.ts';
import { quietWorld } from './helpers.ts';

function resultFor(world: World): StrategyResult {
  const n = world.scenario.nodes;
  return { name: 'flood', metrics: { airtime_s: n } as StrategyResult['metrics'], detail: {}, timeline: [], airtimeByNode: Array.from({ length: n }, (_, i) => i), events: 0, wallS: 0 };
}

/** The labels of the airtime chart's x axis (text under the plot, y = 376). */
function xTickLabels(svg: string): string[] {
  return [...svg.matchAll(/<text x="[0-9.]+" y="376"[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]!);
}

describe('simulations/pictures', () => {
  for (const n of [3, 7, 10, 23, 36, 100]) {
    it(`the airtime chart of ${n} nodes ticks whole node indices under their bars`, () => {
      const world = quietWorld(Array.from({ length: n }, (_, i) => [i * 100, 0] as [number, number]));
      const svg = airtimeSvg(world, [resultFor(world)]);
      const labels = xTickLabels(svg);
      assert.ok(labels.length >= 2 && labels.length <= 8, labels.join(' '));
      for (const label of labels) {
        assert.match(label, /^\d+$/);
        assert.ok(Number(label) < n, `${label} is not a node of ${n}`);
      }
      assert.equal(labels[0], '0');
    });
  }

  it('a partition cut far outside the nodes is drawn at the edge of the map, saying where it lies', () => {
    const world = quietWorld([[0, 0], [500, 0], [1000, 0]], { partitions: [{ from_s: 0, until_s: 60, cut_x_m: 100_000 }, { from_s: 0, until_s: 60, cut_x_m: -5000 }] });
    const svg = mapSvg(world);
    const width = Number(/<svg[^>]* width="([0-9.]+)"/.exec(svg)![1]);
    const cuts = [...svg.matchAll(/<line x1="([-0-9.]+)" y1="20" x2="([-0-9.]+)"[^>]*stroke-dasharray/g)];
    assert.equal(cuts.length, 2);
    for (const [, x1] of cuts) assert.ok(Number(x1) >= 0 && Number(x1) <= width, `cut at ${x1} of ${width}`);
    assert.match(svg, /at x = 100000 m, off the map/);
  });
});
