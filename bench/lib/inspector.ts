import WebSocket from 'ws';

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
