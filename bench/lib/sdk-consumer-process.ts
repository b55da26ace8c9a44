/**
 * The `openai` SDK's consumer of the realistic stream, in a process of its own: it iterates the
 * SDK's stream, accumulates each call's arguments and parses each call, and measures its own CPU.
 * Its garbage (over a second of CPU's worth at 364 calls) stays out of the benchmark process, where
 * its collection landed in the next Switchboard generation measured there.
 *
 * Protocol (IPC): on start it sends `{ready: true}`; `{id, baseURL, model, prompt}` →
 * `{id, calls, cpuMs}` or `{id, error}`; `{cmd: 'stop'}` ends it.
 */
import { OpenAIClient } from '@langchain/openai';

const clients = new Map<string, OpenAIClient>();

async function consume(baseURL: string, model: string, prompt: string): Promise<{ calls: number; cpuMs: number }> {
  let sdk = clients.get(baseURL);
  if (!sdk) clients.set(baseURL, (sdk = new OpenAIClient({ baseURL, apiKey: 'bench' })));
  const start = process.cpuUsage();
  const stream = await sdk.chat.completions.create({ model, stream: true, messages: [{ role: 'user', content: prompt }] });
  const args: string[] = [];
  for await (const chunk of stream)
    for (const part of chunk.choices[0]?.delta?.tool_calls ?? [])
      args[part.index] = (args[part.index] ?? '') + (part.function?.arguments ?? '');
  const calls = args.filter((text) => JSON.parse(text)).length;
  const spent = process.cpuUsage(start);
  return { calls, cpuMs: (spent.user + spent.system) / 1000 };
}

process.on('message', (message: { id?: number; cmd?: string; baseURL?: string; model?: string; prompt?: string }) => {
  if (message.cmd === 'stop') process.exit(0);
  const { id, baseURL, model, prompt } = message;
  if (id === undefined || !baseURL || !model || !prompt) return;
  consume(baseURL, model, prompt).then(
    (result) => process.send?.({ id, ...result }),
    (error: unknown) => process.send?.({ id, error: error instanceof Error ? error.message : String(error) }),
  );
});
process.on('disconnect', () => process.exit(0));
process.send?.({ ready: true });
