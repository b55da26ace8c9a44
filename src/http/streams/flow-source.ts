import { flowError, isFlowTerminal, isFlowTerminalType, type FlowEvent, type FlowEventLog } from '../../flows/flow-events';
import type { Frame, StreamEntry } from '../../lib/stream-follower';
import type { Repositories } from '../../models';
import type { StreamSignal } from '../../lib/stream-signal';
import { mapYields } from '../../lib/redis-streams';
import { formatSse, storedEventMessage, type SseMessage } from '../sse';
import { handOffLive, type SseSource } from '../sse-streams';

/** How often a quiet stream asks the database whether its execution ended without a terminal event. */
export const FLOW_CHECK_MS = 10_000;

/**
 * The SSE stream of one agentflow execution: stored events after `afterSeq`, then live
 * ones, ending with `execution_completed`, `execution_failed` or `cancelled`. As for generations:
 * when the execution ended but its log holds no terminal event (expired, lost),
 * the stream ends with one built from the row instead of waiting forever.
 */
export function flowExecutionSource(
  deps: { events: FlowEventLog; repos: Repositories; checkEveryMs?: number },
  executionId: string,
  afterSeq: number,
): SseSource {
  const liveness = {
    checkEveryMs: deps.checkEveryMs ?? FLOW_CHECK_MS,
    endedAt: async () => {
      const row = await deps.repos.flowExecutions.find(executionId);
      if (!row) return new Date(0);
      return row.status === 'queued' || row.status === 'running' ? null : (row.completedAt ?? row.createdAt);
    },
  };
  return {
    messages(signal, push) {
      let ended = false;
      // Live events go straight to `push` as frames shared by every stream of this execution.
      const live = push && {
        framer: flowFrame,
        push: (frames: Frame[]) => {
          push(frames);
          ended ||= frames[frames.length - 1].terminal;
        },
      };
      const replay = mapYields(deps.events.follow(executionId, afterSeq, signal, liveness, live), ({ seq, event }): SseMessage => {
        ended ||= isFlowTerminal(event);
        return { id: seq, event: event.type, data: JSON.stringify(event) };
      });
      return handOffLive(replay, async function* () {
        if (ended || signal.aborted) return;
        const event = await endedEvent(deps.repos, executionId);
        // No id: it is not a position in the log, so a client's Last-Event-ID stays where it was.
        yield { event: event.type, data: JSON.stringify(event) };
      });
    },
    interrupted: {
      event: 'execution_failed',
      data: JSON.stringify({
        type: 'execution_failed',
        executionId,
        error: { code: 'stream_interrupted', message: 'Event stream interrupted; reconnect with Last-Event-ID' },
      }),
      retry: 1000,
    },
  };
}

/**
 * An agentflow execution's events after `afterSeq`, then live ones, ending with its terminal event
 * (built from the row when the log holds none), or earlier when `signal` aborts.
 */
export async function* flowExecutionEvents(
  deps: { events: FlowEventLog; repos: Repositories; checkEveryMs?: number },
  executionId: string,
  afterSeq: number,
  signal: StreamSignal,
): AsyncGenerator<{ seq: number; event: FlowEvent }> {
  let ended = false;
  const liveness = {
    checkEveryMs: deps.checkEveryMs ?? FLOW_CHECK_MS,
    endedAt: async () => {
      const row = await deps.repos.flowExecutions.find(executionId);
      if (!row) return new Date(0);
      return row.status === 'queued' || row.status === 'running' ? null : (row.completedAt ?? row.createdAt);
    },
  };
  let last = afterSeq;
  for await (const entry of deps.events.follow(executionId, afterSeq, signal, liveness)) {
    ended ||= isFlowTerminal(entry.event);
    last = entry.seq;
    yield entry;
  }
  if (!ended && !signal.aborted) yield { seq: last, event: await endedEvent(deps.repos, executionId) };
}

/** A live log entry as its SSE bytes, exactly as the replay writes it; built once, shared by every stream. */
export function flowFrame([id, value]: StreamEntry): Frame {
  const message = storedEventMessage(Number.parseInt(id, 10), value);
  return { bytes: Buffer.from(formatSse(message)), terminal: isFlowTerminalType(message.event) };
}

/** The terminal event an execution's row implies (its log had none). */
async function endedEvent(repos: Repositories, executionId: string): Promise<FlowEvent> {
  const row = await repos.flowExecutions.find(executionId);
  if (!row) return { type: 'execution_failed', executionId, error: { code: 'not_found', message: 'This execution no longer exists' } };
  if (row.status === 'completed')
    return {
      type: 'execution_completed',
      executionId,
      output: row.output ?? null,
      usage: { inputTokens: row.inputTokens, outputTokens: row.outputTokens, costUsd: row.costUsd },
    };
  if (row.status === 'cancelled') return { type: 'cancelled', executionId };
  return {
    type: 'execution_failed',
    executionId,
    error: row.errorCode ? { code: row.errorCode, message: row.errorMessage ?? '' } : flowError('interrupted'),
  };
}
