// A Server-Sent Events reader over a fetch() body, following the WHATWG parsing rules:
// lines end in CRLF, LF or CR; `:` starts a comment; a blank line dispatches the message.

/**
 * Reads `stream` (a ReadableStream of bytes) to its end, calling `onMessage({id, event, data})`
 * for each message. `data` is parsed as JSON when it is JSON, else left as text.
 */
export async function readSse(stream, onMessage) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let message = { id: undefined, event: 'message', data: [] };

  const dispatch = () => {
    if (message.data.length > 0) {
      const text = message.data.join('\n');
      let data = text;
      try {
        data = JSON.parse(text);
      } catch {
        // not JSON: keep the text
      }
      onMessage({ id: message.id, event: message.event, data });
    }
    message = { id: message.id, event: 'message', data: [] };
  };

  const handleLine = (line) => {
    if (line === '') return dispatch();
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') message.data.push(value);
    else if (field === 'event') message.event = value;
    else if (field === 'id' && !value.includes('\0')) message.id = value;
  };

  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    // A CR at the very end may be the first half of a CRLF: keep it until the next chunk.
    const lines = buffer.split(/\r\n|\n|\r(?!$)/);
    buffer = lines.pop() ?? '';
    lines.forEach(handleLine);
  }
  if (buffer) handleLine(buffer.replace(/\r$/, ''));
  dispatch();
}
