import { ruleScore, RULE_TIMEOUT_MS, type RuleScorer } from '../../src/evals/scorers';

const regex = (pattern: string): RuleScorer => ({ name: 'pattern', type: 'regex', pattern, flags: '' }) as RuleScorer;
const sample = (output: string) => ({ input: {}, expected: null, output });

describe('rule scorers under their time limit', () => {
  test('a quick pattern scores its answer, whatever it matches', () => {
    expect(ruleScore(regex('^The capital of .+ is .+\\.$'), sample('The capital of Peru is Lima.'))).toMatchObject({ score: 1 });
    expect(ruleScore(regex('^The capital of .+ is .+\\.$'), sample('I am not sure about Peru.'))).toMatchObject({
      score: 0,
      reason: 'The answer does not match the pattern',
    });
  });

  test('a runaway pattern is stopped, scores 0 saying so, after a second run is stopped too', () => {
    const started = process.hrtime.bigint();
    const score = ruleScore(regex('^(a+)+$'), sample(`${'a'.repeat(40)}!`));
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    expect(score).toEqual({
      scorer: 'pattern',
      score: 0,
      reason: `The pattern ran longer than ${RULE_TIMEOUT_MS} ms on this answer and was stopped`,
    });
    // Stopped twice: a busy host that stops a quick rule once does not score it 0.
    expect(ms).toBeGreaterThanOrEqual(2 * RULE_TIMEOUT_MS - 5);
  });
});
