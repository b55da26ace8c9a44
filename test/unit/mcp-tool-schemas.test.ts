import { outputSchemaOf, validatorOf } from '../../src/http/mcp/flow-tools';
import type { AgentflowDefinition } from '../../src/flows/definition';

const flow = (outputSchema?: Record<string, unknown>): AgentflowDefinition =>
  ({ nodes: [{ id: 'n', prompt: 'x', ...(outputSchema ? { outputSchema } : {}) }], output: 'n' }) as AgentflowDefinition;

describe('MCP tool schemas (JSON Schema 2020-12 with Ajv)', () => {
  test('a flow declares its output node’s object schema, and nothing else', () => {
    const object = { type: 'object', properties: { a: { type: 'string' } } };
    expect(outputSchemaOf(flow(object))).toBe(object);
    expect(outputSchemaOf(flow({ type: 'array', items: { type: 'string' } }))).toBeUndefined();
    expect(outputSchemaOf(flow())).toBeUndefined();
    // A schema that does not compile is not declared.
    expect(outputSchemaOf(flow({ type: 'object', properties: { a: { type: 'no-such-type' } } }))).toBeUndefined();
  });

  test('2020-12 keywords are read as 2020-12 (prefixItems, dependentRequired), whatever $schema says', () => {
    const validate = validatorOf({
      $schema: 'http://json-schema.org/draft-07/schema#',
      $id: 'https://example.com/tuple',
      type: 'object',
      properties: { pair: { type: 'array', prefixItems: [{ type: 'string' }, { type: 'integer' }], items: false } },
      dependentRequired: { pair: ['label'] },
    });
    expect(validate({ pair: ['a', 1], label: 'x' })).toBe(true);
    expect(validate({ pair: ['a', 'b'], label: 'x' })).toBe(false);
    expect(validate({ pair: ['a', 1, 2], label: 'x' })).toBe(false);
    expect(validate({ pair: ['a', 1] })).toBe(false);
    // The same text is compiled once; the same $id in another schema does not clash.
    expect(validatorOf({ $id: 'https://example.com/tuple', type: 'string' })('s')).toBe(true);
  });
});
