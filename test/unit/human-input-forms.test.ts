import { answerProblems, formProblems, humanInputProblems, withFieldOrder } from '../../src/flows/input-form';
import { humanInputNodeSchema } from '../../src/flows/node-kinds';
import { decisionAnswer } from '../../src/turns/decision-answers';
import type { HitlRequestRow } from '../../src/models/schema';

/** The pure parts of forms and of decisions that carry more than yes or no. */
describe('human_input forms', () => {
  const form = { type: 'object', properties: { score: { type: 'integer', minimum: 1 }, tags: { type: 'array' } }, required: ['score'] };

  test('a form is a valid JSON Schema of an object, without regular expressions', () => {
    expect(formProblems(form, 'f')).toEqual([]);
    expect(formProblems({ type: 'object', properties: { a: { type: 'strng' } } }, 'f')).toEqual([
      { path: 'f', message: expect.stringContaining('not a valid JSON Schema') },
    ]);
    expect(formProblems({ type: 'object', properties: { a: { type: 'string', pattern: 'x+' } } }, 'f')[0].path).toBe(
      'f.properties.a.pattern',
    );
    expect(formProblems({ type: 'array' }, 'f')[0].path).toBe('f.type');
    expect(formProblems({ ...form, propertyOrder: ['score', 'nope'] }, 'f')[0].path).toBe('f.propertyOrder');
  });

  test('an answer is checked against the form, every problem at its field', () => {
    expect(answerProblems(form, { score: 2, tags: [] })).toEqual([]);
    expect(
      answerProblems(form, { tags: 'x' })
        .map((p) => p.path)
        .sort(),
    ).toEqual(['values.score', 'values.tags']);
    expect(answerProblems(form, { score: 0 })).toEqual([{ path: 'values.score', message: 'must be >= 1' }]);
    expect(answerProblems(form, { score: 1, note: 'x'.repeat(20_000) })).toEqual([
      { path: 'values', message: expect.stringContaining('at most') },
    ]);
  });

  test('the order of the fields as written is kept, unless the form gives one', () => {
    expect(withFieldOrder({ type: 'object', properties: { b: {}, a: {} } })).toMatchObject({ propertyOrder: ['b', 'a'] });
    expect(withFieldOrder({ type: 'object', properties: { b: {}, a: {} }, propertyOrder: ['a'] })).toMatchObject({ propertyOrder: ['a'] });
    expect(withFieldOrder('not a form')).toBe('not a form');
  });

  test('a timeout outcome has what it needs', () => {
    const node = (timeout: unknown, withDecisions = true) =>
      humanInputNodeSchema.parse({ id: 'ask', type: 'human_input', form, timeout, ...(withDecisions ? { decisions: ['yes', 'no'] } : {}) });
    const at = (path: PropertyKey[]) => path.join('.');
    expect(humanInputProblems(node({ seconds: 60, outcome: 'default', values: { score: 1 }, decision: 'yes' }), at)).toEqual([]);
    expect(humanInputProblems(node({ seconds: 60, outcome: 'default', values: { score: 1 } }), at)[0].path).toBe('timeout.decision');
    expect(humanInputProblems(node({ seconds: 60, outcome: 'default', decision: 'yes' }), at)[0].path).toBe('timeout.values.score');
    expect(humanInputProblems(node({ seconds: 60, outcome: 'decision', decision: 'maybe' }), at)[0].path).toBe('timeout.decision');
    expect(humanInputProblems(node({ seconds: 60, outcome: 'decision', decision: 'yes' }, false), at)[0].path).toBe('timeout.outcome');
    expect(humanInputProblems(node({ seconds: 60, outcome: 'fail', decision: 'yes' }), at)[0].path).toBe('timeout.decision');
  });
});

describe('decisions with edited arguments or a reply', () => {
  const row = { toolName: 'delete_task', deviceId: 'laptop' } as HitlRequestRow;
  const fits = () => [];

  test('arguments go with an approval and must fit the check; a reply goes with a rejection', () => {
    expect(decisionAnswer(row, true, {}, false, fits)).toEqual({});
    expect(decisionAnswer(row, true, { arguments: { task_id: 'x' } }, false, fits)).toEqual({ editedArguments: { task_id: 'x' } });
    expect(decisionAnswer(row, false, { message: '  not now ' }, false, fits)).toEqual({ reply: 'not now' });
    const refused = (run: () => unknown) => {
      try {
        run();
      } catch (error) {
        return (error as { status: number; details: Array<{ path: string }> }).details[0].path;
      }
      return 'accepted';
    };
    expect(refused(() => decisionAnswer(row, false, { arguments: {} }, false, fits))).toBe('arguments');
    expect(refused(() => decisionAnswer(row, true, { message: 'x' }, false, fits))).toBe('message');
    expect(refused(() => decisionAnswer(row, false, { message: '   ' }, false, fits))).toBe('message');
    expect(refused(() => decisionAnswer(row, true, { arguments: {} }, true, fits))).toBe('arguments');
    expect(refused(() => decisionAnswer(row, true, { arguments: {} }, false, undefined))).toBe('arguments');
    expect(
      refused(() => decisionAnswer(row, true, { arguments: {} }, false, () => [{ path: 'arguments.task_id', message: 'Required' }])),
    ).toBe('arguments.task_id');
  });
});
