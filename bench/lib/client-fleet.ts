import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fromWire, withTimeout, type Stamp } from './timing';
import type { RedisTarget } from '../../src/lib/redis';
import type { GenerationStream } from './sse-client';

/** Requests the fleet process understands (see fleet-process.ts). */
export type FleetRequest = { id: number } & (
  | {
      cmd: 'connect';
      group: string;
      /** Full namespace URL, e.g. `http://127.0.0.1:3000/canvas`. */
      url: string;
      auth: Record<string, unknown>;
      count: number;
      /** Emitted with an ack after connecting (e.g. `canvas:join`), refused acks fail the connect. */
      join?: { event: string; arg: unknown };
      /** Event whose payloads are counted per `generationId` (default `blocks_bulk_added_chunk`). */
      event?: string;
      concurrency?: number;
      /** `socket.io-client` (default) or `lean`: raw websocket clients that do not parse chunks (see lean-client.ts). */
      client?: 'socket.io-client' | 'lean';
    }
  | { cmd: 'completion'; group: string; key: string; withSample?: boolean }
  | { cmd: 'progress'; group: string; key: string }
  | { cmd: 'close'; group: string }
  | { cmd: 'follow'; target: RedisTarget; key: string }
  | {
      cmd: 'generate';
      api: string;
      token: string;
      canvasId: string;
      prompt: string;
      /** Follow the generation's Redis event stream from its headers on (`followed` reads it). */
      follow?: { target: RedisTarget; keyPrefix: string };
    }
  | { cmd: 'followed'; key: string }
  | { cmd: 'shutdown' }
);

export type FleetReply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

type Command<C extends FleetRequest['cmd']> = Omit<Extract<FleetRequest, { cmd: C }>, 'id' | 'cmd'>;
type Unsent = FleetRequest extends infer R ? (R extends FleetRequest ? Omit<R, 'id'> : never) : never;

/** When every client of a group had every chunk of one generation. */
export interface Completion {
  /** First chunk at any client. */
  firstAt: Stamp;
  /** Last chunk at the last client. */
  lastAt: Stamp;
  /** What client 0 received, when asked for. */
  sample?: unknown[];
}

/**
 * Socket.IO clients in a child process of their own. Groups of clients connect to one namespace;
 * `completion` resolves with the monotonic time at which every client of the group has received
 * every chunk (`chunkCount` of them) of a generation, whether it asks before or after that moment.
 */
export class ClientFleet {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (reply: FleetReply) => {
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      if (reply.ok) waiter.resolve(reply.result);
      else waiter.reject(new Error(`fleet: ${reply.error}`));
    });
    // A send to a fleet that died surfaces as that call's rejection, not as an unhandled 'error'.
    child.on('error', () => undefined);
    child.once('exit', (code) => {
      for (const waiter of this.pending.values()) waiter.reject(new Error(`fleet exited with ${code}`));
      this.pending.clear();
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  static async start(): Promise<ClientFleet> {
    const child = fork(path.join(__dirname, 'fleet-process.ts'), [], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        child.once('message', () => resolve());
        child.once('exit', (code) => reject(new Error(`fleet exited with ${code} before it was ready`)));
      }),
      30_000,
      'client fleet start',
    );
    return new ClientFleet(child);
  }

  connect(options: Command<'connect'>, timeoutMs = 120_000): Promise<{ connected: number }> {
    return this.call({ cmd: 'connect', ...options }, timeoutMs) as Promise<{ connected: number }>;
  }

  async completion(group: string, key: string, options: { timeoutMs?: number; withSample?: boolean } = {}): Promise<Completion> {
    const reply = (await this.call({ cmd: 'completion', group, key, withSample: options.withSample }, options.timeoutMs ?? 30_000)) as {
      firstAt: string;
      lastAt: string;
      sample?: unknown[];
    };
    return { firstAt: fromWire(reply.firstAt), lastAt: fromWire(reply.lastAt), sample: reply.sample };
  }

  progress(group: string, key: string): Promise<{ clients: number; done: number; chunks: number }> {
    return this.call({ cmd: 'progress', group, key }, 10_000) as Promise<{ clients: number; done: number; chunks: number }>;
  }

  /**
   * Starts following a Redis stream of generation events in the fleet process (see
   * fleet-process.ts), on one redis-server (its URL) or a Redis Cluster (its seed nodes).
   */
  follow(target: RedisTarget, key: string): Promise<unknown> {
    return this.call({ cmd: 'follow', target, key }, 10_000);
  }

  /** The followed stream's events, each with the time it became readable, once it ended. */
  async followed(key: string): Promise<Array<{ seq: number; type: string; stage?: string; at: Stamp }>> {
    const entries = (await this.call({ cmd: 'followed', key }, 60_000)) as Array<{ seq: number; type: string; stage?: string; at: string }>;
    return entries.map((entry) => ({ ...entry, at: fromWire(entry.at) }));
  }

  /**
   * `POST generate-stream` from the fleet process, read to its end there (as a browser would read
   * it, away from the server's event loop); with `follow`, its Redis event stream is followed from
   * the response's headers on. Events come back with their names and stamps, not their data.
   */
  async generate(request: Command<'generate'>, timeoutMs = 60_000): Promise<GenerationStream> {
    const reply = (await this.call({ cmd: 'generate', ...request }, timeoutMs)) as Omit<
      GenerationStream,
      'startedAt' | 'headersAt' | 'events'
    > & {
      startedAt: string;
      headersAt: string;
      events: Array<{ at: string; id?: string; event?: string }>;
    };
    return {
      ...reply,
      startedAt: fromWire(reply.startedAt),
      headersAt: fromWire(reply.headersAt),
      events: reply.events.map((event) => ({ ...event, at: fromWire(event.at), data: undefined })),
    };
  }

  close(group: string): Promise<unknown> {
    return this.call({ cmd: 'close', group }, 30_000);
  }

  /** Closes every socket and waits for the process to exit. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    await this.call({ cmd: 'shutdown' }, 10_000).catch(() => undefined);
    await withTimeout(exited, 10_000, 'fleet exit').catch(() => this.child.kill('SIGKILL'));
  }

  private call(request: Unsent, timeoutMs: number): Promise<unknown> {
    const id = this.nextId++;
    const reply = new Promise<unknown>((resolve, reject) => {
      if (!this.child.connected) return reject(new Error(`fleet ${request.cmd}: the fleet process is gone`));
      this.pending.set(id, { resolve, reject });
      this.child.send({ ...request, id });
    });
    return withTimeout(reply, timeoutMs, `fleet ${request.cmd}`).finally(() => this.pending.delete(id));
  }
}
