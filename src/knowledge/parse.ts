import { DOCX, UnsupportedDocumentError, type KnowledgeMediaType } from './sniff';
import { checkZipLimits } from './zip-guard';

/** A stretch of a document's text with where it is: a PDF page, or the heading it sits under. */
export interface DocumentPart {
  text: string;
  page: number | null;
  section: string | null;
}

/** Thrown when a document of a supported type cannot be read (encrypted, damaged): it fails with this message. */
export class UnreadableDocumentError extends Error {
  override name = 'UnreadableDocumentError';
}

/** Parses a document's bytes, of the sniffed type, into parts of text. Parsers are loaded on first use (worker only). */
export async function parseDocument(bytes: Buffer, mediaType: KnowledgeMediaType): Promise<DocumentPart[]> {
  switch (mediaType) {
    case 'application/pdf':
      return parsePdf(bytes);
    case DOCX:
      return parseDocx(bytes);
    case 'text/html':
      return htmlToParts(bytes.toString('utf8'));
    case 'text/markdown':
      return markdownParts(bytes.toString('utf8'));
    case 'text/csv':
    case 'text/plain':
      return [{ text: bytes.toString('utf8'), page: null, section: null }];
    default:
      throw new UnsupportedDocumentError(`Unsupported type ${String(mediaType)}`);
  }
}

async function parsePdf(bytes: Buffer): Promise<DocumentPart[]> {
  const { getDocumentProxy, extractText } = await import('unpdf');
  let pages: string[];
  try {
    const pdf = await getDocumentProxy(new Uint8Array(bytes), { stopAtErrors: true });
    ({ text: pages } = await extractText(pdf, { mergePages: false }));
  } catch (error) {
    const name = (error as { name?: string }).name;
    if (name === 'PasswordException') throw new UnreadableDocumentError('The PDF is encrypted (password protected)');
    throw new UnreadableDocumentError(`The PDF cannot be read: ${(error as Error).message || name}`);
  }
  return pages.map((text, index) => ({ text, page: index + 1, section: null }));
}

async function parseDocx(bytes: Buffer): Promise<DocumentPart[]> {
  // Checked before anything inflates it: a zip bomb is refused from its central directory.
  checkZipLimits(bytes);
  const mammoth = await import('mammoth');
  let html: string;
  try {
    ({ value: html } = await mammoth.convertToHtml({ buffer: bytes }));
  } catch (error) {
    throw new UnreadableDocumentError(`The DOCX cannot be read: ${(error as Error).message}`);
  }
  return markdownParts(await htmlToMarkdown(html));
}

/** A page's readable content (Readability, falling back to its body) as Markdown parts under their headings. */
export async function htmlToParts(html: string, url?: string): Promise<DocumentPart[]> {
  const { parseHTML } = await import('linkedom');
  const { Readability } = await import('@mozilla/readability');
  const { document } = parseHTML(html);
  let content = document.body?.innerHTML ?? html;
  try {
    const article = new Readability(document as unknown as Document, { keepClasses: false }).parse();
    if (article?.content && article.textContent?.trim()) content = article.content;
  } catch {
    // Readability gives up on some pages: their body is used as it is.
  }
  void url;
  return markdownParts(await htmlToMarkdown(content));
}

async function htmlToMarkdown(html: string): Promise<string> {
  const { default: TurndownService } = await import('turndown');
  const turndown = new TurndownService({ headingStyle: 'atx', codeBlockStyle: 'fenced' });
  turndown.remove(['script', 'style', 'noscript']);
  return turndown.turndown(html);
}

/** Markdown split at its headings: each part carries the heading it sits under. */
export function markdownParts(markdown: string): DocumentPart[] {
  const parts: DocumentPart[] = [];
  let section: string | null = null;
  let lines: string[] = [];
  const flush = () => {
    const text = lines.join('\n').trim();
    if (text) parts.push({ text, page: null, section });
    lines = [];
  };
  for (const line of markdown.split('\n')) {
    const heading = /^#{1,6}\s+(.+?)\s*#*$/.exec(line);
    if (heading) {
      flush();
      section = heading[1].slice(0, 200);
    }
    lines.push(line);
  }
  flush();
  return parts;
}
