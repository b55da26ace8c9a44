import { isChatTerminal, type ChatEvent, type ChatEventLog } from '../../turns/turn-events';
import type { Repositories } from '../../models';
import { hitlResumeJobId } from '../../producers/assistant';
import type { QueueRegistry } from '../../producers/registry';
import { mapYields, type LiveSink, type LogLiveness } from '../../lib/redis-streams';
import type { Frame, StreamEntry } from '../../lib/stream-follower';
import type { StreamSignal } from '../../lib/stream-signal';
import { formatSse } from '../sse';
import { handOffLive, type LiveHandoff, type SseSource } from '../sse-streams';

/** How often a quiet turn asks whether it ended without a terminal event. */
export const CHAT_CHECK_MS = 10_000;

/**
 * Whether a chat turn can still write: it has no stored answer, and its job (or the resume job of
 * one of its approvals) is still queued or running, or an approval of it is still pending.
 */
export function chatTurnLiveness(
  deps: { repos: Repositories; queues: Pick<QueueRegistry, 'isLive'>; checkEveryMs?: number },
  turn: { sessionId: string; messageId: string },
  started = false,
): LogLiveness {
  const checkEveryMs = deps.checkEveryMs ?? CHAT_CHECK_MS;
  return {
    checkEveryMs,
    // A turn queued by this very request is live: asking at once could only answer so.
    firstCheckAfterMs: started ? checkEveryMs : 0,
    endedAt: async () => {
      const reply = await deps.repos.chat.findReply(turn.sessionId, turn.messageId);
      if (reply) return reply.createdAt;
      if (await deps.queues.isLive('assistant', turn.messageId)) return null;
      const approvals = await deps.repos.hitl.forMessage(turn.messageId);
      if (approvals.some((approval) => approval.status === 'pending')) return null;
      for (const approval of approvals) if (await deps.queues.isLive('assistant', hitlResumeJobId(approval.id))) return null;
      return new Date();
    },
  };
}

/**
 * The turn's events, ending with `final`, `error` or `cancelled`; a turn that ended without one gets one built from its stored answer.
 * With `live`, the live phase goes there as shared frames (`chatFrame`) instead of being yielded, and the generator returns it (`LiveHandoff`).
 */
export function chatTurnEvents(
  deps: { chatEvents: ChatEventLog; repos: Repositories; queues: Pick<QueueRegistry, 'isLive'>; checkEveryMs?: number },
  turn: { sessionId: string; messageId: string },
  signal: StreamSignal,
  live?: LiveSink,
  started = false,
): AsyncGenerator<ChatEvent, LiveHandoff<ChatEvent> | undefined> {
  let ended = false;
  const sink = live && {
    framer: live.framer,
    push: (frames: Frame[]) => {
      live.push(frames);
      ended ||= frames[frames.length - 1].terminal;
    },
  };
  // A turn this request has just queued: the follower's first read hands over all its log holds.
  const events = deps.chatEvents.follow(turn.messageId, signal, chatTurnLiveness(deps, turn, started), sink, { fresh: started });
  const replay = mapYields(events, (event) => {
    ended ||= deps.chatEvents.isTerminal(event);
    return event;
  });
  return handOffLive(replay, async function* () {
    if (ended || signal.aborted) return;
    const reply = await deps.repos.chat.findReply(turn.sessionId, turn.messageId);
    if (reply) {
      yield {
        // An answer cut short by a cancel ends the stream as the cancel did.
        type: reply.status === 'cancelled' ? 'cancelled' : 'final',
        sessionId: turn.sessionId,
        response: reply.content,
        usage: {
          provider: reply.provider ?? 'unknown',
          model: reply.model ?? 'unknown',
          inputTokens: reply.inputTokens,
          outputTokens: reply.outputTokens,
          costUsd: reply.costUsd,
        },
      };
    } else {
      yield { type: 'error', sessionId: turn.sessionId, code: 'turn_lost', message: 'The answer was lost; please ask again' };
    }
  });
}

/** A chat turn as SSE (`POST /chat/stream`); `started`: the request has just queued it. */
export function chatTurnSource(
  deps: Parameters<typeof chatTurnEvents>[0],
  turn: { sessionId: string; messageId: string },
  started = false,
): SseSource {
  return {
    async *messages(signal, push) {
      const handoff = yield* mapYields(chatTurnEvents(deps, turn, signal, push && { framer: chatFrame, push }, started), chatMessage);
      return handoff && { live: handoff.live, after: () => mapYields(handoff.after(), chatMessage) };
    },
    interrupted: {
      event: 'error',
      data: JSON.stringify({
        type: 'error',
        sessionId: turn.sessionId,
        code: 'stream_interrupted',
        message: 'The answer stream was interrupted',
      }),
    },
  };
}

const chatMessage = (event: ChatEvent) => ({ event: event.type, data: JSON.stringify(event) });

/**
 * A live chat log entry as its SSE bytes, exactly as the replay writes it; built once per entry by
 * the follower and shared by every stream of the turn.
 */
export function chatFrame([, value]: StreamEntry): Frame {
  const event = JSON.parse(value) as ChatEvent;
  return { bytes: Buffer.from(formatSse(chatMessage(event))), terminal: isChatTerminal(event) };
}
