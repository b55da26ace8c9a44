import { Readable } from 'node:stream';
import { NodeStreamResponse } from '../../src/ai/model-fetch';
import { ArgumentsDelta, readCompletionBatches, type CompletionBatch } from '../../src/ai/model-stream';

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

/** Every item of every batch, in order. */
async function items(batches: AsyncIterable<CompletionBatch>): Promise<CompletionBatch> {
  const all: CompletionBatch = [];
  for await (const batch of batches) all.push(...batch);
  return all;
}

/** The arguments an item adds to its tool call: a delta read without a parse, or a parsed chunk's first call. */
const argumentsOf = (item: CompletionBatch[number]) =>
  item instanceof ArgumentsDelta ? item.text : (item.choices[0]?.delta.tool_calls?.[0]?.function?.arguments ?? '');

describe('readCompletionBatches', () => {
  test('a stream that is all buffered gives the event loop a turn every 64 KiB, and still yields every chunk in order', async () => {
    const total = 4_000; // about 800 KiB
    const response = new NodeStreamResponse(bufferedBody(total), { status: 200 });
    let seen = 0;
    let shortcuts = 0;
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
    for await (const batch of readCompletionBatches(response))
      for (const item of batch) {
        if (item instanceof ArgumentsDelta) shortcuts += 1;
        args.push(argumentsOf(item));
        seen += 1;
      }
    stopped = true;
    expect(args).toHaveLength(total);
    expect(args.slice(0, 3)).toEqual(['word0 ', 'word1 ', 'word2 ']);
    expect(args.at(-1)).toBe(`word${total - 1} `);
    // All but the first delta were read without a parse.
    expect(shortcuts).toBe(total - 1);
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
    const reader = readCompletionBatches(response)[Symbol.asyncIterator]();
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

  test('a body cut anywhere (inside UTF-8 characters, escapes, lines) gives what a parse of each chunk gives', async () => {
    // Deltas of 3 characters of arguments holding quotes, backslashes, accents, an emoji, a NUL and
    // a lone surrogate: some deltas are half a surrogate pair (an escape of its own in the chunk).
    const args = JSON.stringify({ text: 'He said "hi" \\ é 世界 😀 \u0000 \ud800 done' });
    const datas = [
      JSON.stringify({ choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] }),
      JSON.stringify({
        choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'c0', function: { name: 'create_text', arguments: '' } }] } }],
      }),
    ];
    for (let i = 0; i < args.length; i += 3)
      datas.push(
        JSON.stringify({
          id: 'x',
          choices: [
            { index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: args.slice(i, i + 3) } }] }, finish_reason: null },
          ],
        }),
      );
    datas.push(JSON.stringify({ choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] }));
    const bytes = Buffer.from(`${datas.map((data) => `data: ${data}\r\n\r\n`).join('')}data: [DONE]\n\n`);
    const expected = datas.map((data) => JSON.parse(data) as CompletionBatch[number]).map(argumentsOf);
    expect(expected.join('')).toBe(args);
    for (const size of [1, 2, 3, 5, 64]) {
      const body = new Readable({ read() {} });
      for (let at = 0; at < bytes.length; at += size) body.push(bytes.subarray(at, at + size));
      body.push(null);
      const read = await items(readCompletionBatches(new NodeStreamResponse(body, { status: 200 })));
      expect(read.map(argumentsOf)).toEqual(expected);
      expect(read.filter((item) => item instanceof ArgumentsDelta).length).toBe(datas.length - 4);
      expect((read.at(-1) as Exclude<CompletionBatch[number], ArgumentsDelta>).choices[0].finish_reason).toBe('tool_calls');
    }
  });

  test('a chunk that does not parse ends the stream with its error, after the chunks before it', async () => {
    const good = `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: 'one' } }] })}\n\n`;
    const body = Readable.from([Buffer.from(`${good}${good}data: {"choices": [\n\n`)]);
    const seen: string[] = [];
    const reading = (async () => {
      for await (const batch of readCompletionBatches(new NodeStreamResponse(body, { status: 200 })))
        for (const item of batch) seen.push(item instanceof ArgumentsDelta ? item.text : String(item.choices[0].delta.content));
    })();
    await expect(reading).rejects.toThrow(SyntaxError);
    expect(seen).toEqual(['one', 'one']);
  });
});
