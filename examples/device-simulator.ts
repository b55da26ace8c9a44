/**
 * A pretend desktop app: connects to the `/device` namespace as one of your devices, holds a few
 * tasks, projects and notes in memory, and answers the assistant's tool calls from them. It also
 * runs local agents: on `agent_run` it reads the agent's folders from this machine's disk (text
 * files with the agent's extensions) and sends them back; the suggested tasks arrive as inserts.
 *
 *   npx tsx examples/device-simulator.ts [--transport=ws] <baseUrl> <accessToken> [deviceId]
 *   npx tsx examples/device-simulator.ts http://127.0.0.1:3000 eyJhbGciOi... laptop-1
 *
 * `--transport=ws` speaks the desktop app's own protocol: plain JSON frames
 * over a WebSocket at `/api/v1/ws/device?token=` instead of Socket.IO `/device`, through the SDK's
 * `connectDevice({transport: 'ws'})`.
 *
 * Every call and the answer it got is printed until Ctrl-C. The connection comes back by itself
 * after a server restart (the access token must still be valid).
 */
import { connectDevice } from '@switchboard/client';
import { readFolderFiles } from '@switchboard/client/node';
import { DeviceSimulator, MemoryStore } from '@switchboard/client/testing';
import type { AgentFile } from '../src/schemas/device-protocol';

const args = process.argv.slice(2);
const transport = args.find((arg) => arg.startsWith('--transport='))?.slice('--transport='.length) ?? 'socket.io';
const [baseUrl, accessToken, deviceId = 'simulated-laptop'] = args.filter((arg) => !arg.startsWith('--'));
if (!baseUrl || !accessToken || (transport !== 'ws' && transport !== 'socket.io')) {
  process.stderr.write('usage: npx tsx examples/device-simulator.ts [--transport=ws|socket.io] <baseUrl> <accessToken> [deviceId]\n');
  process.exit(2);
}

const day = 24 * 60 * 60 * 1000;
const now = Date.now();
const seed = {
  projects: [
    { id: 'p-launch', name: 'Product launch', status: 'active' },
    { id: 'p-admin', name: 'Admin', status: 'active' },
  ],
  tasks: [
    { title: 'Write launch brief', status: 'todo', priority: 'high', projectId: 'p-launch', dueDate: now + day },
    { title: 'Book the venue', status: 'in_progress', priority: 'medium', projectId: 'p-launch', dueDate: now + 7 * day },
    { title: 'Send March invoices', status: 'todo', priority: 'low', projectId: 'p-admin', dueDate: now },
    { title: 'Renew domain', status: 'done', priority: 'medium', projectId: 'p-admin' },
  ],
  checkpoints: [{ projectId: 'p-launch', title: 'Beta ships', date: now + 14 * day }],
  notes: [{ projectId: 'p-launch', title: 'Launch messaging', content: '# Messaging\n\nFaster handoffs between teams.' }],
};

const time = () => new Date().toISOString().slice(11, 23);
const print = (line: string) => process.stdout.write(`${time()} ${line}\n`);

function summarize(reply: unknown): string {
  const r = (reply ?? {}) as Record<string, unknown>;
  if (reply === undefined) return 'no answer';
  if (typeof r.error === 'string') return `error: ${r.error}`;
  if (Array.isArray(r.rows)) return `${r.rows.length} row(s)`;
  if (Array.isArray(r.results)) return `${r.results.length} result(s)`;
  if ('row' in r) return r.row ? `row ${(r.row as { id: string }).id}` : 'not found';
  if ('deleted' in r) return `deleted: ${String(r.deleted as boolean | number)}`;
  return JSON.stringify(r);
}

/** The same device over the plain WebSocket protocol (frames are snake_case on the wire). */
async function mainWs() {
  const store = new MemoryStore(seed);
  const device = await connectDevice({
    transport: 'ws',
    url: baseUrl,
    token: accessToken,
    deviceId,
    store,
    readAgentFiles: (config) => readFolderFiles(config),
    onCall: (call, reply) => {
      const target = 'table' in call && call.table ? ` ${call.table}` : '';
      const detail =
        'filters' in call && call.filters ? ` ${JSON.stringify(call.filters)}` : 'data' in call ? ` ${JSON.stringify(call.data)}` : '';
      print(`tool_call ${call.action}${target}${detail} → ${summarize(reply)}`);
    },
  });
  device.on('final', (frame) => print(`assistant: ${String(frame.response)}`));
  device.on('approval_requested', (frame) =>
    print(
      `approval requested ${String(frame.approval_id)}: ${String(frame.tool_name)} ${JSON.stringify(frame.parameters)} — PUT /api/v1/hitl/requests/${String(frame.approval_id)}/approve`,
    ),
  );
  device.on('approval_resolved', (frame) => print(`approval ${String(frame.approval_id)}: ${String(frame.status)}`));
  device.on('error', (frame) => print(`error frame: ${String(frame.code)} ${String(frame.message)}`));
  print(
    `connected to ${baseUrl} over the plain WebSocket as device "${deviceId}" with ${store.rows('tasks').length} tasks; waiting for tool calls (Ctrl-C to stop)`,
  );
  process.on('SIGINT', () => {
    device.close();
    process.exit(0);
  });
}

async function main() {
  if (transport === 'ws') return mainWs();
  const device = await DeviceSimulator.connect({
    url: baseUrl,
    accessToken,
    deviceId,
    seed,
    readAgentFiles: async (request) => {
      const files: AgentFile[] = [];
      const errors: string[] = [];
      for await (const item of readFolderFiles(request.config)) {
        if ('error' in item) errors.push(`${item.path}: ${item.error}`);
        else files.push(item);
      }
      print(
        `agent_run ${request.runId}: read ${files.length} file(s) from ${request.config.paths.join(', ')}${errors.length ? `, ${errors.length} error(s)` : ''}`,
      );
      return { files, errors };
    },
    onCall: (call, reply) => {
      const target = 'table' in call && call.table ? ` ${call.table}` : '';
      const detail =
        'filters' in call && call.filters ? ` ${JSON.stringify(call.filters)}` : 'data' in call ? ` ${JSON.stringify(call.data)}` : '';
      print(`tool_call ${call.action}${target}${detail} → ${summarize(reply)}`);
    },
  });
  device.socket.on('disconnect', (reason) => {
    print(`disconnected (${reason})`);
    // The server ended the session (e.g. the same device connected again elsewhere): no reconnect.
    if (reason === 'io server disconnect') process.exit(1);
  });
  device.socket.io.on('reconnect', () => print('reconnected'));
  device.socket.on('final', ({ response }) => print(`assistant: ${response}`));
  // A dangerous tool (every delete_*) waits for the user: approve it over HTTP, or answer with
  // `tool_approval {approvalId, approved}` from the device.
  device.socket.on('approval_requested', ({ approvalId, toolName, parameters }) =>
    print(`approval requested ${approvalId}: ${toolName} ${JSON.stringify(parameters)} — PUT /api/v1/hitl/requests/${approvalId}/approve`),
  );
  print(
    `connected to ${baseUrl} as device "${deviceId}" with ${device.store.rows('tasks').length} tasks; waiting for tool calls (Ctrl-C to stop)`,
  );

  process.on('SIGINT', () => {
    device.close();
    process.exit(0);
  });
}

main().catch((error: unknown) => {
  process.stderr.write(`could not connect: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
