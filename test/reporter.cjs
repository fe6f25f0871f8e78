// Mocha's spec reporter, plus one plain closing line that any CI can read:
// "N passed, N failed" (and ", N skipped" when tests were pending).
'use strict';
const Mocha = require('mocha');

class CitizenReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => {
      const { passes, failures, pending } = runner.stats;
      process.stdout.write(`\n${passes} passed, ${failures} failed${pending ? `, ${pending} skipped` : ''}\n`);
    });
  }
}

module.exports = CitizenReporter;
