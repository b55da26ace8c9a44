/**
 * A standard EventSource (Node's, run with --experimental-eventsource) reading the ticket notes:
 * each message's data appended, until `[DONE]` or `[ERROR] …`. The bearer token goes on every
 * request through the fetch dispatcher, as a browser's cookie or same-origin proxy would carry it.
 *
 * Environment: URL (the stream), ACCESS_TOKEN. Prints one JSON line: `{text, end, messages}`.
 */
// The first fetch creates the global dispatcher the EventSource's requests go through.
await fetch(new URL('/healthz', process.env.URL));
const base = globalThis[Symbol.for('undici.globalDispatcher.1')];
const dispatcher = base.compose(
  (dispatch) => (options, handler) =>
    dispatch({ ...options, headers: { ...options.headers, authorization: `Bearer ${process.env.ACCESS_TOKEN}` } }, handler),
);
const source = new globalThis.EventSource(process.env.URL, { dispatcher });
const result = { text: '', end: null, messages: 0 };
const timer = setTimeout(() => finish('timeout'), 20_000);
function finish(end) {
  result.end = end;
  clearTimeout(timer);
  source.close();
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
source.onmessage = (event) => {
  result.messages += 1;
  if (event.data === '[DONE]' || event.data.startsWith('[ERROR]')) return finish(event.data);
  result.text += event.data;
};
source.onerror = () => finish(`error (readyState ${source.readyState})`);
