import type { ChatRequest } from '@switchboard/client';
import { useCallback, useEffect, useRef, useState } from 'react';
import { useSwitchboard } from './context';

export interface ChatMessageItem {
  id?: string;
  role: 'user' | 'assistant' | 'tool';
  content: string;
  /** The answer was stopped part way. */
  cancelled?: boolean;
}

export type ChatStatus = 'idle' | 'loading' | 'streaming' | 'stopping' | 'error';

export interface ChatState {
  sessionId?: string;
  messages: ChatMessageItem[];
  status: ChatStatus;
  error?: string;
  /** Sends a message and streams the answer into `messages`; resolves when the turn ends. */
  send(message: string, options?: Pick<ChatRequest, 'deviceId' | 'tools' | 'config'>): Promise<void>;
  /** Stops the running turn; the answer so far stays, marked `cancelled`. */
  stop(): Promise<void>;
}

/** The assistant chat of one session (a new one when `sessionId` is left out: the first answer names it). */
export function useChat(sessionId?: string): ChatState {
  const { client } = useSwitchboard();
  const [state, setState] = useState<Omit<ChatState, 'send' | 'stop'>>({ sessionId, messages: [], status: sessionId ? 'loading' : 'idle' });
  const session = useRef<string | undefined>(sessionId);
  const controller = useRef<AbortController | null>(null);

  useEffect(() => {
    let active = true;
    session.current = sessionId;
    setState({ sessionId, messages: [], status: sessionId ? 'loading' : 'idle' });
    if (sessionId) {
      client.chat.historyAll(sessionId).then(
        (history) =>
          active &&
          setState({
            sessionId,
            status: 'idle',
            messages: history.messages.map((m) => ({
              id: m.id,
              role: m.role,
              content: m.content,
              cancelled: m.status === 'cancelled' || undefined,
            })),
          }),
        (error: unknown) =>
          active &&
          setState((previous) => ({ ...previous, status: 'error', error: error instanceof Error ? error.message : String(error) })),
      );
    }
    return () => {
      active = false;
      controller.current?.abort();
    };
  }, [client, sessionId]);

  const send = useCallback(
    async (message: string, options: Pick<ChatRequest, 'deviceId' | 'tools' | 'config'> = {}) => {
      controller.current?.abort();
      const abort = new AbortController();
      controller.current = abort;
      const setAnswer = (change: (answer: ChatMessageItem) => ChatMessageItem) =>
        setState((previous) => ({
          ...previous,
          messages: [...previous.messages.slice(0, -1), change(previous.messages[previous.messages.length - 1])],
        }));
      setState((previous) => ({
        ...previous,
        status: 'streaming',
        error: undefined,
        messages: [...previous.messages, { role: 'user', content: message }, { role: 'assistant', content: '' }],
      }));
      try {
        const stream = client.chat.stream(
          { message, ...(session.current ? { sessionId: session.current } : {}), ...options },
          {
            signal: abort.signal,
            onStart: ({ sessionId: started }) => {
              session.current = started;
              setState((previous) => ({ ...previous, sessionId: started }));
            },
          },
        );
        for await (const event of stream) {
          if (event.type === 'text_chunk') setAnswer((answer) => ({ ...answer, content: answer.content + event.text }));
          else if (event.type === 'final') setAnswer((answer) => ({ ...answer, content: event.response }));
          else if (event.type === 'cancelled') setAnswer((answer) => ({ ...answer, content: event.response, cancelled: true }));
          else if (event.type === 'error')
            setState((previous) => ({ ...previous, status: 'error', error: `${event.code}: ${event.message}` }));
        }
        setState((previous) => (previous.status === 'error' ? previous : { ...previous, status: 'idle' }));
      } catch (error) {
        if (!abort.signal.aborted)
          setState((previous) => ({ ...previous, status: 'error', error: error instanceof Error ? error.message : String(error) }));
      } finally {
        if (controller.current === abort) controller.current = null;
      }
    },
    [client],
  );

  const stop = useCallback(async () => {
    if (!session.current || !controller.current) return;
    setState((previous) => ({ ...previous, status: 'stopping' }));
    try {
      await client.chat.cancel(session.current);
    } catch {
      // 409 not_running: the turn ended first.
    }
  }, [client]);

  return { ...state, send, stop };
}
