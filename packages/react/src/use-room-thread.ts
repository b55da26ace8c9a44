import { followThread, type ChatMessage, type RoomThreadItem, type ThreadAssistantState } from '@switchboard/client';
import { useCallback, useEffect, useRef, useState } from 'react';
import { useSwitchboard } from './context';

/** A message of a room thread: a member's (with its author) or the assistant's answer to one (`replyTo`). */
export interface RoomThreadMessage {
  id: string;
  role: 'user' | 'assistant' | 'tool';
  content: string;
  authorId: string | null;
  authorName: string | null;
  /** On an answer: the member message (its turn) it answers. */
  replyTo: string | null;
  /** The answer was stopped part way. */
  cancelled?: boolean;
}

export interface RoomThreadData {
  threadId?: string;
  messages: RoomThreadMessage[];
  /** The running turn's answer so far (null when no answer streams). */
  streaming: { turnId: string; text: string } | null;
  /** What the assistant does now (`idle` when nothing runs), and the tool it runs or waits to have approved. */
  assistant: { state: ThreadAssistantState; tool?: string; turnId?: string };
  /** Members typing now (each for a few seconds after their last `thread_typing`). */
  typing: Array<{ userId: string; name: string }>;
  /** The last turn that failed, with its error. */
  failed?: { turnId: string; code: string; message: string };
  status: 'loading' | 'live' | 'offline' | 'error';
  /** Why `status` is `error` (e.g. `not_found` for a non-member). */
  error?: string;
}

export interface RoomThreadState extends RoomThreadData {
  /** Posts a message (editors and owners); starts the canvas's first thread when it has none. Rejects with the API error (403 for a viewer). */
  post(text: string): Promise<void>;
  /** Tells the room you are typing (call it on input; the server passes on at most one a second). */
  notifyTyping(): void;
}

/** How long a member shows as typing after their last `thread_typing`. */
export const TYPING_SHOWN_MS = 3_000;

const initial = (threadId?: string): RoomThreadData => ({
  threadId,
  messages: [],
  streaming: null,
  assistant: { state: 'idle' },
  typing: [],
  status: 'loading',
});

/** A history message as the hook keeps it. */
export function fromHistory(message: ChatMessage & { replyTo?: string | null }): RoomThreadMessage {
  return {
    id: message.id,
    role: message.role,
    content: message.content,
    authorId: message.authorId,
    authorName: message.authorName,
    replyTo: message.replyTo ?? null,
    cancelled: message.status === 'cancelled' || undefined,
  };
}

/** A text field of a thread event (empty when it has none). */
const textOf = (value: unknown): string => (typeof value === 'string' ? value : '');

/**
 * The thread's state after one followed item: a member's message is added once (the history may
 * hold it already), an answer's chunks build `streaming`, its end adds the answer once (by the turn
 * it answers) and clears `streaming`.
 */
export function applyThreadItem(state: RoomThreadData, item: RoomThreadItem): RoomThreadData {
  if (item.kind !== 'event') return state;
  const { turnId, event } = item;
  const body = event as Record<string, unknown> & { type: string };
  switch (body.type) {
    case 'message': {
      if (state.messages.some((m) => m.id === body.messageId)) return state;
      const message: RoomThreadMessage = {
        id: String(body.messageId),
        role: 'user',
        content: String(body.content),
        authorId: (body.authorId as string | null) ?? null,
        authorName: (body.authorName as string | null) ?? null,
        replyTo: null,
      };
      return { ...state, messages: [...state.messages, message] };
    }
    case 'assistant_state':
      return { ...state, assistant: { state: body.state as ThreadAssistantState, tool: body.tool as string | undefined, turnId } };
    case 'text_chunk': {
      const running = state.streaming;
      const text = running && running.turnId === turnId ? running.text : '';
      return { ...state, streaming: { turnId, text: text + textOf(body.text) } };
    }
    case 'final':
    case 'cancelled': {
      const streaming = state.streaming?.turnId === turnId ? null : state.streaming;
      if (state.messages.some((m) => m.role === 'assistant' && m.replyTo === turnId)) return { ...state, streaming };
      const answer: RoomThreadMessage = {
        id: `answer:${turnId}`,
        role: 'assistant',
        content: textOf(body.response),
        authorId: null,
        authorName: null,
        replyTo: turnId,
        cancelled: body.type === 'cancelled' || undefined,
      };
      return { ...state, streaming, messages: [...state.messages, answer] };
    }
    case 'error':
      return {
        ...state,
        streaming: state.streaming?.turnId === turnId ? null : state.streaming,
        failed: { turnId, code: String(body.code), message: textOf(body.message) },
      };
    default:
      return state;
  }
}

