/**
 * Lists a Switchboard user's agentflows as MCP tools and calls one, with either MCP SDK.
 *
 *   npx tsx examples/mcp-client.ts <baseUrl> <apiKey> <era> <toolName> <argumentsJson>
 *   npx tsx examples/mcp-client.ts http://127.0.0.1:3000 sb_live_… 2025-11-25 Octopus_facts-6f1c… '{"topic":"octopuses"}'
 *
 * `<era>` is `2025-11-25` (the 1.x SDK, `@modelcontextprotocol/sdk`: `initialize`, progress
 * notifications) or `2026-07-28` (the 2.x SDK, `@modelcontextprotocol/client`: `server/discover`, no
 * session). It prints the tools' names, then the call's progress and its text result.
 */
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const [baseUrl, apiKey, era, toolName, args] = process.argv.slice(2);
if (!baseUrl || !apiKey || !era || !toolName || !args) {
  process.stderr.write('usage: npx tsx examples/mcp-client.ts <baseUrl> <apiKey> <2025-11-25|2026-07-28> <toolName> <argumentsJson>\n');
  process.exit(2);
}

const url = new URL('/mcp', baseUrl);
const requestInit = { headers: { Authorization: `Bearer ${apiKey}` } };
const textOf = (content: unknown) =>
  (content as Array<{ type: string; text?: string }>)
    .filter((part) => part.type === 'text')
    .map((part) => part.text)
    .join('');

async function legacy() {
  const client = new Client({ name: 'my-app', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(url, { requestInit }));
  const { tools } = await client.listTools();
  console.log(`tools ${tools.map((tool) => tool.name).join(', ')}`);
  const result = await client.callTool({ name: toolName, arguments: JSON.parse(args) as Record<string, unknown> }, undefined, {
    onprogress: (p) => console.log(`progress ${p.progress} ${p.message ?? ''}`.trim()),
    resetTimeoutOnProgress: true,
  });
  console.log(`result ${result.isError ? 'error ' : ''}${textOf(result.content)}`);
  await client.close();
}

async function modern() {
  // `auto` probes with server/discover and takes 2026-07-28; `{ pin: '2026-07-28' }` insists on it.
  const client = new ClientV2({ name: 'my-app', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
  await client.connect(new TransportV2(url, { requestInit }));
  const { tools } = await client.listTools();
  console.log(`tools ${tools.map((tool) => tool.name).join(', ')}`);
  const result = await client.callTool({ name: toolName, arguments: JSON.parse(args) as Record<string, unknown> });
  console.log(`result ${result.isError ? 'error ' : ''}${textOf(result.content)}`);
  await client.close();
}

if (era !== '2025-11-25' && era !== '2026-07-28') {
  process.stderr.write(`unknown era ${era}: 2025-11-25 or 2026-07-28\n`);
  process.exit(2);
}
(era === '2026-07-28' ? modern() : legacy()).catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
