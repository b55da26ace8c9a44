import { Readable } from 'node:stream';
import { NodeStreamResponse } from '../../src/ai/model-fetch';
import { readCompletionChunks } from '../../src/ai/model-stream';

/** One chat completion chunk as a provider streams it: a few characters of a tool call's arguments. */
function chunkLine(index: number): string {
  const chunk = {
    id: 'chatcmpl-1',
    object: 'chat.completion.chunk',
    created: 1,
    model: 'm',
    choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: `word${index} ` } }] }, finish_reason: null }],
  };
  return `data: ${JSON.stringify(chunk)}\n\n`;
}

/** A body whose every byte is already buffered, in reads of about 4 KiB: what a fast provider leaves in the socket. */
function bufferedBody(chunks: number): Readable {
  const body = new Readable({ read() {} });
  let read = '';
  for (let index = 0; index < chunks; index += 1) {
    read += chunkLine(index);
    if (read.length >= 4096) {
      body.push(Buffer.from(read));
      read = '';
    }
  }
  body.push(Buffer.from(`${read}data: [DONE]\n\n`));
  body.push(null);
  return body;
}

describe('readCompletionChunks', () => {
  test('a stream that is all buffered gives the event loop a turn every 64 KiB, and still yields every chunk in order', async () => {
    const total = 4_000; // about 800 KiB
    const response = new NodeStreamResponse(bufferedBody(total), { status: 200 });
    let seen = 0;
    const turns: number[] = [];
    // An immediate re-armed on every turn of the loop: where the reader let the loop run, by chunks seen.
    let stopped = false;
    const tick = () => {
      if (stopped) return;
      turns.push(seen);
      setImmediate(tick);
    };
    setImmediate(tick);
    const args: string[] = [];
    for await (const chunk of readCompletionChunks(response)) {
      args.push(chunk.choices[0].delta.tool_calls?.[0].function?.arguments ?? '');
      seen += 1;
    }
    stopped = true;
    expect(args).toHaveLength(total);
    expect(args.slice(0, 3)).toEqual(['word0 ', 'word1 ', 'word2 ']);
    expect(args.at(-1)).toBe(`word${total - 1} `);
    // A chunk line is about 200 bytes: a turn at least every ~330 chunks, so the loop ran many times
    // while the stream was read, and not only after all of it.
    const during = turns.filter((at) => at > 0 && at < total);
    expect(during.length).toBeGreaterThanOrEqual(8);
    const gaps = during.map((at, i) => at - (during[i - 1] ?? 0));
    expect(Math.max(...gaps)).toBeLessThanOrEqual(400);
  });

  test('a stream that arrives slower than it is read takes no turn of its own between reads', async () => {
    const body = new Readable({ read() {} });
    const response = new NodeStreamResponse(body, { status: 200 });
    const reader = readCompletionChunks(response)[Symbol.asyncIterator]();
    body.push(Buffer.from(chunkLine(0)));
    const first = await reader.next();
    expect(first.done).toBe(false);
    // The next read's chunk is handed over within the same turn it arrives in: no immediate runs in between.
    let immediateRan = false;
    const next = reader.next();
    body.push(Buffer.from(chunkLine(1)));
    setImmediate(() => (immediateRan = true));
    const second = await next;
    expect(second.done).toBe(false);
    expect(immediateRan).toBe(false);
    body.push(Buffer.from('data: [DONE]\n\n'));
    body.push(null);
    expect((await reader.next()).done).toBe(true);
  });
});
