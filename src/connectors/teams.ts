import { cleanList, endsFetch, inWindow, timeWindow } from './filter';
import { GraphSession } from './graph';
import type { FetchContext } from './index';
import { htmlToText, tidy } from './text';
import type { ConnectorItem, FetchResult } from './types';

/** The fields of a Graph `chat` we read. */
interface GraphChat {
  id: string;
  topic?: string | null;
}

/** The fields of a Graph `chatMessage` we read. */
interface GraphChatMessage {
  id: string;
  messageType?: string;
  createdDateTime?: string;
  lastModifiedDateTime?: string | null;
  deletedDateTime?: string | null;
  from?: { user?: { id?: string; displayName?: string | null } | null; application?: { displayName?: string | null } | null } | null;
  body?: { contentType?: string; content?: string } | null;
}

function toItem(chat: GraphChat, message: GraphChatMessage, created: Date): ConnectorItem {
  const content = message.body?.content ?? '';
  return {
    // Chat message ids are only unique within their chat.
    id: `${chat.id}/${message.id}`,
    provider: 'teams',
    kind: 'chat_message',
    sender: message.from?.user?.displayName ?? message.from?.application?.displayName ?? undefined,
    date: created.toISOString(),
    text: message.body?.contentType?.toLowerCase() === 'html' ? htmlToText(content) : tidy(content),
    channel: chat.topic ?? chat.id,
  };
}

/**
 * Teams chat messages since `since`: every chat of the user (`/me/chats`), then each chat's
 * messages changed since then (`lastModifiedDateTime gt since`, newest first), every page.
 * dateRange applies to when a message was written; senders match the sender's display name or
 * user id (chat messages carry no email address); labels do not apply. System events and deleted
 * messages are skipped. A chat whose messages cannot be read yields one error and the rest go on.
 */
export async function* fetchTeams(ctx: FetchContext): AsyncGenerator<FetchResult> {
  const session = new GraphSession('teams', ctx.settings, ctx.tokens, ctx.onTokens, ctx.signal);
  const written = timeWindow({ dateRange: ctx.filter.dateRange });
  const changedAfter = timeWindow(ctx.filter, ctx.since).after;
  const senders = new Set(cleanList(ctx.filter.senders).map((sender) => sender.toLowerCase()));
  const wanted = (message: GraphChatMessage, created: Date) => {
    if (message.messageType !== 'message' || message.deletedDateTime) return false;
    if (!inWindow(created, written)) return false;
    const modified = new Date(message.lastModifiedDateTime ?? message.createdDateTime ?? '');
    if (ctx.since && !(modified.getTime() > ctx.since.getTime())) return false;
    if (!senders.size) return true;
    const user = message.from?.user;
    return [user?.displayName, user?.id].some((value) => value && senders.has(value.toLowerCase()));
  };

  let remaining = ctx.maxItems ?? Number.POSITIVE_INFINITY;
  const chatPages = session.pages<GraphChat>((client) => client.api('/me/chats').top(50));
  for await (const chats of chatPages) {
    for (const chat of chats) {
      if (remaining <= 0) return;
      const messagePages = session.pages<GraphChatMessage>((client) => {
        const request = client.api(`/chats/${encodeURIComponent(chat.id)}/messages`).top(ctx.pageSize ?? 50);
        if (!changedAfter) return request;
        // Graph only filters chat messages on lastModifiedDateTime, ordered by it.
        return request
          .orderby('lastModifiedDateTime desc')
          .filter(encodeURIComponent(`lastModifiedDateTime gt ${changedAfter.toISOString()}`));
      });
      try {
        for await (const messages of messagePages) {
          for (const message of messages) {
            const created = new Date(message.createdDateTime ?? '');
            if (Number.isNaN(created.getTime()) || !wanted(message, created)) continue;
            if (remaining <= 0) return;
            ctx.signal?.throwIfAborted();
            remaining -= 1;
            yield { item: toItem(chat, message, created) };
          }
        }
      } catch (error) {
        if (endsFetch(error)) throw error;
        remaining -= 1;
        yield { error: { id: chat.id, message: `Teams chat could not be read: ${(error as Error).message}` } };
      }
    }
  }
}
