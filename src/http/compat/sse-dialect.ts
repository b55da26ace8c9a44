import type { Request, Response } from 'express';
import type { Frame } from '../../lib/stream-follower';
import type { SseStreams, SseSource, LiveHandoff } from '../sse-streams';
import { formatSse, type SseMessage } from '../sse';

/** Rewrites one stream message into a client's dialect (its fields, its line endings through `wire`). */
export type MessageMap = (message: SseMessage) => SseMessage;

/**
 * The SSE messages of a frame's bytes (`formatSse` output: fields, `data:` lines joined with
 * newlines, a blank line after each). Comment-only blocks come back with `wire` so they pass as they were.
 */
export function parseSseText(text: string): SseMessage[] {
  const messages: SseMessage[] = [];
  for (const block of text.split(/\n\n/)) {
    if (block === '') continue;
    const data: string[] = [];
    const message: SseMessage = { data: '' };
    for (const line of block.split('\n')) {
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'data') data.push(value);
      else if (field === 'id') message.id = value;
      else if (field === 'event') message.event = value;
      else if (field === 'retry') message.retry = Number(value);
    }
    if (data.length === 0) messages.push({ data: '', wire: `${block}\n\n` });
    else messages.push({ ...message, data: data.join('\n') });
  }
  return messages;
}

/** A frame's messages, each mapped, as one new frame (live frames are shared buffers: never changed in place). */
function mapFrame(frame: Frame, map: MessageMap): Frame {
  const text = parseSseText(frame.bytes.toString('utf8'))
    .map((message) => formatSse(message.wire === undefined ? map(message) : message))
    .join('');
  return { bytes: Buffer.from(text), terminal: frame.terminal };
}

async function* mapMessages<R>(messages: AsyncGenerator<SseMessage, R>, map: MessageMap): AsyncGenerator<SseMessage, R> {
  try {
    for (;;) {
      const next = await messages.next();
      if (next.done) return next.value;
      yield map(next.value);
    }
  } finally {
    await messages.return(undefined as R);
  }
}

/**
 * `source` with every message it writes mapped: those it yields, the live frames it pushes, and
 * what follows its live phase. The source itself (its replay, its liveness checks, its terminal
 * from the row) is unchanged.
 */
export function mapSource(source: SseSource, map: MessageMap): SseSource {
  return {
    messages(signal, push) {
      const mappedPush = push && ((frames: Frame[]) => push(frames.map((frame) => mapFrame(frame, map))));
      return (async function* () {
        const handoff = yield* mapMessages(source.messages(signal, mappedPush), map);
        if (!handoff) return handoff;
        return { live: handoff.live, after: () => mapMessages(handoff.after(), map) } satisfies LiveHandoff;
      })();
    },
    interrupted: map(source.interrupted),
  };
}

/**
 * The stream door with a per-response dialect: a response given a map by `speak` has its stream's
 * messages mapped (`mapSource`); others are served as they are. Everything else of the door (the
 * per-user cap, heartbeats, leases, back-pressure, shutdown) is the door's own.
 */
export class DialectStreams {
  private readonly maps = new WeakMap<Response, MessageMap>();

  constructor(private readonly streams: SseStreams) {}

  /** The stream `res` will carry speaks through `map`. */
  speak(res: Response, map: MessageMap): void {
    this.maps.set(res, map);
  }

  /** An `SseStreams` whose `serve` maps the source of a response given a dialect. */
  door(): SseStreams {
    const maps = this.maps;
    const base = this.streams;
    const serve: SseStreams['serve'] = (req: Request, res: Response, options) => {
      const map = maps.get(res);
      if (!map) return base.serve(req, res, options);
      return base.serve(req, res, {
        ...options,
        prepare: async (signal, slot) => mapSource(await options.prepare(signal, slot), map),
      });
    };
    return Object.create(base, { serve: { value: serve } }) as SseStreams;
  }
}
