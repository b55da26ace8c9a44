/**
 * Decision 0151, measured alone: the CPU to parse the realistic stream's bytes (200 create_text
 * calls in 4-character deltas, ~10,800 chunks, ~2.2 MB) with the openai SDK's stream iterator and
 * with `readCompletionBatches`, when the body arrives in reads of 16 KB, 64 KB and 1 MB (a reader
 * far behind the model gets big reads). No network, no server: only the parse.
 *
 *   node -r ./bench/register.cjs bench/tools/stream-parse.ts
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
async function main() {
  console.log('bytes', bytes.length);
  for (const size of [16_384, 65_536, 1_048_576]) {
    for (let round = 0; round < 3; round++) {
      let t = process.cpuUsage();
      const a = await consume(Stream.fromSSEResponse(response(size), new AbortController()) as any);
      const sdk = process.cpuUsage(t);
      t = process.cpuUsage();
      const b = await consumeBatches(readCompletionBatches(response(size)));
      const ours = process.cpuUsage(t);
      console.log(
        `read ${size}: sdk ${((sdk.user + sdk.system) / 1000).toFixed(0)} ms, ours ${((ours.user + ours.system) / 1000).toFixed(0)} ms (${a}/${b} parts)`,
      );
    }
  }
}
main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
