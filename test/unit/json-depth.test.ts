import { exceedsJsonDepth, MAX_JSON_DEPTH } from '../../src/lib/json-depth';

/** The depth bound every parsed input meets before anything walks it. */
describe('exceedsJsonDepth', () => {
  const nested = (levels: number, kind: 'array' | 'object') => {
    let value: unknown = 'leaf';
    for (let i = 0; i < levels; i += 1) value = kind === 'array' ? [value] : { a: value };
    return value;
  };

  test.each(['array', 'object'] as const)('%s nesting: the bound passes, one level more does not', (kind) => {
    expect(exceedsJsonDepth(nested(MAX_JSON_DEPTH, kind))).toBe(false);
    expect(exceedsJsonDepth(nested(MAX_JSON_DEPTH + 1, kind))).toBe(true);
  });

  test('100,000 levels are measured without recursion (no stack overflow)', () => {
    expect(exceedsJsonDepth(JSON.parse('['.repeat(100_000) + ']'.repeat(100_000)))).toBe(true);
  });

  test('scalars, wide values and binary leaves are within the bound', () => {
    expect(exceedsJsonDepth('text')).toBe(false);
    expect(exceedsJsonDepth(null)).toBe(false);
    expect(exceedsJsonDepth({ many: Array.from({ length: 10_000 }, (_, i) => ({ i })) })).toBe(false);
    expect(exceedsJsonDepth({ file: Buffer.alloc(1_000) })).toBe(false);
  });

  test('a deep branch beside shallow ones is found', () => {
    expect(exceedsJsonDepth({ a: 1, b: [2, 3], c: nested(MAX_JSON_DEPTH, 'object') })).toBe(true);
  });
});
