/**
 * Watches one canvas room and prints what the server sends to it.
 *
 *   npx tsx examples/watch-canvas.ts <baseUrl> <accessToken> <canvasId>
 *   npx tsx examples/watch-canvas.ts http://127.0.0.1:3000 eyJhbGciOi... 0b6f...
 *
 * Connects to the `/canvas` namespace with the access token, joins the canvas room (the server
 * answers through the ack: only members may join), then prints block and generation events until
 * Ctrl-C.
 */
import { io } from 'socket.io-client';

const [baseUrl, token, canvasId] = process.argv.slice(2);
if (!baseUrl || !token || !canvasId) {
  process.stderr.write('usage: npx tsx examples/watch-canvas.ts <baseUrl> <accessToken> <canvasId>\n');
  process.exit(2);
}

// WebSocket from the start: no long-polling handshake, so no sticky session is needed for this client.
const socket = io(`${baseUrl.replace(/\/$/, '')}/canvas`, { auth: { token }, transports: ['websocket'] });
const time = () => new Date().toISOString().slice(11, 23);
const print = (event: string, summary: string) => process.stdout.write(`${time()} ${event.padEnd(24)} ${summary}\n`);

type Block = { id: string; type: string; content: Record<string, unknown>; rank: string };
const describe = (block: Block) => `${block.type} ${JSON.stringify(block.content)}`;

socket.on('connect', () => {
  // Joining again after a reconnect is harmless; with connection state recovery the room is kept anyway.
  socket.emit('canvas:join', canvasId, (ack: { ok: boolean; presence?: Array<{ name: string }>; error?: { code: string } }) => {
    if (!ack.ok) {
      print('canvas:join', `refused: ${ack.error?.code}`);
      process.exit(1);
    }
    print('canvas:join', `ok, present: ${ack.presence?.map((user) => user.name).join(', ')}`);
  });
});
socket.on('connect_error', (error) => {
  print('connect_error', error.message);
  process.exit(1);
});

socket.on('generation_status', (payload: { generationId: string; stage: string }) => print('generation_status', `${payload.generationId} ${payload.stage}`));
socket.on('blocks_bulk_added_chunk', (payload: { chunkIndex: number; chunkCount: number; blocks: Block[] }) => {
  print('blocks_bulk_added_chunk', `chunk ${payload.chunkIndex + 1}/${payload.chunkCount}, ${payload.blocks.length} block(s)`);
  for (const block of payload.blocks) process.stdout.write(`${' '.repeat(38)}${describe(block)}\n`);
});
socket.on('generation_undone', (payload: { generationId: string; blockIds: string[] }) =>
  print('generation_undone', `${payload.generationId}, ${payload.blockIds.length} block(s) removed`),
);
socket.on('block_added', (payload: { block: Block }) => print('block_added', describe(payload.block)));

process.on('SIGINT', () => {
  socket.close();
  process.exit(0);
});
