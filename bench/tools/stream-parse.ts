/**
 * Decision 0151, measured alone: the CPU to parse the realistic stream's bytes (200 create_text
 * calls in 4-character deltas, ~10,800 chunks, ~2.2 MB) with the openai SDK's stream iterator and
 * with `readCompletionBatches`, and with the minimal consumer's split and `JSON.parse` of every chunk
 * (bench/lib/floor.ts), when the body arrives in reads of 16 KB, 64 KB and 1 MB (a reader far
 * behind the model gets big reads). No network, no server: only the parse.
 *
 *   node --expose-gc -r ./bench/register.cjs bench/tools/stream-parse.ts [--rounds=10]
 */
// The openai SDK's own stream class (a dependency of @langchain/openai), by path: its package exports do not list it.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Stream } = require(require.resolve('openai/core/streaming.js', { paths: [require.resolve('@langchain/openai')] })) as {
  Stream: { fromSSEResponse(response: Response, controller: AbortController): AsyncIterable<unknown> };
};
import { ArgumentsDelta, readCompletionBatches } from '../../src/ai/model-stream';
const frame = (choices: unknown[]) =>
  `data: ${JSON.stringify({ id: 'chatcmpl-r', object: 'chat.completion.chunk', created: 0, model: 'm', choices })}\n\n`;
const delta = (d: Record<string, unknown>) => frame([{ index: 0, delta: d, finish_reason: null }]);
let text = delta({ role: 'assistant', content: '' });
for (let index = 0; index < 200; index++) {
  const args = JSON.stringify({ text: `Paragraph ${index + 1}. ${'Lorem ipsum dolor sit amet, '.repeat(8)}`.slice(0, 200) });
  text += delta({ tool_calls: [{ index, id: `call_${index}`, type: 'function', function: { name: 'create_text', arguments: '' } }] });
  for (let i = 0; i < args.length; i += 4) text += delta({ tool_calls: [{ index, function: { arguments: args.slice(i, i + 4) } }] });
}
text += 'data: [DONE]\n\n';
const bytes = Buffer.from(text);
const response = (size: number) =>
  new Response(
    new ReadableStream({
      start(c) {
        for (let i = 0; i < bytes.length; i += size) c.enqueue(new Uint8Array(bytes.subarray(i, i + size)));
        c.close();
      },
    }),
  );
async function consume(it: AsyncIterable<any>) {
  let n = 0;
  for await (const chunk of it) n += chunk.choices?.[0]?.delta?.tool_calls?.length ?? 0;
  return n;
}
/** Our reader hands over batches; an argument delta read without a parse is one tool call part. */
async function consumeBatches(it: AsyncIterable<Array<ArgumentsDelta | { choices: any[] }>>) {
  let n = 0;
  for await (const batch of it)
    for (const item of batch) n += item instanceof ArgumentsDelta ? 1 : (item.choices?.[0]?.delta?.tool_calls?.length ?? 0);
  return n;
}
/** The minimal consumer's parse (`consumeModelStream` in bench/lib/floor.ts): decode, split on blank lines, `JSON.parse` each chunk, accumulate. */
async function consumeMinimal(body: AsyncIterable<Uint8Array>) {
  const decoder = new TextDecoder();
  const args: string[] = [];
  let buffer = '';
  let n = 0;
  for await (const part of body) {
    buffer += decoder.decode(part, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const line = buffer.slice(6, end);
      buffer = buffer.slice(end + 2);
      if (line === '[DONE]') continue;
      const chunk = JSON.parse(line) as {
        choices: Array<{ delta?: { tool_calls?: Array<{ index: number; function?: { arguments?: string } }> } }>;
      };
      for (const call of chunk.choices[0]?.delta?.tool_calls ?? []) {
        args[call.index] = (args[call.index] ?? '') + (call.function?.arguments ?? '');
        n += 1;
      }
    }
  }
  return n;
}
const cpuMs = async (run: () => Promise<number>) => {
  // Each reader pays for its own garbage, not the one before it (the SDK's is large): with --expose-gc.
  (globalThis as { gc?: () => void }).gc?.();
  // The main thread's CPU: V8's threads still sweeping after that collection would count otherwise.
  const start = process.threadCpuUsage();
  const parts = await run();
  const spent = process.threadCpuUsage(start);
  if (parts !== 10_800) throw new Error(`${parts} tool call parts, not 10,800`);
  return (spent.user + spent.system) / 1000;
};
const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1];
async function main() {
  const rounds = Number(process.argv.find((a) => a.startsWith('--rounds='))?.slice(9) ?? 10);
  console.log('bytes', bytes.length, `; main-thread CPU ms per stream, median of ${rounds} rounds (the three readers take turns)`);
  for (const size of [16_384, 65_536, 1_048_576]) {
    const spent: Record<'sdk' | 'ours' | 'minimal', number[]> = { sdk: [], ours: [], minimal: [] };
    for (let round = 0; round < rounds; round++) {
      spent.sdk.push(await cpuMs(() => consume(Stream.fromSSEResponse(response(size), new AbortController()) as any)));
      spent.ours.push(await cpuMs(() => consumeBatches(readCompletionBatches(response(size)))));
      spent.minimal.push(await cpuMs(() => consumeMinimal(response(size).body as unknown as AsyncIterable<Uint8Array>)));
    }
    console.log(
      `read ${size}: sdk ${median(spent.sdk).toFixed(1)} ms, ours ${median(spent.ours).toFixed(1)} ms, minimal consumer ${median(spent.minimal).toFixed(1)} ms`,
    );
  }
}
main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
