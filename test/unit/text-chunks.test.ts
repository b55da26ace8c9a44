import { RecursiveCharacterTextSplitter } from '@langchain/textsplitters';
import { CHUNKING, chunkParts, countTokens } from '../../src/ai/text-chunks';

describe('chunkParts', () => {
  /** Pages of lines and paragraphs, some lines repeated (a header on every page), some words long. */
  const pages = Array.from({ length: 6 }, (_, page) =>
    [
      'Acme handbook — confidential',
      ...Array.from({ length: 60 }, (_, line) =>
        line % 9 === 0
          ? ''
          : `Line ${line} of page ${page}: the refund policy covers zebra lamps, supercalifragilistic widgets and item ${(page * 61 + line * 7) % 97}.`,
      ),
    ].join('\n'),
  );

  test('given pages with repeated lines, it gives the chunks and token counts a splitter counting every piece anew gives', async () => {
    const reference = new RecursiveCharacterTextSplitter({
      chunkSize: CHUNKING.size,
      chunkOverlap: CHUNKING.overlap,
      lengthFunction: countTokens,
    });
    const expected: Array<{ text: string; page: number; tokens: number }> = [];
    for (const [index, text] of pages.entries())
      for (const piece of await reference.splitText(text))
        expected.push({ text: piece.trim(), page: index + 1, tokens: countTokens(piece.trim()) });

    const chunks = await chunkParts(pages.map((text, index) => ({ text, page: index + 1, section: null })));

    expect(chunks.length).toBeGreaterThan(pages.length);
    expect(chunks.map(({ text, page, tokens }) => ({ text, page, tokens }))).toEqual(expected);
    expect(chunks.map((chunk) => chunk.ordinal)).toEqual(chunks.map((_, index) => index));
    expect(Math.max(...chunks.map((chunk) => chunk.tokens))).toBeLessThanOrEqual(CHUNKING.size);
  });
});
