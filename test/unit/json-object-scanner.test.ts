import { JsonObjectScanner } from '../../src/ai/json-object-scanner';

/** Feeds `text` in pieces of `size` characters; the index of the piece the scanner said closed the object, or -1. */
function closingPiece(text: string, size: number): number {
  const scanner = new JsonObjectScanner();
  let closedAt = -1;
  for (let start = 0, piece = 0; start < text.length; start += size, piece += 1)
    if (scanner.push(text.slice(start, start + size))) {
      if (closedAt !== -1) throw new Error('closed twice');
      closedAt = piece;
    }
  return closedAt;
}

describe('JsonObjectScanner: when streamed tool arguments close', () => {
  const cases = [
    '{"text":"plain"}',
    '{"text":"braces } and { and ] inside a string"}',
    '{"text":"an escaped quote \\" then } more","n":1}',
    '{"text":"a backslash at the end \\\\"}',
    '{"block":{"type":"list","items":[{"a":1},{"b":[2,3]}]},"after":"x"}',
    '  {"spaced" : [ "}" , "]" ] }',
    '{"unicode":"\\u007d and é ✓"}',
  ];

  test.each(cases)('%s closes exactly on its last character, in pieces of any size', (text) => {
    for (const size of [1, 2, 3, 4, 7, text.length]) {
      const pieces = Math.ceil(text.trimEnd().length / size);
      expect(closingPiece(text, size)).toBe(pieces - 1);
      expect(JSON.parse(text)).toBeDefined();
    }
  });

  test('an object not yet closed, or text that is no object, never closes', () => {
    expect(closingPiece('{"text":"still open}', 3)).toBe(-1);
    expect(closingPiece('{"a":{"b":1}', 2)).toBe(-1);
    expect(closingPiece('"a string"', 2)).toBe(-1);
    expect(closingPiece('', 1)).toBe(-1);
  });

  test('after it closed, more pieces change nothing', () => {
    const scanner = new JsonObjectScanner();
    expect(scanner.push('{"a":1}')).toBe(true);
    expect(scanner.push('{"b":2}')).toBe(false);
  });
});
