import { cleanList, timeWindow } from './filter';
import { GraphSession, odataString } from './graph';
import type { FetchContext } from './types';
import { htmlToText, tidy } from './text';
import type { ConnectorItem, FetchResult, FilterConfig } from './types';

/** The fields of a Graph `message` we read. */
interface GraphMessage {
  id: string;
  subject?: string | null;
  receivedDateTime?: string;
  from?: { emailAddress?: { name?: string; address?: string } } | null;
  body?: { contentType?: string; content?: string } | null;
  categories?: string[];
}

const SELECT = ['id', 'subject', 'from', 'receivedDateTime', 'body', 'categories'];

/**
 * The OData `$filter` for a filter: the time window on receivedDateTime, any of the senders, any
 * of the labels as Outlook categories. Undefined when nothing restricts the mailbox.
 */
export function outlookFilter(filter: FilterConfig, since?: Date): string | undefined {
  const clauses: string[] = [];
  const { after, before } = timeWindow(filter, since);
  if (after) clauses.push(`receivedDateTime ge ${after.toISOString()}`);
  if (before) clauses.push(`receivedDateTime lt ${before.toISOString()}`);
  const senders = cleanList(filter.senders).map((sender) => `from/emailAddress/address eq ${odataString(sender.toLowerCase())}`);
  if (senders.length) clauses.push(`(${senders.join(' or ')})`);
  const labels = cleanList(filter.labels).map((label) => `categories/any(c:c eq ${odataString(label)})`);
  if (labels.length) clauses.push(`(${labels.join(' or ')})`);
  return clauses.length ? clauses.join(' and ') : undefined;
}

function toItem(message: GraphMessage): ConnectorItem {
  const date = new Date(message.receivedDateTime ?? '');
  if (Number.isNaN(date.getTime())) throw new Error('message has no readable receivedDateTime');
  const { name, address } = message.from?.emailAddress ?? {};
  const content = message.body?.content ?? '';
  return {
    id: message.id,
    provider: 'outlook',
    kind: 'email',
    subject: message.subject ?? undefined,
    sender: address ? (name && name !== address ? `${name} <${address}>` : address) : name,
    date: date.toISOString(),
    text: message.body?.contentType?.toLowerCase() === 'html' ? htmlToText(content) : tidy(content),
    labels: message.categories ?? [],
  };
}

/** Outlook mail matching the filter since `since`, every page (`@odata.nextLink`). */
export async function* fetchOutlook(ctx: FetchContext): AsyncGenerator<FetchResult> {
  const session = new GraphSession('outlook', ctx.settings, ctx.tokens, ctx.onTokens, ctx.signal);
  const filter = outlookFilter(ctx.filter, ctx.since);
  let remaining = ctx.maxItems ?? Number.POSITIVE_INFINITY;
  const pages = session.pages<GraphMessage>(
    (client) => {
      const request = client
        .api('/me/messages')
        .select(SELECT)
        .top(ctx.pageSize ?? 50);
      // The SDK puts query values into the URL as given.
      return filter ? request.filter(encodeURIComponent(filter)) : request;
    },
    { Prefer: 'outlook.body-content-type="text"' },
  );
  for await (const messages of pages) {
    for (const message of messages) {
      if (remaining <= 0) return;
      ctx.signal?.throwIfAborted();
      remaining -= 1;
      let result: FetchResult;
      try {
        result = { item: toItem(message) };
      } catch (error) {
        result = { error: { id: String(message.id), message: `Outlook message could not be read: ${(error as Error).message}` } };
      }
      yield result;
    }
  }
}
