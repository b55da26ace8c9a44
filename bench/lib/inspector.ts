import WebSocket from 'ws';

/** `process.memoryUsage()` of the inspected process, plus its young generation's committed bytes. */
export interface MemoryParts {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  /** Bytes V8 has committed to its young generation (it grows them under allocation and keeps them a while). */
  newSpace: number;
  /** Of those, bytes holding objects (after a full GC: what survived it there). */
  newSpaceUsed: number;
}

/**
 * A minimal Chrome DevTools Protocol client for a process started with `--inspect=127.0.0.1:0`:
 * enough to force a full garbage collection and read the V8 heap in use, so memory per socket can
 * be read without the slack of a heap that grows in steps.
 */
export class Inspector {
  private nextId = 1;
  private readonly pending = new Map<number, (result: any) => void>();

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const message = JSON.parse(data.toString('utf8')) as { id?: number; result?: unknown };
      if (message.id !== undefined) this.pending.get(message.id)?.(message.result);
      if (message.id !== undefined) this.pending.delete(message.id);
    });
  }

  /** Finds `ws://…` in the output of a process started with --inspect. */
  static urlIn(output: string): string | undefined {
    return /Debugger listening on (ws:\/\/\S+)/.exec(output)?.[1];
  }

  static async connect(url: string): Promise<Inspector> {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new Inspector(ws);
  }

  send(method: string, params: Record<string, unknown> = {}): Promise<any> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Bytes of V8 heap in use after a full garbage collection. */
  async heapUsedAfterGc(): Promise<number> {
    await this.send('HeapProfiler.collectGarbage');
    await this.send('HeapProfiler.collectGarbage');
    const usage = (await this.send('Runtime.getHeapUsage')) as { usedSize: number };
    return usage.usedSize;
  }

  /**
   * Where the process's memory is, read inside it after the caller's GC: `process.memoryUsage()`
   * and V8's young generation (`new_space`): its committed size, which V8 grows under allocation
   * (up to 64 MiB on Node 24, 32 MiB on Node 20) and shrinks again later, and what it holds.
   */
  async memory(): Promise<MemoryParts> {
    const expression = `(() => {
      const young = process.getBuiltinModule('node:v8').getHeapSpaceStatistics().find((space) => space.space_name === 'new_space');
      return JSON.stringify({ ...process.memoryUsage(), newSpace: young?.space_size ?? 0, newSpaceUsed: young?.space_used_size ?? 0 });
    })()`;
    const reply = (await this.send('Runtime.evaluate', { expression, returnByValue: true })) as {
      result?: { value?: string };
      exceptionDetails?: { text?: string };
    };
    if (typeof reply.result?.value !== 'string') throw new Error(`memory reading failed: ${reply.exceptionDetails?.text ?? 'no value'}`);
    return JSON.parse(reply.result.value) as MemoryParts;
  }

  /** Starts the sampling profiler; the returned function stops it and returns the .cpuprofile JSON. */
  async startProfile(intervalUs = 200): Promise<() => Promise<unknown>> {
    await this.send('Profiler.enable');
    await this.send('Profiler.setSamplingInterval', { interval: intervalUs });
    await this.send('Profiler.start');
    return async () => ((await this.send('Profiler.stop')) as { profile: unknown }).profile;
  }

  close(): void {
    this.ws.close();
  }
}
