/**
 * `npm run bench`: the figures of issue 2, printed as "name  value  unit" lines and written to
 * bench/out/results.json. Takes about a minute. BENCH_QUICK=1 runs short budgets and a
 * 10,000-record store, for checking that the benchmarks still run.
 */
import { fileURLToPath } from 'node:url';
import { defaultEd25519 } from '../mesh/ed25519.ts';
import { benchCrypto } from './crypto.ts';
import { Report } from './harness.ts';
import { benchReconcile } from './reconcile.ts';
import { benchRecords } from './records.ts';
import { benchSim } from './sim.ts';
import { benchStore } from './store.ts';
import { benchSync } from './sync.ts';

const quick = process.env.BENCH_QUICK === '1';
const budgetMs = quick ? 150 : 1000;
const report = new Report();
const started = performance.now();

console.log(`Citizen Cloud benchmarks — Node ${process.version}${quick ? ' (quick run)' : ''}`);
benchCrypto(report, budgetMs);
const { envelope } = benchRecords(report, budgetMs);
await benchStore(report, quick ? { records: 10_000, batch: 100, syncedRecords: 500 } : { records: 100_000, batch: 100, syncedRecords: 2_000 });
benchReconcile(report, quick ? { sizes: [10_000], differences: [1, 10, 100] } : { sizes: [10_000, 100_000], differences: [1, 10, 100, 1000] });
await benchSync(report, { quick });
await benchSim(report, { quick });

const out = fileURLToPath(new URL('./out/results.json', import.meta.url));
report.write(out, { quick, ed25519: defaultEd25519.name, envelope });
console.log(`\nDone in ${((performance.now() - started) / 1000).toFixed(0)} s; results in ${out}`);
