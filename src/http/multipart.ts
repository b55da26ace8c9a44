import type { Request } from 'express';
import { AppError, badRequest } from '../lib/errors';

/** One file part of a multipart/form-data body. */
export interface MultipartFile {
  field: string;
  name: string;
  contentType?: string;
  /** Its bytes, or empty when it was over `maxFileBytes` (then `overCap`). */
  bytes: Buffer;
  size: number;
  overCap: boolean;
}

/**
 * Reads a multipart/form-data body (RFC 7578) of at most `maxBodyBytes` (413 past it) into its
 * file parts; a file over `maxFileBytes` keeps its size and name but not its bytes. Text fields
 * are returned by name. A body that is not multipart, or has no boundary, is 400.
 */
export async function readMultipart(
  req: Request,
  limits: { maxBodyBytes: number; maxFileBytes: number },
): Promise<{ files: MultipartFile[]; fields: Record<string, string> }> {
  const type = req.headers['content-type'] ?? '';
  const boundary = /^multipart\/form-data\b.*?;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(type);
  if (!boundary) throw badRequest('Send the files as multipart/form-data');
  const body = await readBody(req, limits.maxBodyBytes);
  const delimiter = Buffer.from(`--${boundary[1] ?? boundary[2]}`);
  const files: MultipartFile[] = [];
  const fields: Record<string, string> = {};
  let at = body.indexOf(delimiter);
  if (at < 0) throw badRequest('The multipart body has no parts');
  while (at >= 0) {
    const start = at + delimiter.length;
    if (body.subarray(start, start + 2).toString() === '--') break;
    const next = body.indexOf(delimiter, start);
    if (next < 0) throw badRequest('The multipart body is cut short');
    // Each part: CRLF, headers, CRLF CRLF, content, CRLF before the next delimiter.
    const part = body.subarray(start + 2, next - 2);
    const split = part.indexOf('\r\n\r\n');
    if (split < 0) throw badRequest('A multipart part has no headers');
    const headers = part.subarray(0, split).toString('utf8');
    const content = part.subarray(split + 4);
    const disposition = /content-disposition:\s*form-data(.*)/i.exec(headers)?.[1] ?? '';
    const field = /\bname="([^"]*)"/i.exec(disposition)?.[1] ?? '';
    const filename = /\bfilename="([^"]*)"/i.exec(disposition)?.[1];
    const contentType = /content-type:\s*([^\r\n;]+)/i.exec(headers)?.[1]?.trim().toLowerCase();
    if (filename === undefined) fields[field] = content.toString('utf8').slice(0, 10_000);
    else {
      const overCap = content.length > limits.maxFileBytes;
      files.push({
        field,
        name: filename,
        contentType,
        bytes: overCap ? Buffer.alloc(0) : Buffer.from(content),
        size: content.length,
        overCap,
      });
    }
    at = next;
  }
  return { files, fields };
}

function readBody(req: Request, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (part: Buffer) => {
      if (refused) return;
      size += part.length;
      if (size > maxBytes) {
        refused = true;
        reject(new AppError(413, 'payload_too_large', `The upload is over ${maxBytes} bytes`));
        // The rest is read and dropped, so the 413 reaches the client.
        req.resume();
        return;
      }
      parts.push(part);
    });
    req.on('end', () => {
      if (!refused) resolve(Buffer.concat(parts));
    });
    req.on('error', reject);
  });
}
