/**
 * Chats with a Switchboard chatflow through OpenAI's API, with the official `openai` package:
 * lists the models, streams a chat completion with its usage, then asks a follow-up through the
 * Responses API. Usage: `npx tsx examples/openai-chat.ts <base URL> <API key> [model]`.
 */
import OpenAI from 'openai';

const [baseUrl = 'http://localhost:3000', apiKey = process.env.SWITCHBOARD_API_KEY ?? '', wanted] = process.argv.slice(2);
const openai = new OpenAI({ baseURL: `${baseUrl}/v1`, apiKey });

async function main() {
  // The models: `switchboard-assistant` and one per chatflow (`<name>-<flow id>`).
  const models = [];
  for await (const model of openai.models.list()) models.push(model);
  console.log('models:', models.map((model) => model.id).join(', '));
  const model = wanted ?? models.find((candidate) => candidate.id !== 'switchboard-assistant')?.id ?? 'switchboard-assistant';

  // A streamed chat completion; the last chunk carries the usage.
  const stream = await openai.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'Hello! What can you do?' }],
    stream: true,
    stream_options: { include_usage: true },
  });
  let answer = '';
  for await (const chunk of stream) {
    answer += chunk.choices[0]?.delta?.content ?? '';
    if (chunk.usage) console.log('usage:', chunk.usage.prompt_tokens, 'in,', chunk.usage.completion_tokens, 'out');
  }
  console.log('answer:', answer);

  // The Responses API: a second conversation, continued with previous_response_id.
  const first = await openai.responses.create({ model, input: 'Name one thing you know.' });
  const next = await openai.responses.create({ model, input: 'And another?', previous_response_id: first.id });
  console.log('response:', first.output_text);
  console.log('follow-up:', next.output_text);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
