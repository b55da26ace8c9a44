import net from 'node:net';

/**
 * A TCP proxy in front of a real server (Redis, PostgreSQL) that a test can cut and restore, to
 * simulate the server going away and coming back without touching the shared server itself.
 * `cut()` refuses new connections and destroys open ones; `restore()` listens again on the same port.
 */
export interface TcpProxy {
  port: number;
  cut(): Promise<void>;
  /**
   * Holds what the server sends on each open connection whose client has sent `word` (a Redis
   * command's name, say: `xread` holds a stream reader's replies and no other connection's) until
   * the returned `release()`, which passes it on in order. The other connections flow as before.
   */
  hold(word: string): () => void;
  restore(): Promise<void>;
  close(): Promise<void>;
}

/** One proxied connection: what its client sent, and what the server sent while held. */
interface Link {
  sent: string;
  held: Buffer[] | undefined;
  client: net.Socket;
  upstream: net.Socket;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const open = new Set<net.Socket>();
  const links = new Set<Link>();
  let server: net.Server | undefined;
  let port = 0;

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server = net.createServer((client) => {
        const upstream = net.connect(target.port, target.host);
        open.add(client).add(upstream);
        const link: Link = { sent: '', held: undefined, client, upstream };
        links.add(link);
        const drop = () => {
          client.destroy();
          upstream.destroy();
          open.delete(client);
          open.delete(upstream);
          links.delete(link);
        };
        client.on('error', drop).on('close', drop);
        upstream.on('error', drop).on('close', drop);
        client.on('data', (chunk: Buffer) => {
          // What the client sent, lower-cased and capped: enough to tell a connection's commands.
          if (link.sent.length < 65_536) link.sent += chunk.toString('latin1').toLowerCase();
        });
        client.pipe(upstream).pipe(client);
      });
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        port = (server!.address() as net.AddressInfo).port;
        resolve();
      });
    });

  const cut = () =>
    new Promise<void>((resolve) => {
      for (const socket of open) socket.destroy();
      open.clear();
      if (!server) return resolve();
      server.close(() => resolve());
      server = undefined;
    });

  await listen();
  return {
    get port() {
      return port;
    },
    cut,
    restore: listen,
    close: cut,
    hold: (word) => {
      const needle = word.toLowerCase();
      const held = [...links].filter((link) => link.sent.includes(needle) && !link.held);
      const keep = new Map<Link, (chunk: Buffer) => void>();
      for (const link of held) {
        const chunks: Buffer[] = [];
        link.held = chunks;
        keep.set(link, (chunk) => void chunks.push(chunk));
        link.upstream.unpipe(link.client);
        link.upstream.on('data', keep.get(link)!);
        link.upstream.resume();
      }
      return () => {
        for (const link of held) {
          if (!link.held) continue;
          // One synchronous step: no chunk arrives between the held ones and the pipe.
          link.upstream.off('data', keep.get(link)!);
          for (const chunk of link.held) link.client.write(chunk);
          link.held = undefined;
          link.upstream.pipe(link.client);
        }
      };
    },
  };
}
