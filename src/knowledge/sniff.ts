import { zipEntries } from './zip-guard';

/** The document types knowledge bases take. */
export const KNOWLEDGE_MEDIA_TYPES = [
  'application/pdf',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  'text/html',
  'text/markdown',
  'text/csv',
  'text/plain',
] as const;
export type KnowledgeMediaType = (typeof KNOWLEDGE_MEDIA_TYPES)[number];
export const DOCX = 'application/vnd.openxmlformats-officedocument.wordprocessingml.document';

/** Thrown for bytes no parser takes: the document fails with this message. */
export class UnsupportedDocumentError extends Error {
  override name = 'UnsupportedDocumentError';
}

/**
 * The type of a document from its bytes, not its name: `%PDF-` is a PDF, a ZIP holding
 * `word/document.xml` a DOCX, valid UTF-8 text without NUL bytes is HTML when it opens like a
 * page, else Markdown, CSV or plain text as its name (or declared type) says. Anything else is
 * refused, whatever it is called.
 */
export function sniffMediaType(bytes: Buffer, name: string, declared?: string): KnowledgeMediaType {
  if (bytes.length === 0) throw new UnsupportedDocumentError('The file is empty (0 bytes)');
  if (bytes.subarray(0, 5).toString('latin1') === '%PDF-') return 'application/pdf';
  if (bytes.readUInt32LE(0) === 0x04034b50) {
    const names = zipEntries(bytes).map((entry) => entry.name);
    if (names.includes('word/document.xml')) return DOCX;
    throw new UnsupportedDocumentError('A ZIP archive that is not a Word document (DOCX) is not supported');
  }
  const head = bytes.subarray(0, 64 * 1024);
  if (head.includes(0) || !isUtf8(head))
    throw new UnsupportedDocumentError('Unsupported file type: only PDF, DOCX, HTML, Markdown, CSV and text are accepted');
  const start = head.toString('utf8', 0, 2048).trimStart().toLowerCase();
  if (start.startsWith('<!doctype html') || start.startsWith('<html') || /^<(head|body|article|main|div|p|h1)\b/.test(start))
    return 'text/html';
  const lowerName = name.toLowerCase();
  if (/\.(md|markdown)$/.test(lowerName) || declared === 'text/markdown') return 'text/markdown';
  if (lowerName.endsWith('.csv') || declared === 'text/csv') return 'text/csv';
  return 'text/plain';
}

/** Whether `bytes` decode as UTF-8 (a multi-byte character cut at the end of a prefix still counts). */
function isUtf8(bytes: Buffer): boolean {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  try {
    decoder.decode(bytes, { stream: true });
    return true;
  } catch {
    return false;
  }
}
