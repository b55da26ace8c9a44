import WebSocket from 'ws';

/**
 * A Socket.IO client reduced to what the fan-out measurement needs, speaking the Engine.IO v4 /
 * Socket.IO v5 protocol over a raw websocket: connect to a namespace with `auth`, optionally emit
 * one event with an ack (the room join), answer pings, and hand each event frame to `onFrame`
 * without parsing it. socket.io-client JSON-parses every 5 KB chunk, which on a 2-core machine makes
 * the clients, not the server, the bottleneck of a fan-out benchmark.
 */
export interface LeanSocket {
  close(): void;
}

export function connectLean(
  url: string,
  auth: Record<string, unknown>,
  join: { event: string; arg: unknown } | undefined,
  onFrame: (frame: Buffer) => void,
  timeoutMs = 20_000,
): Promise<LeanSocket> {
  const target = new URL(url);
  const nsp = target.pathname === '/' ? '/' : target.pathname;
  const prefix = nsp === '/' ? '' : `${nsp},`;
  const ws = new WebSocket(`ws://${target.host}/socket.io/?EIO=4&transport=websocket`, { perMessageDeflate: false });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error('lean socket: connect timed out')), timeoutMs);
    let ready = false;
    const fail = (error: Error) => {
      clearTimeout(timer);
      ws.terminate();
      reject(error);
    };
    const done = () => {
      clearTimeout(timer);
      ready = true;
      resolve({ close: () => ws.close() });
    };
    ws.on('error', (error) => (ready ? undefined : fail(error)));
    ws.on('message', (data: Buffer, isBinary) => {
      if (isBinary) return;
      const type = data[0];
      if (type === 0x32 /* '2' ping */) return void ws.send('3');
      if (ready) return onFrame(data);
      const text = data.toString('utf8');
      if (text.startsWith('0')) return void ws.send(`40${prefix}${JSON.stringify(auth)}`);
      if (text.startsWith(`40${prefix}`)) {
        if (!join) return done();
        return void ws.send(`42${prefix}1${JSON.stringify([join.event, join.arg])}`);
      }
      if (text.startsWith(`44${prefix}`)) return fail(new Error(`lean socket: connect refused ${text.slice(2 + prefix.length)}`));
      if (text.startsWith(`43${prefix}1`)) {
        const [ack] = JSON.parse(text.slice(2 + prefix.length + 1)) as [{ ok?: boolean; error?: unknown }];
        return ack?.ok === false ? fail(new Error(`lean socket: join refused ${JSON.stringify(ack.error)}`)) : done();
      }
    });
  });
}

/** `42/canvas,["<event>",` — how an event frame of `nsp` starts. */
export function eventFramePrefix(nsp: string, event: string): Buffer {
  return Buffer.from(`42${nsp === '/' ? '' : `${nsp},`}["${event}",`);
}

/** generationId and chunkCount from the head of a chunk frame (they come before the blocks). */
export function chunkHead(frame: Buffer, prefixLength: number): { generationId: string; chunkCount: number } | undefined {
  const head = frame.toString('latin1', prefixLength, Math.min(frame.length, prefixLength + 400));
  const match = /"generationId":"([^"]+)".*?"chunkCount":(\d+)/.exec(head);
  return match ? { generationId: match[1], chunkCount: Number(match[2]) } : undefined;
}
