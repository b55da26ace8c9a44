import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import express from 'express';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { framesDrained, pushFrames, type FrameTarget } from '../../src/http/sse-frames';
import { openSse } from '../../src/http/sse';
import type { Frame } from '../../src/lib/stream-follower';
import { waitUntil } from '../support/wait';

/**
 * Live frames written straight to the socket as HTTP chunks (issue 12): a client that stops
 * reading makes them held, not written, and once it reads again it gets every frame, in order,
 * as valid chunked HTTP, followed by whatever the stream writes next.
 */
describe('pushFrames', () => {
  let server: Server;
  let target: FrameTarget | undefined;
  let client: Socket | undefined;

  beforeEach(async () => {
    const app = express();
    app.get('/', (_req, res) => {
      openSse(res);
      target = { res, signal: new AbortController().signal, held: undefined, drainer: undefined };
    });
    server = createServer(app);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
  });

  afterEach(async () => {
    client?.destroy();
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

    const raw = Buffer.concat(received).toString('latin1');
    const chunked = raw.slice(raw.indexOf('\r\n\r\n') + 4);
    let text = '';
    for (let at = 0; ; ) {
      const eol = chunked.indexOf('\r\n', at);
      const size = Number.parseInt(chunked.slice(at, eol), 16);
      if (!size) break;
      text += chunked.slice(eol + 2, eol + 2 + size);
      expect(chunked.slice(eol + 2 + size, eol + 4 + size)).toBe('\r\n');
      at = eol + 4 + size;
    }
    expect(text).toBe(frames.map((frame) => frame.bytes.toString('latin1')).join('') + 'data: tail\n\n');
  });
});
