/**
 * Chats with a Switchboard chat over AG-UI with AG-UI's own client (`HttpAgent`), printing each
 * event it applies and the conversation it renders.
 *
 *   npx tsx examples/ag-ui-chat.ts <baseUrl> <token> <message>
 *   npx tsx examples/ag-ui-chat.ts http://127.0.0.1:3000 sb_live_… "Hello"
 *
 * `<token>` is an API key or an access token. A chatflow's endpoint is
 * `<baseUrl>/api/v1/flows/<flowId>/chat/ag-ui`.
 */
import { randomUUID } from 'node:crypto';
import { HttpAgent } from '@ag-ui/client';

const [baseUrl, token, text] = process.argv.slice(2);
if (!baseUrl || !token || !text) {
  process.stderr.write('usage: npx tsx examples/ag-ui-chat.ts <baseUrl> <token> <message>\n');
  process.exit(2);
}

async function main() {
  const agent = new HttpAgent({ url: `${baseUrl}/api/v1/chat/ag-ui`, headers: { authorization: `Bearer ${token}` } });
  agent.addMessage({ id: randomUUID(), role: 'user', content: text });
  await agent.runAgent({}, { onEvent: ({ event }) => void process.stdout.write(`event ${event.type}\n`) });
  for (const message of agent.messages) {
    process.stdout.write(`${message.role}: ${typeof message.content === 'string' ? message.content : ''}\n`);
  }
}

main().catch((error: Error) => {
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
});