/**
 * A canvas's room thread, live: its messages with their authors, the running turn's answer as it
 * streams, what the assistant does, who is typing, and `post`. Without `threadId`, the canvas's most
 * recently active thread (the first `post` starts one when it has none). Rides on the provider's
 * `/canvas` socket: after a reconnect the missed events are handed on in order, exactly once; when
 * the room no longer keeps them the history is read again.
 */
export function useRoomThread(canvasId: string | undefined, threadId?: string): RoomThreadState {
  const { client, canvasSocket } = useSwitchboard();
  const [state, setState] = useState<RoomThreadData>(() => initial(threadId));
  const current = useRef<{ canvasId?: string; threadId?: string }>({});
  const [started, setStarted] = useState<string | undefined>(undefined);
  const followed = threadId ?? started;

  useEffect(() => {
    if (!canvasId) return undefined;
    let active = true;
    const cleanups: Array<() => void> = [];
    const typingTimers = new Map<string, ReturnType<typeof setTimeout>>();
    const update = (change: (previous: RoomThreadData) => RoomThreadData) => active && setState(change);
    setState(initial(followed));

    const loadHistory = async (id: string) => {
      const history = await client.chat.historyAll(id);
      const messages = history.messages.map((m) => fromHistory(m));
      update((previous) => ({ ...previous, messages }));
    };

    void (async () => {
      const id = followed ?? (await client.threads.list(canvasId, { limit: 1 })).threads[0]?.id;
      current.current = { canvasId, threadId: id };
      if (!active) return;
      if (!id) return update((previous) => ({ ...previous, status: 'live' }));
      update((previous) => ({ ...previous, threadId: id }));
      const room = await canvasSocket();
      if (!active) return;
      const onTyping = (payload: { canvasId: string; threadId: string; userId: string; name: string }) => {
        if (payload.canvasId !== canvasId || payload.threadId !== id) return;
        clearTimeout(typingTimers.get(payload.userId));
        typingTimers.set(
          payload.userId,
          setTimeout(() => {
            typingTimers.delete(payload.userId);
            update((previous) => ({ ...previous, typing: previous.typing.filter((t) => t.userId !== payload.userId) }));
          }, TYPING_SHOWN_MS),
        );
        update((previous) => ({
          ...previous,
          typing: [...previous.typing.filter((t) => t.userId !== payload.userId), { userId: payload.userId, name: payload.name }],
        }));
      };
      const onConnect = () => update((previous) => ({ ...previous, status: 'live' }));
      const onDisconnect = () => update((previous) => ({ ...previous, status: 'offline' }));
      room.on('thread_typing', onTyping);
      room.on('connect', onConnect);
      room.on('disconnect', onDisconnect);
      cleanups.push(() => {
        room.off('thread_typing', onTyping);
        room.off('connect', onConnect);
        room.off('disconnect', onDisconnect);
      });
      const follower = await followThread(room, client, canvasId, id, {
        load: () => loadHistory(id),
        onItem: (item) =>
          item.kind === 'resync'
            ? // A failed reload leaves what is shown; the next resync or remount reads it again.
              void loadHistory(id).catch((error: unknown) => console.warn('room thread history not reloaded after a resync', error))
            : update((previous) => applyThreadItem(previous, item)),
      });
      cleanups.push(() => follower.stop());
      if (!active) return follower.stop();
      if (follower.joined.ok) update((previous) => ({ ...previous, status: room.connected ? 'live' : 'offline' }));
      else {
        const code = follower.joined.error.code;
        update((previous) => ({ ...previous, status: 'error', error: code }));
      }
    })().catch((error: unknown) =>
      update((previous) => ({ ...previous, status: 'error', error: error instanceof Error ? error.message : String(error) })),
    );

    return () => {
      active = false;
      cleanups.forEach((cleanup) => cleanup());
      typingTimers.forEach((timer) => clearTimeout(timer));
    };
  }, [canvasId, followed, client, canvasSocket]);

  const post = useCallback(
    async (text: string) => {
      if (!canvasId) throw new Error('useRoomThread has no canvas to post to');
      let id = current.current.canvasId === canvasId ? current.current.threadId : undefined;
      if (!id) {
        id = (await client.threads.create(canvasId)).thread.id;
        current.current = { canvasId, threadId: id };
        setStarted(id);
      }
      await client.threads.post(canvasId, id, { message: text });
    },
    [canvasId, client],
  );

  const notifyTyping = useCallback(() => {
    const { threadId: id } = current.current;
    if (!canvasId || !id) return;
    // Typing is volatile: a socket not connected drops it.
    void canvasSocket().then(
      (room) => room.volatile.emit('thread:typing', { canvasId, threadId: id }),
      () => undefined,
    );
  }, [canvasId, canvasSocket]);

  return { ...state, post, notifyTyping };
}
