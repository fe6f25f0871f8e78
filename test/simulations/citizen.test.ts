/**
 * The citizen strategy — real MeshNodes with in-memory stores and the real Sync over
 * simulated LoRa — on a CI-sized scenario: everything is delivered once the network drains,
 * nothing breaks the duty cycle, and one seed gives one result.
 */
import assert from 'node:assert/strict';
import { metricsJson, runScenario } from '../../simulations/run.ts';
import { parseScenario } from '../../simulations/scenario.ts';

const ci = parseScenario({
  name: 'ci-grid',
  seed: 5,
  nodes: 9,
  duration_s: 3 * 3600,
  placement: 'grid',
  spacing_m: 400,
  radio: { path_loss: { shadowing_db: 0 } },
  churn: { offline_fraction: 0.1, mean_offline_s: 1200 },
  traffic: { dm_per_node_per_hour: 0.5, chat_per_node_per_hour: 1, blog_per_node_per_day: 2, body_bytes: [40, 300], until_s: 3600 },
});

describe('simulations/citizen strategy (CI-sized scenario)', function () {
  this.timeout(60_000);

  it('delivers every message after the network drains, with zero duty-cycle violations, identically for one seed', async () => {
    const first = await runScenario(ci, { strategies: ['citizen', 'flood'] });
    const [citizen, flood] = first.results.map((r) => r.metrics);
    assert.ok(citizen!.messages > 5, `messages: ${citizen!.messages}`);
    assert.equal(citizen!.duty_cycle_violations, 0);
    assert.ok(citizen!.delivery_ratio >= 0.99, `citizen delivered ${citizen!.delivered}/${citizen!.expected}`);
    assert.ok(citizen!.delivery_ratio >= flood!.delivery_ratio);
    const again = await runScenario(ci, { strategies: ['citizen', 'flood'] });
    const strip = (json: string) => json.replace(/"wall_s": [0-9.]+/, '');
    assert.equal(strip(metricsJson(again)), strip(metricsJson(first)));
  });
});
