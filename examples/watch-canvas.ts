/**
 * Watches one canvas room and prints what the server sends to it.
 *
 *   npx tsx examples/watch-canvas.ts <baseUrl> <accessToken> <canvasId>
 *   npx tsx examples/watch-canvas.ts http://127.0.0.1:3000 eyJhbGciOi... 0b6f...
 *
 * Connects to the `/canvas` namespace with the typed client SDK (`connectCanvas`), joins the
 * canvas room (the server answers through the ack: only members may join), then prints block and
 * generation events until Ctrl-C. After a reconnect the SDK joins the room again by itself.
 */
import { connectCanvas } from '@switchboard/client';
import type { Block } from '../src/schemas/blocks';

const [baseUrl, token, canvasId] = process.argv.slice(2);
if (!baseUrl || !token || !canvasId) {
  process.stderr.write('usage: npx tsx examples/watch-canvas.ts <baseUrl> <accessToken> <canvasId>\n');
  process.exit(2);
}

const time = () => new Date().toISOString().slice(11, 23);
const print = (event: string, summary: string) => process.stdout.write(`${time()} ${event.padEnd(24)} ${summary}\n`);
const describe = (block: Block) => `${block.type} ${JSON.stringify(block.content)}`;

async function main() {
  const room = await connectCanvas({ url: baseUrl, token }).catch((error: Error) => {
    print('connect_error', error.message);
    process.exit(1);
  });
  const ack = await room.join(canvasId);
  if (!ack.ok) {
    print('canvas:join', `refused: ${ack.error.code}`);
    process.exit(1);
  }
  print('canvas:join', `ok, present: ${ack.presence.map((user) => user.name).join(', ')}`);

  // Payloads are typed from the server's event maps (src/schemas/socket-events.ts).
  room.on('generation_status', ({ generationId, stage }) => print('generation_status', `${generationId} ${stage}`));
  room.on('blocks_bulk_added_chunk', ({ chunkIndex, chunkCount, blocks }) => {
    print('blocks_bulk_added_chunk', `chunk ${chunkIndex + 1}/${chunkCount}, ${blocks.length} block(s)`);
    for (const block of blocks) process.stdout.write(`${' '.repeat(38)}${describe(block)}\n`);
  });
  room.on('generation_undone', ({ generationId, blockIds }) =>
    print('generation_undone', `${generationId}, ${blockIds.length} block(s) removed`),
  );
  room.on('block_added', ({ block }) => print('block_added', describe(block)));

  process.on('SIGINT', () => {
    room.close();
    process.exit(0);
  });
}

void main();
