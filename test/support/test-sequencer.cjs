const { default: Sequencer } = require('@jest/test-sequencer');

/**
 * Files that take far longer than their size says: each runs a suite written elsewhere (the
 * provider replay matrix) or waits out real worker crashes and restarts in a few lines.
 */
const SLOWER_THAN_THEIR_SIZE = [
  'test/integration/provider-replay-open-models.test.ts',
  'test/integration/provider-replay.test.ts',
  'test/faults/chatflow-rerun.test.ts',
  'test/faults/notes-rerun.test.ts',
  'test/faults/unconsumed-queue.test.ts',
];

/**
 * Jest's order, except in a run with no recorded times (a fresh clone, as in CI). Jest starts the
 * files it has timed slowest first; without times it starts the largest first, and a short file
 * that is among the slowest starts last and keeps one worker busy while the others sit idle at the
 * end of the run. The files named above start first when jest has no time for them.
 */
class TestSequencer extends Sequencer {
  sort(tests) {
    const sorted = super.sort(tests);
    const first = (test) => test.duration == null && SLOWER_THAN_THEIR_SIZE.some((file) => test.path.endsWith(file));
    return [...sorted.filter(first), ...sorted.filter((test) => !first(test))];
  }
}

module.exports = TestSequencer;
