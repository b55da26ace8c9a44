import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import express from 'express';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { framesDrained, pushFrames, type FrameTarget } from '../../src/http/sse-frames';
import { openSse } from '../../src/http/sse';
import type { Frame } from '../../src/lib/stream-follower';
import { waitUntil } from '../support/wait';

/**
 * Live frames written straight to the socket as HTTP chunks: a client that stops
 * reading makes them held, not written, and once it reads again it gets every frame, in order,
 * as valid chunked HTTP, followed by whatever the stream writes next.
 */
describe('pushFrames', () => {
  let server: Server;
  let target: FrameTarget | undefined;
  let targets: FrameTarget[] = [];
  let client: Socket | undefined;
  let clients: Socket[] = [];

  beforeEach(async () => {
    const app = express();
    app.get('/', (_req, res) => {
      openSse(res);
      target = { res, signal: new AbortController().signal, held: undefined, drainer: undefined };
      targets.push(target);
    });
    server = createServer(app);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
  });

  afterEach(async () => {
    client?.destroy();
    for (const each of clients) each.destroy();
    [target, targets, client, clients] = [undefined, [], undefined, []];
    server.closeAllConnections();
    server.close();
  });

  test('a client that stops reading gets frames held until it reads again, then all of them in order, then the tail', async () => {
    client = connect((server.address() as AddressInfo).port, '127.0.0.1');
    client.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitUntil(() => target !== undefined, 5_000);
    client.pause();
    const body = 'x'.repeat(16 * 1024);
    const frames: Frame[] = Array.from({ length: 400 }, (_, i) => ({ bytes: Buffer.from(`id: ${i}\ndata: ${body}\n\n`), terminal: false }));
    for (const frame of frames) pushFrames(target!, [frame]);
    // 6.4 MB cannot all fit in the socket buffers of a client that does not read.
    expect(target!.held?.length).toBeGreaterThan(0);
    // Written as ready chunks to the socket itself, so it is the socket's drain that releases them.
    expect(target!.drainer).toBe(target!.res.socket);

    const received: Buffer[] = [];
    client.on('data', (chunk: Buffer) => received.push(chunk));
    client.resume();
    await framesDrained(target!);
    expect(target!.held).toBeUndefined();
    target!.res.end('data: tail\n\n');
    await waitUntil(() => Buffer.concat(received).includes('\r\n0\r\n\r\n'), 10_000);

    expect(bodyOf(received)).toBe(frames.map((frame) => frame.bytes.toString('latin1')).join('') + 'data: tail\n\n');
  });

  test('streams handed the same batch each get all of it, in order, between what their responses write themselves', async () => {
    const port = (server.address() as AddressInfo).port;
    const received: Buffer[][] = [[], []];
    for (const [i, chunks] of received.entries()) {
      const socket = connect(port, '127.0.0.1');
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      clients.push(socket);
      await waitUntil(() => targets.length === i + 1, 5_000);
    }
    const frame = (text: string): Frame => ({ bytes: Buffer.from(`data: ${text}\n\n`), terminal: false });
    // One read's frames, the same array for every stream (as the follower hands them), twice.
    const first = [frame('a'), frame('b'), frame('c')];
    const second = [frame('d'), frame('e')];
    for (const each of targets) pushFrames(each, first);
    for (const each of targets) each.res.write(': ping\n\n');
    for (const each of targets) pushFrames(each, second);
    for (const each of targets) pushFrames(each, [frame('f')]);
    for (const each of targets) each.res.end('data: tail\n\n');
    for (const chunks of received) await waitUntil(() => Buffer.concat(chunks).includes('\r\n0\r\n\r\n'), 10_000);
    for (const chunks of received)
      expect(bodyOf(chunks)).toBe('data: a\n\ndata: b\n\ndata: c\n\n: ping\n\ndata: d\n\ndata: e\n\ndata: f\n\ndata: tail\n\n');
  });
});

/** The body of a chunked HTTP/1.1 response, every chunk checked to be well formed. */
function bodyOf(received: Buffer[]): string {
  const raw = Buffer.concat(received).toString('latin1');
  const chunked = raw.slice(raw.indexOf('\r\n\r\n') + 4);
  let text = '';
  for (let at = 0; ;) {
    const eol = chunked.indexOf('\r\n', at);
    const size = Number.parseInt(chunked.slice(at, eol), 16);
    if (!size) break;
    text += chunked.slice(eol + 2, eol + 2 + size);
    expect(chunked.slice(eol + 2 + size, eol + 4 + size)).toBe('\r\n');
    at = eol + 4 + size;
  }
  return text;
}
