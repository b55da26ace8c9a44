import type { ChatEvent, ChatEventLog } from '../../turns/turn-events';
import type { NotesEventLog } from '../../assistant/notes-events';
import type { FlowEvent, FlowEventLog } from '../../flows/flow-events';
import type { GenerationEventLog } from '../../generation/event-log';
import type { Repositories } from '../../models';
import type { ChatSessionRow } from '../../models/schema';
import type { QueueRegistry } from '../../producers/registry';
import type { StreamSignal } from '../../lib/stream-signal';
import type { SseSource } from '../sse-streams';
import { canvasFeedSource, type CanvasFeedLog, type FeedEnd } from './canvas-feed-source';
import { chatTurnEvents, chatTurnSource } from './chat-source';
import { flowExecutionEvents, flowExecutionSource } from './flow-source';
import { generationSource } from './generation-source';
import { notesSource } from './notes-source';
import { knowledgeProgressSource } from './knowledge-source';
import type { KnowledgeEventLog } from '../../knowledge/progress-events';
import type { KnowledgeDocumentRow } from '../../models/knowledge-repository';

type Turn = { sessionId: string; messageId: string };

/**
 * The event logs the HTTP layer follows, as one port built once by the api role: routes ask it for
 * a stream (generation, chat turn, ticket notes, flow execution) instead of being handed the logs, the follower
 * and the queues to assemble one themselves.
 */
export class StreamSources {
  constructor(
    private readonly deps: {
      events: GenerationEventLog;
      chatEvents: ChatEventLog;
      /** Also written by the API (a resolve resets a failed session's notes). */
      notesEvents: NotesEventLog;
      flowEvents: FlowEventLog;
      /** Canvas rooms' replay logs (the room feed). */
      canvasLog: CanvasFeedLog;
      /** Knowledge ingestions' progress logs. */
      knowledgeEvents: KnowledgeEventLog;
      repos: Repositories;
      queues: Pick<QueueRegistry, 'isLive'>;
      /** How often a quiet stream asks whether its work ended without a terminal event. */
      checkEveryMs?: number;
    },
  ) {}

  /** Ticket notes' event log (SessionLifecycle resets it when notes are asked for again). */
  get notesEvents(): NotesEventLog {
    return this.deps.notesEvents;
  }

  /**
   * A generation's events after `afterSeq`, then live ones, to a terminal event. `started`:
   * the caller has just created it (its producer is live, so the stream does not ask at once).
   */
  generation(generationId: string, afterSeq: number, started = false): SseSource {
    return generationSource(this.deps, generationId, afterSeq, started);
  }

  /**
   * A chat turn's events as SSE (`POST /chat/stream`). `started`: the caller has just queued the
   * turn (it is live, so the stream does not ask at once whether it ended).
   */
  chatTurn(turn: Turn, started = false): SseSource {
    return chatTurnSource(this.deps, turn, started);
  }

  /** A chat turn's events, ending with `final`, `error` or `cancelled` (`POST /chat` waits on them); `started` as for `chatTurn`. */
  chatTurnEvents(turn: Turn, signal: StreamSignal, started = false): AsyncGenerator<ChatEvent> {
    return chatTurnEvents(this.deps, turn, signal, undefined, started);
  }

  /** An agentflow execution's events after `afterSeq`, then live ones, to a terminal event. */
  flowExecution(executionId: string, afterSeq: number): SseSource {
    return flowExecutionSource(
      { events: this.deps.flowEvents, repos: this.deps.repos, checkEveryMs: this.deps.checkEveryMs },
      executionId,
      afterSeq,
    );
  }

  /** An agentflow execution's events after `afterSeq`, then live ones, to its terminal event (or `signal`). */
  flowExecutionEvents(executionId: string, afterSeq: number, signal: StreamSignal): AsyncGenerator<{ seq: number; event: FlowEvent }> {
    return flowExecutionEvents(
      { events: this.deps.flowEvents, repos: this.deps.repos, checkEveryMs: this.deps.checkEveryMs },
      executionId,
      afterSeq,
      signal,
    );
  }

  /**
   * A canvas room's events as SSE, after `afterSeq` (a resume) or from now; `standing` is asked
   * every check interval whether the caller may still read the room.
   */
  canvasFeed(canvasId: string, afterSeq: number | undefined, standing: () => Promise<FeedEnd | undefined>, threadId?: string): SseSource {
    return canvasFeedSource(
      { log: this.deps.canvasLog, checkEveryMs: this.deps.checkEveryMs ?? 10_000 },
      canvasId,
      afterSeq,
      standing,
      threadId,
    );
  }

  /** A document's ingestion progress as SSE `progress` events, to `ready` or `failed`. */
  knowledgeProgress(document: KnowledgeDocumentRow): SseSource {
    const { knowledgeEvents, repos, checkEveryMs } = this.deps;
    return knowledgeProgressSource({ knowledgeEvents, repos, checkEveryMs }, document);
  }

  /** A session's ticket notes as SSE `data:` lines. */
  notes(session: Pick<ChatSessionRow, 'id' | 'userId' | 'documentationStatus' | 'documentation'>): SseSource {
    return notesSource(this.deps, session);
  }
}
