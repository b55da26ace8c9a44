/**
 * How the canvas turn's cost grows with the size of one streamed model turn, in this process with
 * nothing else running: evidence for docs/performance.md. Compares, per turn size:
 *   agent       runCanvasTurn as shipped (LangChain .stream() + the agent's own chunk aggregation)
 *   stream      LangChain .stream() consumed without aggregating (LangChain still concatenates inside)
 *   chunks      ChatOpenAI._streamResponseChunks(): LangChain's parsing, no concatenation at all
 *   sdk         the OpenAI SDK's stream, arguments accumulated per index (the floor for this client stack)
 *
 *   node -r ./bench/register.cjs bench/tools/agent-scaling.ts [--calls=50,100,200,400] [--pieces=4,50]
 */
import { HumanMessage, SystemMessage } from '@langchain/core/messages';
import OpenAI from 'openai';
import { blockTools } from '../../src/ai/block-tools';
import { runCanvasTurn } from '../../src/ai/canvas-turn';
import { ModelGateway } from '../../src/ai/model-gateway';
import type { LlmEndpoint } from '../../src/ai/llm';
import { chatModel } from './chat-openai';
import { median } from '../lib/stats';
import { startTimedModel } from '../lib/timed-model';
import { msBetween, now } from '../lib/timing';

const arg = (name: string, fallback: number[]) =>
  process.argv
    .find((a) => a.startsWith(`--${name}=`))
    ?.split('=')[1]
    .split(',')
    .map(Number) ?? fallback;
const CALLS = arg('calls', [50, 100, 200, 400]);
const PIECES = arg('pieces', [4, 50]);
const REPS = 5;

async function main() {
  console.log('calls  pieces  chunks |   agent ms   stream ms   chunks ms      sdk ms  (median of 5, after 2 warm-ups)');
  for (const pieces of PIECES) {
    for (const calls of CALLS) {
      const model = await startTimedModel({ calls, gapMs: 0, pieces, textChars: 200 });
      const endpoint: LlmEndpoint = { baseURL: model.baseURL, apiKey: 'bench', provider: 'scripted', models: ['timed'] };
      const messages = [new SystemMessage('bench'), new HumanMessage('Write paragraphs')];
      const bound = chatModel(endpoint, 'timed').bindTools(blockTools);
      const sdk = new OpenAI({ baseURL: model.baseURL, apiKey: 'bench' });
      const variants: Record<string, () => Promise<unknown>> = {
        agent: () =>
          runCanvasTurn('Write paragraphs', {
            models: ModelGateway.fromEndpoint(endpoint, { pricing: {} }),
            maxBlocks: calls,
            hooks: { onBlock: () => undefined },
          }), // truncated after turn 1: one model call, like the others
        stream: async () => {
          for await (const chunk of await bound.stream(messages)) void chunk;
        },
        chunks: async () => {
          const chat = chatModel(endpoint, 'timed') as unknown as { _streamResponseChunks(m: unknown, o: unknown): AsyncIterable<unknown> };
          for await (const chunk of chat._streamResponseChunks(messages, {
            tools: blockTools.map((t) => ({ type: 'function', function: { name: t.name, parameters: {} } })),
          }))
            void chunk;
        },
        sdk: async () => {
          const stream = await sdk.chat.completions.create({
            model: 'timed',
            messages: [{ role: 'user', content: 'Write paragraphs' }],
            stream: true,
          });
          const args: string[] = [];
          for await (const chunk of stream)
            for (const call of chunk.choices[0]?.delta?.tool_calls ?? [])
              args[call.index] = (args[call.index] ?? '') + (call.function?.arguments ?? '');
        },
      };
      const row: string[] = [];
      for (const run of Object.values(variants)) {
        const times: number[] = [];
        for (let i = 0; i < REPS + 2; i += 1) {
          const started = now();
          await run();
          if (i >= 2) times.push(msBetween(started));
        }
        row.push(median(times).toFixed(1).padStart(11));
      }
      console.log(
        `${String(calls).padStart(5)}  ${String(pieces).padStart(6)}  ${String(calls * (pieces + 1)).padStart(6)} | ${row.join(' ')}`,
      );
      await model.close();
    }
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
