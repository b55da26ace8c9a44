import type { SseMessage } from '../sse';

/**
 * Ticket notes as plain-text `data:` lines that two kinds of reader both show with their line breaks:
 *
 * - a reader that splits the body on `\n` and appends each `data: ` line's rest to the notes;
 * - a standard EventSource, which joins the `data:` lines of one message with `\n`.
 *
 * A chunk `line 1\nline 2` goes out as `data: line 1\r\ndata: line 2\n\n`. SSE allows `\r\n`, `\r`
 * and `\n` as line endings, so EventSource reads the message as `line 1\nline 2`. The `\n`-splitting
 * reader keeps the `\r` of the first line: it appends `line 1\r` then `line 2`, and `\r` is a line
 * ending in CommonMark, so the markdown renders the same lines. A chunk's last line ends with a plain
 * `\n`, adding nothing, so a chunk cut mid-line by the model's streaming joins up again.
 *
 * `[DONE]` and `[ERROR] …` are written as they are. The one thing this format cannot carry: a line
 * of the notes that is exactly `[DONE]` or begins with `[ERROR]`, which that reader would take for
 * the end of the stream (the JSON chunks of the native stream have no such line).
 */
export function notesDialect(message: SseMessage): SseMessage {
  if (!message.data.startsWith('{')) return message;
  const { text } = JSON.parse(message.data) as { type: 'chunk'; text: string };
  const lines = text.split(/\r\n|\r|\n/);
  const wire = lines.map((line, index) => `data: ${line}${index < lines.length - 1 ? '\r\n' : '\n'}`).join('');
  return { data: text, wire: `${wire}\n` };
}
