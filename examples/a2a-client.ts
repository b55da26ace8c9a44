/**
 * Sends one message to a Switchboard agent over A2A with the A2A SDK's client and prints the task.
 *
 *   npx tsx examples/a2a-client.ts <cardUrl> <apiKey> <message>
 *   npx tsx examples/a2a-client.ts http://127.0.0.1:3000/.well-known/agent-card.json sb_live_… "Hello"
 *
 * The card URL of a chatflow is `<baseUrl>/a2a/flows/<flowId>/.well-known/agent-card.json`. The
 * answer streams (`SendStreamingMessage`): each chunk of the answer is printed as it comes, then
 * the task's final state.
 */
import { randomUUID } from 'node:crypto';
import { Role, TaskState } from '@a2a-js/sdk';
import { ClientFactory, ClientFactoryOptions, DefaultAgentCardResolver, JsonRpcTransportFactory } from '@a2a-js/sdk/client';

const [cardUrl, apiKey, text] = process.argv.slice(2);
if (!cardUrl || !apiKey || !text) {
  process.stderr.write('usage: npx tsx examples/a2a-client.ts <cardUrl> <apiKey> <message>\n');
  process.exit(2);
}

const fetchImpl: typeof fetch = (input, init) => {
  const headers = new Headers(init?.headers);
  headers.set('authorization', `Bearer ${apiKey}`);
  return fetch(input, { ...init, headers });
};

async function main() {
  const factory = new ClientFactory(
    ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
      transports: [new JsonRpcTransportFactory({ fetchImpl })],
      cardResolver: new DefaultAgentCardResolver({ fetchImpl }),
    }),
  );
  const client = await factory.createFromUrl(cardUrl, '');
  const message = {
    messageId: randomUUID(),
    contextId: '',
    taskId: '',
    role: Role.ROLE_USER,
    parts: [{ content: { $case: 'text' as const, value: text }, metadata: undefined, filename: '', mediaType: 'text/plain' }],
    metadata: undefined,
    extensions: [],
    referenceTaskIds: [],
  };
  let taskId = '';
  for await (const response of client.sendMessageStream({ tenant: '', message, configuration: undefined, metadata: undefined })) {
    const payload = response.payload;
    if (payload?.$case === 'task') taskId = payload.value.id;
    if (payload?.$case === 'artifactUpdate')
      for (const part of payload.value.artifact?.parts ?? []) if (part.content?.$case === 'text') process.stdout.write(part.content.value);
  }
  const task = await client.getTask({ tenant: '', id: taskId });
  process.stdout.write(`\ntask ${task.id} ${TaskState[task.status?.state ?? 0]}\n`);
}

main().catch((error: Error) => {
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
});
