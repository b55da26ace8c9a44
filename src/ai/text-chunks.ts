import { RecursiveCharacterTextSplitter } from '@langchain/textsplitters';
import { getEncoding } from 'js-tiktoken';
/** A stretch of text with where it is: a page, or the heading it sits under. */
export interface TextPart {
  text: string;
  page: number | null;
  section: string | null;
}

/** A chunk of a document: its text and where it came from. */
export interface DocumentChunk {
  ordinal: number;
  text: string;
  page: number | null;
  section: string | null;
  tokens: number;
}

/** Chunk size and overlap, in tokens (cl100k). */
export const CHUNKING = { size: 400, overlap: 60 } as const;

let encoder: ReturnType<typeof getEncoding> | undefined;
/** Tokens of `text` by the cl100k encoding, whose ranks ship in the package: counted offline. */
export const countTokens = (text: string): number => (encoder ??= getEncoding('cl100k_base')).encode(text, [], []).length;

/**
 * Splits a document's parts into chunks of at most `size` tokens with `overlap` tokens shared
 * between neighbours (LangChain's recursive splitter, at paragraphs, then lines, then words),
 * never across a page or section. Ordinals are dense from 0, and the same parts always give the
 * same chunks, so a resumed ingestion finds its stored chunks by ordinal.
 */
export async function chunkParts(
  parts: readonly TextPart[],
  options: { size: number; overlap: number } = CHUNKING,
): Promise<DocumentChunk[]> {
  // The splitter counts each piece two or three times (to sort, to merge, to drop the overlap): a
  // count is kept per piece of this document, so each is encoded once. Same counts, same chunks.
  const counted = new Map<string, number>();
  const tokensOf = (text: string) => {
    let tokens = counted.get(text);
    if (tokens === undefined) counted.set(text, (tokens = countTokens(text)));
    return tokens;
  };
  const splitter = new RecursiveCharacterTextSplitter({
    chunkSize: options.size,
    chunkOverlap: options.overlap,
    lengthFunction: tokensOf,
  });
  const chunks: DocumentChunk[] = [];
  for (const part of parts) {
    const text = part.text.replaceAll(String.fromCharCode(0), '').trim();
    if (!text) continue;
    for (const piece of await splitter.splitText(text)) {
      const trimmed = piece.trim();
      if (trimmed)
        chunks.push({ ordinal: chunks.length, text: trimmed, page: part.page, section: part.section, tokens: tokensOf(trimmed) });
    }
  }
  return chunks;
}
