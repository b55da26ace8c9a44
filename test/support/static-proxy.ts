import { createReadStream, existsSync, statSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, sep } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.map': 'application/json',
};

export interface StaticProxy {
  url: string;
  close(): Promise<void>;
}

/**
 * A built web app at one origin with Switchboard behind it, as a deployment would put them (a
 * static host and a reverse proxy): files from `dir` (index.html for `/`), and `/api/*` and
 * `/socket.io/*` (WebSocket upgrades included) passed to `target`.
 */
export async function startStaticProxy(dir: string, target: string): Promise<StaticProxy> {
  const upstream = new URL(target);
  const proxied = (url: string) => url.startsWith('/api/') || url.startsWith('/socket.io/');
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    if (proxied(url)) {
      const forward = http.request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: url, headers: { ...req.headers, host: upstream.host } },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      forward.on('error', () => res.destroy());
      res.on('close', () => !res.writableFinished && forward.destroy());
      req.pipe(forward);
      return;
    }
    const pathname = decodeURIComponent(new URL(url, 'http://x').pathname);
    const file = normalize(join(dir, pathname === '/' ? 'index.html' : pathname));
    if (!file.startsWith(dir + sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
    createReadStream(file).pipe(res);
  });
  server.on('upgrade', (req, socket, head) => {
    const backend = net.connect(Number(upstream.port), upstream.hostname, () => {
      const headers = Object.entries({ ...req.headers, host: upstream.host }).flatMap(([name, value]) =>
        Array.isArray(value) ? value.map((v) => `${name}: ${v}`) : [`${name}: ${value}`],
      );
      backend.write(`${req.method} ${req.url} HTTP/1.1\r\n${headers.join('\r\n')}\r\n\r\n`);
      if (head.length) backend.write(head);
      backend.pipe(socket);
      socket.pipe(backend);
    });
    const end = () => {
      backend.destroy();
      socket.destroy();
    };
    backend.on('error', end);
    socket.on('error', end);
    backend.on('close', end);
    socket.on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
