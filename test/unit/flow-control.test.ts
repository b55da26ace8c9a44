import { readFileSync } from 'node:fs';
import { validateDefinition, type AgentflowDefinition } from '../../src/flows/definition';
import { evaluate, ExpressionError, parseExpression, valueAt } from '../../src/flows/expression';
import { nextSteps } from '../../src/flows/flow-graph';
import { pickBranch } from '../../src/flows/node-control';

/** The expression language, the skip rule of branches, and the documented walkthrough. */

const run = (source: string, scope: Record<string, unknown>) => evaluate(parseExpression(source), (parts) => valueAt(scope, parts));

describe('expressions', () => {
  test.each([
    ['input.score >= 50', true],
    ['input.score < 50 or input.name == "Ada"', true],
    ['not (input.tags contains "spam") and input.score > 70', true],
    ["'b' in input.tags", true],
    ['input.missing.deep == null', true],
    ['input.items[1].n == 2', true],
    ['input.name contains "da" && !input.flag', true],
    ['input.score > "10"', false],
    ['not input.empty', true],
    ['input.obj == input.obj2', true],
  ])('%s → %s', (source, expected) => {
    const scope = {
      input: {
        score: 72,
        name: 'Ada',
        tags: ['a', 'b'],
        items: [{ n: 1 }, { n: 2 }],
        flag: false,
        empty: [],
        obj: { a: 1 },
        obj2: { a: 1 },
      },
    };
    expect(run(source, scope)).toBe(expected);
  });

  test.each(['input.a >=', 'input.a == (1', 'and input.a', 'input.a = 1', "input.a == 'open", 'input[x]'])(
    '%s does not parse',
    (source) => {
      expect(() => parseExpression(source)).toThrow(ExpressionError);
    },
  );

  test('nothing in an expression reaches code: a constructor path is only a missing value', () => {
    expect(run('input.constructor == null', { input: {} })).toBe(true);
    expect(run('input.__proto__ == null', { input: {} })).toBe(true);
  });

  test('deep nesting is refused, not recursed without bound', () => {
    expect(() => parseExpression(`${'('.repeat(40)}1${')'.repeat(40)}`)).toThrow(/nested more than/);
  });
});

describe('which nodes run next', () => {
  const definition = {
    nodes: [
      { id: 'c', type: 'condition', branches: [{ name: 'yes', when: 'input.ok', to: ['a'] }], else: ['b'] },
      { id: 'a', prompt: 'x' },
      { id: 'b', prompt: 'y' },
      { id: 'b2', prompt: 'z', dependsOn: ['b'] },
      { id: 'join', prompt: 'j', dependsOn: ['a', 'b2'] },
    ],
    output: 'join',
  } as unknown as AgentflowDefinition;
  const row = (nodeId: string, status: string, output: unknown = null) => ({ nodeId, status, output }) as never;

  test('the untaken branch and what only it leads to are skipped in one pass; the join waits for the taken one', () => {
    const steps = nextSteps(definition.nodes, [
      row('c', 'completed', { branch: 'yes' }),
      row('a', 'pending'),
      row('b', 'pending'),
      row('b2', 'pending'),
      row('join', 'pending'),
    ]);
    expect(steps).toEqual({ ready: ['a'], skip: ['b', 'b2'] });
    const after = nextSteps(definition.nodes, [
      row('c', 'completed', { branch: 'yes' }),
      row('a', 'completed'),
      row('b', 'skipped'),
      row('b2', 'skipped'),
      row('join', 'pending'),
    ]);
    expect(after).toEqual({ ready: ['join'], skip: [] });
  });

  test('a condition that takes no branch skips every target, and a node only they lead to', () => {
    const steps = nextSteps(definition.nodes, [
      row('c', 'completed', { branch: null }),
      row('a', 'pending'),
      row('b', 'pending'),
      row('b2', 'pending'),
      row('join', 'pending'),
    ]);
    expect(steps).toEqual({ ready: [], skip: ['a', 'b', 'b2', 'join'] });
  });
});

test('a router answer names a branch, or none', () => {
  expect(pickBranch(' "Billing". ', ['billing', 'other'])).toBe('billing');
  expect(pickBranch('{"branch":"other"}', ['billing', 'other'])).toBe('other');
  expect(pickBranch('billing or other', ['billing', 'other'])).toBeNull();
});

test('the walkthrough of the flow docs is a valid definition', () => {
  const docs = readFileSync(new URL('../../docs/concepts.md', import.meta.url), 'utf8');
  const json = /A walkthrough[^`]*```json\n([\s\S]*?)```/
    .exec(docs)![1]
    .replace('<id of your escalation agentflow>', '00000000-0000-4000-8000-000000000001');
  expect(() => validateDefinition('agentflow', JSON.parse(json), () => true)).not.toThrow();
});
