import type { Response } from 'express';
import { z } from 'zod';

/**
 * Helmet's headers that mean nothing for an event stream (documents, downloads and popups only):
 * a long-lived stream keeps its header block for its whole life, ~450 bytes of it these.
 * `X-Content-Type-Options`, HSTS, CORP, `Referrer-Policy` and `X-Frame-Options` stay.
 */
const DOCUMENT_ONLY_HEADERS = [
  'Content-Security-Policy',
  'Cross-Origin-Opener-Policy',
  'Origin-Agent-Cluster',
  'X-DNS-Prefetch-Control',
  'X-Download-Options',
  'X-Permitted-Cross-Domain-Policies',
  'X-XSS-Protection',
];

/** Opens a `text/event-stream` response and disables buffering on the way (proxies, Nagle). */
export function openSse(res: Response): void {
  for (const header of DOCUMENT_ONLY_HEADERS) res.removeHeader(header);
  res.status(200);
  res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
  res.setHeader('Cache-Control', 'no-cache, no-transform');
  res.setHeader('Connection', 'keep-alive');
  res.setHeader('X-Accel-Buffering', 'no');
  res.socket?.setNoDelay(true);
  res.flushHeaders();
}

/** One SSE message: `data` is written as is (JSON-encode it first); `retry` is a reconnection hint in ms. */
export interface SseMessage {
  id?: string | number;
  event?: string;
  data: string;
  retry?: number;
  /**
   * The message's bytes as they go out, instead of the fields above formatted: for an edge that
   * writes a client's own SSE dialect (its own line endings); it must end with a blank line.
   */
  wire?: string;
}

/** A stored event's text begins with its `type` when its writer put that field first, as every log writer does. */
const LEADING_TYPE = /^\{"type":"([A-Za-z0-9_.:-]*)"[,}]/;

/**
 * A stored event (JSON text written by `JSON.stringify`) as its SSE message, `id` its sequence and
 * `event` its `type`. The text goes out as it was stored: parsing it and writing it again gives the
 * same text, so only the `type` is read, from the text's start, and by a full parse when a writer
 * did not put it first.
 */
export function storedEventMessage(seq: number, json: string): SseMessage & { event: string } {
  const type = LEADING_TYPE.exec(json)?.[1] ?? String((JSON.parse(json) as { type?: unknown }).type);
  return { id: seq, event: type, data: json };
}

/**
 * One SSE message. Multi-line data becomes several `data:` lines (the client joins them with
 * newlines), so a payload can never end the message early or inject a field.
 */
export function formatSse(message: SseMessage): string {
  if (message.wire !== undefined) return message.wire;
  let out = '';
  if (message.retry !== undefined) out += `retry: ${message.retry}\n`;
  if (message.id !== undefined) out += `id: ${String(message.id).replace(/[\r\n]/g, '')}\n`;
  if (message.event) out += `event: ${message.event.replace(/[\r\n]/g, '')}\n`;
  for (const line of message.data.split(/\r\n|\r|\n/)) out += `data: ${line}\n`;
  return `${out}\n`;
}

/** Parses `Last-Event-ID` (a sequence number); anything else means "from the start". */
export function lastEventSeq(header: string | undefined): number {
  if (!header || !/^\d{1,12}$/.test(header.trim())) return 0;
  return Number.parseInt(header.trim(), 10);
}

/**
 * `?lastEventId=`: the `Last-Event-ID` header for clients that cannot set headers (a browser's
 * `EventSource` only sends it on its own reconnects). The header wins when both are sent.
 */
export const lastEventIdQuery = z.object({
  lastEventId: z
    .string()
    .optional()
    .describe(
      'The `id:` of the last event received, as the `Last-Event-ID` header (which wins when both are sent): the stream resumes after it; anything but a sequence number means from the start',
    ),
});
