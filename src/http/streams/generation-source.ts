import type { GenerationEventLog } from '../../generation/event-log';
import { generationErrorMessage, isTerminal, isTerminalType, type GenerationEvent } from '../../generation/events';
import type { Repositories } from '../../models';
import type { GenerationRow } from '../../models/schema';
import type { Frame, Framer, StreamEntry } from '../../lib/stream-follower';
import type { StreamSignal } from '../../lib/stream-signal';
import { mapYields, type LiveSink, type LogLiveness } from '../../lib/redis-streams';
import { formatSse, storedEventMessage, type SseMessage } from '../sse';
import { handOffLive, type LiveHandoff, type SseSource } from '../sse-streams';

/** How often a quiet stream asks the database whether its generation ended without a terminal event. */
export const GENERATION_CHECK_MS = 10_000;

/** A generation's row states that nothing will be written after. */
const isFinished = (status: GenerationRow['status']) => status !== 'queued' && status !== 'running';

/**
 * The SSE stream of one generation: stored events after `afterSeq`, then live ones, ending with a
 * terminal event (`complete`, `error`, or any other the log marks terminal). When the generation
 * ended but its log holds no terminal event (expired, lost, a worker that died), the stream ends
 * with one built from the row instead of waiting forever.
 */
export function generationSource(deps: GenerationSourceDeps, generationId: string, afterSeq: number, started = false): SseSource {
  return new GenerationSource(deps, generationId, afterSeq, started);
}

export interface GenerationSourceDeps {
  events: GenerationEventLog;
  repos: Repositories;
  checkEveryMs?: number;
}

/**
 * One instance per open stream, so it stays small (10,000 per node): `messages` is a method of the
 * class, not a generator closure (and its prototype) made per stream, and the `interrupted` message
 * is built only when a stream fails. The instance is also the live phase's sink and the log's
 * liveness (fields and prototype getters), so a live stream holds no extra objects or closures for
 * them: only `endedAt`, which the follower calls unbound.
 */
class GenerationSource implements SseSource, LiveSink, LogLiveness {
  /** A terminal event went out (replayed or pushed): nothing is built from the row at the end. */
  private ended = false;
  /** Where live frames go (the stream's writer), set by `messages`. */
  private out: ((frames: Frame[]) => void) | undefined = undefined;
  /** When the generation ended, from its row (null while it may still write). */
  readonly endedAt: () => Promise<Date | null>;

  constructor(
    private readonly deps: GenerationSourceDeps,
    private readonly generationId: string,
    private readonly afterSeq: number,
    /** The generation was created for this stream: it is live, so the first liveness check waits. */
    private readonly started: boolean,
  ) {
    this.endedAt = async () => {
      const row = await deps.repos.generations.find(generationId);
      if (!row) return new Date(0);
      return isFinished(row.status) ? (row.completedAt ?? row.createdAt) : null;
    };
  }

  get checkEveryMs(): number {
    return this.deps.checkEveryMs ?? GENERATION_CHECK_MS;
  }

  get firstCheckAfterMs(): number {
    return this.started ? this.checkEveryMs : 0;
  }

  get framer(): Framer {
    return generationFrame;
  }

  /** Live events, as frames shared by every stream of this generation, straight to the stream. */
  push(frames: Frame[]): void {
    this.out!(frames);
    this.ended ||= frames[frames.length - 1].terminal;
  }

  get interrupted(): SseMessage {
    return {
      event: 'error',
      data: JSON.stringify({
        type: 'error',
        generationId: this.generationId,
        code: 'stream_interrupted',
        message: 'Event stream interrupted; reconnect with Last-Event-ID',
      }),
      retry: 1000,
    };
  }

  messages(signal: StreamSignal, push?: (frames: Frame[]) => void): AsyncGenerator<SseMessage, LiveHandoff | undefined> {
    this.out = push;
    const replay = mapYields(
      this.deps.events.follow(this.generationId, this.afterSeq, signal, this, push && this),
      ({ seq, event }): SseMessage => {
        this.ended ||= isTerminal(event);
        return { id: seq, event: event.type, data: JSON.stringify(event) };
      },
    );
    return handOffLive(replay, () => this.ending(signal));
  }

  /** The log ended without a terminal event: one built from the row. */
  private async *ending(signal: StreamSignal): AsyncGenerator<SseMessage> {
    if (this.ended || signal.aborted) return;
    const event = await endedEvent(this.deps.repos, this.generationId);
    // No id: it is not a position in the log, so a client's Last-Event-ID stays where it was.
    yield { event: event.type, data: JSON.stringify(event) };
  }
}

/**
 * A live log entry as its SSE bytes, exactly as the replay writes it (`id: <seq>`, `event:`,
 * `data:`); built once per entry by the follower and shared by every stream of the generation.
 */
export function generationFrame([id, value]: StreamEntry): Frame {
  const message = storedEventMessage(Number.parseInt(id, 10), value);
  return { bytes: Buffer.from(formatSse(message)), terminal: isTerminalType(message.event) };
}

/** The terminal event a generation's row implies (its log had none). */
async function endedEvent(repos: Repositories, generationId: string): Promise<GenerationEvent> {
  const row = await repos.generations.find(generationId);
  if (!row) return { type: 'error', generationId, code: 'not_found', message: 'This generation no longer exists' };
  if (row.status === 'completed' || row.status === 'undone') {
    return { type: 'complete', generationId, blocks: await repos.blocks.listByGeneration(generationId), truncated: row.truncated };
  }
  if (row.status === 'failed')
    return {
      type: 'error',
      generationId,
      code: row.errorCode ?? 'generation_failed',
      message: generationErrorMessage(row.errorCode ?? 'generation_failed'),
    };
  // Any other end state (e.g. `cancelled`) is its own terminal event, named like the state.
  return { type: row.status, generationId } as unknown as GenerationEvent;
}
