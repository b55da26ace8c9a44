import { cleanList, endsFetch, inWindow, timeWindow } from './filter';
import { GraphSession } from './graph';
import type { FetchContext } from './types';
import { htmlToText, tidy } from './text';
import type { ConnectorItem, FetchResult } from './types';

/** The fields of a Graph `chat` we read. */
interface GraphChat {
  id: string;
  topic?: string | null;
}

/** The fields of a Graph `team` (from `/me/joinedTeams`) we read. */
interface GraphTeam {
  id: string;
  displayName?: string | null;
}

/** The fields of a Graph `channel` we read. */
interface GraphChannel {
  id: string;
  displayName?: string | null;
}

/** The fields of a Graph `chatMessage` we read (chat and channel messages alike). */
interface GraphChatMessage {
  id: string;
  messageType?: string;
  createdDateTime?: string;
  lastModifiedDateTime?: string | null;
  deletedDateTime?: string | null;
  from?: { user?: { id?: string; displayName?: string | null } | null; application?: { displayName?: string | null } | null } | null;
  body?: { contentType?: string; content?: string } | null;
}

/** Where a message was read: its item id prefix (message ids are only unique within it), kind and the name shown as `channel`. */
interface Place {
  idPrefix: string;
  kind: ConnectorItem['kind'];
  name: string;
}

function toItem(place: Place, message: GraphChatMessage, created: Date): ConnectorItem {
  const content = message.body?.content ?? '';
  return {
    id: `${place.idPrefix}/${message.id}`,
    provider: 'teams',
    kind: place.kind,
    sender: message.from?.user?.displayName ?? message.from?.application?.displayName ?? undefined,
    date: created.toISOString(),
    text: message.body?.contentType?.toLowerCase() === 'html' ? htmlToText(content) : tidy(content),
    channel: place.name,
  };
}

type MessagePages = AsyncGenerator<GraphChatMessage[]>;

/**
 * Teams messages since `since`, in two parts read the same way:
 * - chats: every chat of the user (`/me/chats`), then each chat's messages changed since then
 *   (`lastModifiedDateTime gt since`, newest first), every page;
 * - channels: every team the user joined (`/me/joinedTeams`), each team's channels, then each
 *   channel's top-level messages through Graph's channel message delta, filtered the same way
 *   (`lastModifiedDateTime gt since`; delta takes no `$orderby`). Replies to a channel message are
 *   not part of a channel's delta and are not read.
 * dateRange applies to when a message was written; senders match the sender's display name or
 * user id (Teams messages carry no email address); labels do not apply. System events and deleted
 * messages are skipped. A chat, team or channel that cannot be read yields one error and the rest
 * goes on (an account connected before channels were asked for cannot list its teams: one error,
 * its chats still arrive).
 */
export async function* fetchTeams(ctx: FetchContext): AsyncGenerator<FetchResult> {
  const session = new GraphSession('teams', ctx.settings, ctx.tokens, ctx.onTokens, ctx.signal);
  const written = timeWindow({ dateRange: ctx.filter.dateRange });
  const changedAfter = timeWindow(ctx.filter, ctx.since).after;
  const senders = new Set(cleanList(ctx.filter.senders).map((sender) => sender.toLowerCase()));
  const top = ctx.pageSize ?? 50;
  const changedFilter = changedAfter ? encodeURIComponent(`lastModifiedDateTime gt ${changedAfter.toISOString()}`) : undefined;
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

  /** The wanted messages of one place; a place that cannot be read is one error (`what` names it). */
  async function* read(place: Place, pages: MessagePages, what: string): AsyncGenerator<FetchResult> {
    try {
      for await (const messages of pages) {
        for (const message of messages) {
          const created = new Date(message.createdDateTime ?? '');
          if (Number.isNaN(created.getTime()) || !wanted(message, created)) continue;
          if (remaining <= 0) return;
          ctx.signal?.throwIfAborted();
          remaining -= 1;
          yield { item: toItem(place, message, created) };
        }
      }
    } catch (error) {
      if (endsFetch(error)) throw error;
      remaining -= 1;
      yield { error: { id: place.idPrefix, message: `${what} could not be read: ${(error as Error).message}` } };
    }
  }

  /** Every joined team's channels; a team list or channel list that cannot be read is one error. */
  async function* channelMessages(): AsyncGenerator<FetchResult> {
    const teams: GraphTeam[] = [];
    try {
      for await (const page of session.pages<GraphTeam>((client) => client.api('/me/joinedTeams'))) teams.push(...page);
    } catch (error) {
      if (endsFetch(error)) throw error;
      remaining -= 1;
      yield { error: { id: 'joinedTeams', message: `Teams channels could not be listed: ${(error as Error).message}` } };
      return;
    }
    for (const team of teams) {
      if (remaining <= 0) return;
      const channels: GraphChannel[] = [];
      try {
        const path = `/teams/${encodeURIComponent(team.id)}/channels`;
        for await (const page of session.pages<GraphChannel>((client) => client.api(path))) channels.push(...page);
      } catch (error) {
        if (endsFetch(error)) throw error;
        remaining -= 1;
        yield {
          error: { id: team.id, message: `Teams team ${team.displayName ?? team.id} could not be read: ${(error as Error).message}` },
        };
        continue;
      }
      for (const channel of channels) {
        if (remaining <= 0) return;
        const path = `/teams/${encodeURIComponent(team.id)}/channels/${encodeURIComponent(channel.id)}/messages/delta`;
        const pages = session.pages<GraphChatMessage>((client) => {
          const request = client.api(path).top(top);
          return changedFilter ? request.filter(changedFilter) : request;
        });
        const name = `${team.displayName ?? team.id} / ${channel.displayName ?? channel.id}`;
        yield* read({ idPrefix: `${team.id}/${channel.id}`, kind: 'channel_message', name }, pages, 'Teams channel');
      }
    }
  }

  for await (const chats of session.pages<GraphChat>((client) => client.api('/me/chats').top(50))) {
    for (const chat of chats) {
      if (remaining <= 0) return;
      const pages = session.pages<GraphChatMessage>((client) => {
        const request = client.api(`/chats/${encodeURIComponent(chat.id)}/messages`).top(top);
        // Graph only filters chat messages on lastModifiedDateTime, ordered by it.
        return changedFilter ? request.orderby('lastModifiedDateTime desc').filter(changedFilter) : request;
      });
      yield* read({ idPrefix: chat.id, kind: 'chat_message', name: chat.topic ?? chat.id }, pages, 'Teams chat');
    }
  }

  if (remaining <= 0 || !ctx.filter.channels) return;
  yield* channelMessages();
}
