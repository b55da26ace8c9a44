import http from 'node:http';
import net, { type AddressInfo } from 'node:net';

/** A request the proxy carried: a forwarded `GET http://host/path`, or a `CONNECT host:port` tunnel. */
export interface ProxiedRequest {
  kind: 'forward' | 'connect';
  target: string;
  /** The forwarded request's headers (a tunnel's are inside it, unseen). */
  headers?: http.IncomingHttpHeaders;
}

/**
 * A real forward proxy on 127.0.0.1, as a corporate network has one: plain HTTP requests in
 * absolute form are forwarded, `CONNECT` opens a TCP tunnel. It records what it carried.
 */
export async function startForwardProxy(): Promise<{ url: string; requests: ProxiedRequest[]; close(): Promise<void> }> {
  const requests: ProxiedRequest[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    requests.push({ kind: 'forward', target: req.url ?? '', headers: req.headers });
    const target = new URL(req.url ?? '/');
    const { host: _host, 'proxy-connection': _pc, ...headers } = req.headers;
    const upstream = http.request(target, { method: req.method, headers: { ...headers, host: target.host } }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.writeHead(502).end('bad gateway'));
    req.pipe(upstream);
  });
  server.on('connect', (req, client: net.Socket, head: Buffer) => {
    requests.push({ kind: 'connect', target: req.url ?? '' });
    const [host, port] = (req.url ?? '').split(/:(?=\d+$)/);
    const upstream = net.connect(Number(port), host.replace(/^\[|\]$/g, ''), () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream).add(client);
    const end = () => (upstream.destroy(), client.destroy());
    upstream.on('error', end);
    client.on('error', end);
  });
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
