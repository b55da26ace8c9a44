import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { waitUntil } from '../support/wait';

/**
 * What the SSE door relies on below Node's public API when it writes live frames straight to a
 * stream's socket (the event p99 target at 1,000 hot streams): a response whose headers are out
 * is its socket's `_httpMessage`, chunked, with nothing of it buffered; once it ends, the socket
 * no longer names it, and the next request on that keep-alive connection is named instead. If a
 * Node release changes any of it, this fails before streams start writing to the wrong response.
 */
describe("Node's http: a socket names the response that owns it", () => {
  let server: Server;
  let client: Socket | undefined;
  const responses: ServerResponse[] = [];
  const sockets: Socket[] = [];

  beforeEach(async () => {
    responses.length = 0;
    sockets.length = 0;
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      responses.push(res);
      sockets.push(req.socket);
      res.setHeader('Content-Type', 'text/event-stream');
      res.flushHeaders();
      if (req.url === '/end') res.end('data: bye\n\n');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
  });

  afterEach(() => {
    client?.destroy();
    server.closeAllConnections();
    server.close();
  });

  const owner = (res: ServerResponse) => (res.socket as (Socket & { _httpMessage?: unknown }) | null)?._httpMessage;

  test('an open stream owns its socket; after it ends the next response on the connection does', async () => {
    let text = '';
    client = connect((server.address() as AddressInfo).port, '127.0.0.1');
    client.setEncoding('utf8');
    client.on('data', (chunk: string) => (text += chunk));
    client.write('GET /end HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitUntil(() => /\r\n0\r\n\r\n$/.test(text), 5_000);
    const first = responses[0];
    expect(first.writableEnded).toBe(true);
    expect(first.socket).toBeNull();

    const firstLength = text.length;
    client.write('GET /open HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitUntil(() => responses.length === 2 && responses[1].headersSent, 5_000);
    // Sent is not yet received: the body below is read after the second response's headers arrived.
    await waitUntil(() => /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\n$/.test(text.slice(firstLength)), 5_000);
    const second = responses[1];
    expect(sockets[1]).toBe(sockets[0]);
    expect(second.socket).toBe(sockets[0]);
    expect(owner(second)).toBe(second);
    expect(owner(second)).not.toBe(first);
    expect(second.chunkedEncoding).toBe(true);
    expect(second.writableLength).toBe(second.socket!.writableLength);

    // Bytes written to the socket directly reach the client as the response's body.
    const before = text.length;
    second.socket!.write('a\r\ndata: hi\n\n\r\n');
    await waitUntil(() => text.slice(before).includes('data: hi'), 5_000);
    second.end();
    await waitUntil(() => /\r\n0\r\n\r\n$/.test(text), 5_000);
    expect(text.slice(before)).toBe('a\r\ndata: hi\n\n\r\n0\r\n\r\n');
    expect((sockets[0] as Socket & { _httpMessage?: unknown })._httpMessage).not.toBe(second);
  });
});
