import type { Socket } from 'node:net';
import type { Response } from 'express';
import type { Frame } from '../lib/stream-follower';
import { untilEventOrAbort, type StreamSignal } from '../lib/stream-signal';

/** Per stream: what `pushFrames` needs between calls (kept small: 10,000 of these per node). */
export interface FrameTarget {
  res: Response;
  signal: StreamSignal;
  /** Wire chunks held while the client has not read what was written (back-pressure), in order. */
  held: Buffer[] | undefined;
  /** Whose 'drain' releases `held` (the socket when written directly, else the response). */
  drainer: NodeJS.EventEmitter | undefined;
  /** The socket `directSocket` last accepted for this response (checked in full only once). */
  direct?: Socket;
}

/** A frame as one HTTP/1.1 chunk (`<hex size>\r\n<bytes>\r\n`), built once and kept on the shared frame. */
const chunks = new WeakMap<Frame, Buffer>();
function chunkOf(frame: Frame): Buffer {
  let chunk = chunks.get(frame);
  if (!chunk) {
    chunk = Buffer.concat([Buffer.from(`${frame.bytes.length.toString(16)}\r\n`), frame.bytes, CRLF]);
    chunks.set(frame, chunk);
  }
  return chunk;
}
const CRLF = Buffer.from('\r\n');

/**
 * A read's frames as one buffer of chunks, built once: the follower hands the same array to every
 * stream at its cursor, so 1,000 followers of a generation share one concatenation per read.
 */
const batches = new WeakMap<Frame[], Buffer>();
function chunksOf(frames: Frame[]): Buffer {
  if (frames.length === 1) return chunkOf(frames[0]);
  let bytes = batches.get(frames);
  if (!bytes) {
    bytes = Buffer.concat(frames.map(chunkOf));
    batches.set(frames, bytes);
  }
  return bytes;
}

/**
 * The socket to write ready chunks to, when that is the same as `res.write` would do: a chunked
 * response whose headers are out and which owns its socket with nothing of it still buffered.
 * `res.write` costs a cork, three writes and a tick per call; 1,000 streams × each event made that
 * the node's main cost. Otherwise (HTTP/1.0, headers pending) frames go via `res.write`.
 */
function directSocket(res: Response): Socket | undefined {
  const socket = res.socket as (Socket & { _httpMessage?: unknown }) | null;
  if (!socket || !socket.writable || !res.headersSent || !res.chunkedEncoding || socket._httpMessage !== res) return undefined;
  return res.writableLength === socket.writableLength ? socket : undefined;
}

/**
 * `directSocket`, checked in full at a stream's first push and then kept while the socket is still
 * the response's, writable, and holds all that the response wrote: a response may keep a write of
 * its own (a keep-alive comment) until the next tick, and a frame written to the socket meanwhile
 * would overtake it. Then this push goes through the response, after that write.
 */
function keptDirectSocket(target: FrameTarget): Socket | undefined {
  const kept = target.direct as (Socket & { _httpMessage?: unknown }) | undefined;
  if (kept && kept._httpMessage === target.res && kept.writable && target.res.writableLength === kept.writableLength) return kept;
  return (target.direct = directSocket(target.res));
}

/**
 * Writes live frames as they come. Once the client stops reading (a write reports back-pressure),
 * further frames are held (references to the shared buffers, no copies) until it drains, then
 * written together: the same policy as the message loop, which stops writing until 'drain'.
 */
export function pushFrames(target: FrameTarget, frames: Frame[]): void {
  const { res } = target;
  if (res.destroyed || target.signal.aborted) return;
  const socket = target.held ? undefined : keptDirectSocket(target);
  if (target.held) {
    for (const frame of frames) target.held.push(target.drainer === res ? frame.bytes : chunkOf(frame));
    return;
  }
  let ok: boolean;
  if (socket) {
    ok = socket.write(chunksOf(frames));
  } else {
    ok = res.write(frames.length === 1 ? frames[0].bytes : Buffer.concat(frames.map((frame) => frame.bytes)));
  }
  if (ok) return;
  target.held = [];
  target.drainer = socket ?? res;
  target.drainer.once('drain', () => flushHeld(target));
}

function flushHeld(target: FrameTarget): void {
  const { held, drainer, res } = target;
  target.held = undefined;
  if (!held?.length || res.destroyed || !drainer) return;
  const bytes = held.length === 1 ? held[0] : Buffer.concat(held);
  const ok = drainer === res ? res.write(bytes) : (drainer as Socket).writable && (drainer as Socket).write(bytes);
  if (ok) return;
  target.held = [];
  drainer.once('drain', () => flushHeld(target));
}

/** Waits until held frames are written and the client read what was written (or it left). */
export async function framesDrained(target: FrameTarget): Promise<void> {
  while (target.held && target.drainer && !target.signal.aborted && !target.res.destroyed) {
    // `flushHeld` listened first, so it has run when this resumes.
    await untilEventOrAbort(target.drainer, 'drain', target.signal);
  }
}
