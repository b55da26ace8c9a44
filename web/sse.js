// Server-Sent Events for the console: the SDK's parser (@switchboard/client, served built at
// /console/sdk/), with `data` parsed as JSON when it is JSON.
import { readSseMessages } from '/console/sdk/switchboard-client.js';

/**
 * Reads `stream` (a ReadableStream of bytes) to its end, calling `onMessage({id, event, data})`
 * for each message. `id` is the last event id seen so far (the stream's `Last-Event-ID`).
 */
export async function readSse(stream, onMessage) {
  let lastId;
  for await (const message of readSseMessages(stream)) {
    if (message.id !== undefined) lastId = message.id;
    let data = message.data;
    try {
      data = JSON.parse(message.data);
    } catch {
      // not JSON: keep the text
    }
    onMessage({ id: lastId, event: message.event, data });
  }
}
