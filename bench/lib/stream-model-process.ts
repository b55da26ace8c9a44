/**
 * A realistic streaming model in a process of its own (so its CPU is not counted as ours): the
 * first turn of a conversation streams `[calls:N]` create_text tool calls whose arguments arrive
 * in ~4-character deltas (about one per token, as real models stream), as fast as the socket takes
 * them; a turn that carries tool results answers one line. It reports over IPC when each turn's
 * first call was complete on the wire and when its last byte left. A prompt that carries `[text]`
 * gets a short plain answer in a few deltas, written at once (the light runs of the run-throughput
 * scenario: a chatflow turn and a chat turn without a device); those turns are not recorded.
 *
 * Protocol (IPC): on start it sends `{ready, port}`; `{id, cmd: 'turn', tag}` → `{id, turn}`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { now, toWire } from './timing';

/** Characters of text per paragraph: ~54 argument deltas per call, ~10,900 chunks for 200 calls. */
const TEXT_CHARS = 200;
const DELTA_CHARS = 4;
/** The plain answer of a `[text]` turn, one delta per word (8 deltas). */
const TEXT_ANSWER = 'Sure: the plan ships on Monday, as agreed.';

interface TurnStamps {
  chunks: number;
  bytes: number;
  /** When the request's body had arrived. */
  requestAt?: string;
  /** Just before the write that completes the first call's arguments. */
  firstCallAt?: string;
  /** When the response's last byte was handed to the OS. */
  lastByteAt?: string;
}

const turns = new Map<string, TurnStamps>();

const server = http.createServer({ noDelay: true }, (req, res) => {
  const parts: Buffer[] = [];
  req.on('data', (part: Buffer) => parts.push(part));
  req.on('end', () => {
    const requestAt = toWire(now());
    // Anything but a chat completion (the API's start-up probe of the provider lists the models)
    // answers an empty model list.
    if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: [] }));
      return;
    }
    const body = JSON.parse(Buffer.concat(parts).toString('utf8')) as {
      model: string;
      messages: Array<{ role: string; content: unknown }>;
    };
    const frame = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      `data: ${JSON.stringify({ id: 'chatcmpl-r', object: 'chat.completion.chunk', created: 0, model: body.model, choices, ...extra })}\n\n`;
    const delta = (d: Record<string, unknown>, finish: string | null = null) => frame([{ index: 0, delta: d, finish_reason: finish }]);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    if (body.messages.some((message) => message.role === 'tool')) {
      res.end(delta({ role: 'assistant', content: '' }) + delta({ content: 'Done.' }) + delta({}, 'stop') + 'data: [DONE]\n\n');
      return;
    }
    const prompt = String(body.messages.filter((message) => message.role === 'user').at(-1)?.content ?? '');
    if (prompt.includes('[text]')) {
      const words = TEXT_ANSWER.split(/(?<= )/);
      const usage = { prompt_tokens: 40, completion_tokens: words.length, total_tokens: 40 + words.length };
      res.end(
        delta({ role: 'assistant', content: '' }) +
          words.map((word) => delta({ content: word })).join('') +
          delta({}, 'stop') +
          frame([], { usage }) +
          'data: [DONE]\n\n',
      );
      return;
    }
    const tag = /\[run:([^\]]+)\]/.exec(prompt)?.[1] ?? 'untagged';
    const calls = Number(/\[calls:(\d+)\]/.exec(prompt)?.[1] ?? 200);
    const stamps: TurnStamps = { chunks: 0, bytes: 0, requestAt };
    turns.set(tag, stamps);
    const send = (text: string, chunks: number) => {
      stamps.chunks += chunks;
      stamps.bytes += Buffer.byteLength(text);
      return res.write(text);
    };
    send(delta({ role: 'assistant', content: '' }), 1);
    let index = 0;
    // One write per call (its ~55 chunks), waiting for 'drain' whenever the socket pushes back.
    const writeCalls = () => {
      while (index < calls) {
        const args = JSON.stringify({ text: `Paragraph ${index + 1}. ${'Lorem ipsum dolor sit amet, '.repeat(8)}`.slice(0, TEXT_CHARS) });
        let text = delta({
          tool_calls: [{ index, id: `call_${index}`, type: 'function', function: { name: 'create_text', arguments: '' } }],
        });
        let chunks = 1;
        for (let i = 0; i < args.length; i += DELTA_CHARS) {
          text += delta({ tool_calls: [{ index, function: { arguments: args.slice(i, i + DELTA_CHARS) } }] });
          chunks += 1;
        }
        if (index === 0) stamps.firstCallAt = toWire(now());
        index += 1;
        if (!send(text, chunks)) return void res.once('drain', writeCalls);
      }
      const usage = { prompt_tokens: 120, completion_tokens: stamps.chunks, total_tokens: 120 + stamps.chunks };
      res.end(delta({}, 'tool_calls') + frame([], { usage }) + 'data: [DONE]\n\n', () => {
        stamps.lastByteAt = toWire(now());
      });
      stamps.chunks += 2;
    };
    writeCalls();
  });
});

server.listen(0, '127.0.0.1', () => {
  process.send?.({ ready: true, port: (server.address() as AddressInfo).port });
});

process.on('message', (message: { id: number; cmd: string; tag?: string }) => {
  if (message.cmd === 'turn') process.send?.({ id: message.id, turn: turns.get(message.tag ?? '') ?? null });
  if (message.cmd === 'stop') server.close(() => process.exit(0));
});
process.on('disconnect', () => process.exit(0));
