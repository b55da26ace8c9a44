import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { toWire, withTimeout, type Stamp } from './timing';
import type { SseFleetReply, SseFleetRequest } from './sse-fleet-process';

type Unsent = SseFleetRequest extends infer R ? (R extends SseFleetRequest ? Omit<R, 'id'> : never) : never;

/** Latency of tool_output events, model write → arrival at each stream, in ms. */
export interface StreamLatency {
  deliveries: number;
  missing: number;
  p50?: number;
  p95?: number;
  p99?: number;
  max?: number;
  /** Per call, ms from the model's write to its first and its last stream. */
  byCall: Array<{ first: number; last: number }>;
}

/** Many open SSE generation streams in a child process of their own (see sse-fleet-process.ts). */
export class SseFleet {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (reply: SseFleetReply) => {
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      if (reply.ok) waiter.resolve(reply.result);
      else waiter.reject(new Error(`sse fleet: ${reply.error}`));
    });
    child.on('error', () => undefined);
    child.once('exit', (code) => {
      for (const waiter of this.pending.values()) waiter.reject(new Error(`sse fleet exited with ${code}`));
      this.pending.clear();
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  static async start(): Promise<SseFleet> {
    const child = fork(path.join(__dirname, 'sse-fleet-process.ts'), [], {
      execArgv: ['--import', 'tsx', '--max-old-space-size=2048'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        child.once('message', () => resolve());
        child.once('exit', (code) => reject(new Error(`sse fleet exited with ${code} before it was ready`)));
      }),
      30_000,
      'sse fleet start',
    );
    return new SseFleet(child);
  }

  /** Opens one stream per URL, `concurrency` at a time; failures are counted, not thrown. */
  open(group: string, urls: string[], token: string, concurrency = 50): Promise<{ opened: number; failed: number; firstError?: string }> {
    return this.call({ cmd: 'open', group, urls, token, concurrency }, 300_000) as Promise<{
      opened: number;
      failed: number;
      firstError?: string;
    }>;
  }

  /** Resolves once every stream of the group has read `complete` or `error`. */
  done(group: string, timeoutMs: number): Promise<unknown> {
    return this.call({ cmd: 'done', group }, timeoutMs);
  }

  latency(group: string, emittedAt: Stamp[]): Promise<StreamLatency> {
    return this.call({ cmd: 'latency', group, emittedAt: emittedAt.map(toWire) }, 30_000) as Promise<StreamLatency>;
  }

  close(group: string): Promise<unknown> {
    return this.call({ cmd: 'close', group }, 60_000);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    await this.call({ cmd: 'shutdown' }, 30_000).catch(() => undefined);
    await withTimeout(exited, 10_000, 'sse fleet exit').catch(() => this.child.kill('SIGKILL'));
  }

  private call(request: Unsent, timeoutMs: number): Promise<unknown> {
    const id = this.nextId++;
    const reply = new Promise<unknown>((resolve, reject) => {
      if (!this.child.connected) return reject(new Error(`sse fleet ${request.cmd}: the process is gone`));
      this.pending.set(id, { resolve, reject });
      this.child.send({ ...request, id });
    });
    return withTimeout(reply, timeoutMs, `sse fleet ${request.cmd}`).finally(() => this.pending.delete(id));
  }
}
