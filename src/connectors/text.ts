/** Upper bound of one item's text; longer bodies are cut (the extractor reads the start anyway). */
export const MAX_ITEM_TEXT_CHARS = 100_000;

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (match, name: string) => {
    if (name[0] === '#') {
      const code = name[1] === 'x' || name[1] === 'X' ? Number.parseInt(name.slice(2), 16) : Number.parseInt(name.slice(1), 10);
      return Number.isFinite(code) && code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : match;
    }
    return ENTITIES[name.toLowerCase()] ?? match;
  });
}

/**
 * Plain text of an HTML email or chat body: scripts, styles and comments dropped, block ends and
 * `<br>` as line breaks, tags removed, entities decoded, blank runs collapsed.
 */
export function htmlToText(html: string): string {
  const text = html
    .replace(/<!--[\s\S]*?-->/g, '')
    .replace(/<(script|style|head)\b[\s\S]*?<\/\1\s*>/gi, '')
    .replace(/<br\s*\/?>/gi, '\n')
    .replace(/<\/(p|div|li|tr|h[1-6]|blockquote|pre|table|ul|ol)\s*>/gi, '\n')
    .replace(/<li\b[^>]*>/gi, '- ')
    .replace(/<[^>]+>/g, '');
  return tidy(decodeEntities(text));
}

/** Trims lines, drops trailing spaces and collapses runs of blank lines; caps the length. */
export function tidy(text: string): string {
  return text
    .replace(/\r\n?/g, '\n')
    .split('\n')
    .map((line) => line.replace(/[ \t\u00a0]+/g, ' ').trim())
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim()
    .slice(0, MAX_ITEM_TEXT_CHARS);
}

/** A Gmail message part (the subset of `gmail_v1.Schema$MessagePart` we read). */
export interface MimePart {
  mimeType?: string | null;
  filename?: string | null;
  headers?: Array<{ name?: string | null; value?: string | null }> | null;
  body?: { data?: string | null; attachmentId?: string | null } | null;
  parts?: MimePart[] | null;
}

/** A header's value (case-insensitive name), or undefined. */
export function headerOf(part: MimePart | undefined | null, name: string): string | undefined {
  const lower = name.toLowerCase();
  return part?.headers?.find((header) => header.name?.toLowerCase() === lower)?.value ?? undefined;
}

function decodeBody(part: MimePart): string {
  const data = part.body?.data;
  if (!data) return '';
  const bytes = Buffer.from(data, 'base64url');
  const charset = /charset="?([^";\s]+)"?/i.exec(headerOf(part, 'content-type') ?? '')?.[1] ?? 'utf-8';
  try {
    return new TextDecoder(charset).decode(bytes);
  } catch {
    return bytes.toString('utf8');
  }
}

function isAttachment(part: MimePart): boolean {
  return Boolean(part.filename) || Boolean(part.body?.attachmentId) || /^\s*attachment/i.test(headerOf(part, 'content-disposition') ?? '');
}

function leaves(part: MimePart, mimeType: string, out: MimePart[] = []): MimePart[] {
  if (part.parts?.length) {
    for (const child of part.parts) leaves(child, mimeType, out);
  } else if (part.mimeType?.toLowerCase() === mimeType && !isAttachment(part)) {
    out.push(part);
  }
  return out;
}

/**
 * The readable text of a Gmail message payload: its text/plain parts (searched through nested
 * multiparts, attachments skipped), else its text/html parts stripped to text.
 */
export function mimeText(payload: MimePart): string {
  const plain = leaves(payload, 'text/plain');
  if (plain.length) return tidy(plain.map(decodeBody).join('\n\n'));
  const html = leaves(payload, 'text/html');
  return htmlToText(html.map(decodeBody).join('\n'));
}
