import WebSocket from 'ws';

/**
 * A desktop app as its protocol describes it, written from the frame tables alone: a plain
 * WebSocket to `/api/v1/ws/device?token=<jwt>`, one JSON text frame per message with a `type`,
 * snake_case envelope. It shares no code with the server: it sees only frames.
 */
export type Frame = { type: string } & Record<string, any>;

export class WsDevice {
  /** Every frame received, in order. */
  readonly frames: Frame[] = [];
  /** Answers `ping` with `pong` (turn off to test the heartbeat). */
  autoPong = true;
  /** When set, answers every `tool_call` with what it returns (`undefined`: no answer). */
  onToolCall?: (call: Frame) => Record<string, unknown> | undefined | Promise<Record<string, unknown> | undefined>;
  readonly closed: Promise<{ code: number; reason: string }>;
  private readonly waiters = new Set<() => void>();

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const frame = JSON.parse(String(data)) as Frame;
      this.frames.push(frame);
      if (frame.type === 'ping' && this.autoPong) this.send({ type: 'pong' });
      if (frame.type === 'tool_call' && this.onToolCall)
        void Promise.resolve(this.onToolCall(frame)).then((reply) => reply && this.send({ type: 'tool_result', ...reply }));
      this.waiters.forEach((check) => check());
    });
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: String(reason) })));
  }

  /** Opens the connection (to `path`, the device endpoint by default); rejects with `status <code>` when the upgrade is refused. */
  static connect(baseUrl: string, token: string | undefined, timeoutMs = 10_000, path = '/api/v1/ws/device'): Promise<WsDevice> {
    const url = `${baseUrl.replace(/^http/, 'ws')}${path}${token === undefined ? '' : `?token=${encodeURIComponent(token)}`}`;
    const ws = new WebSocket(url);
    const device = new WsDevice(ws);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => (ws.terminate(), reject(new Error('websocket did not open'))), timeoutMs);
      ws.once('open', () => (clearTimeout(timer), resolve(device)));
      ws.once('unexpected-response', (_req, res) => (clearTimeout(timer), ws.terminate(), reject(new Error(`status ${res.statusCode}`))));
      ws.once('error', (error) => (clearTimeout(timer), reject(error)));
    });
  }

  /** Connects and says `device_hello`; resolves once the server shows it is served (a pong-free round trip). */
  static async hello(baseUrl: string, token: string, deviceId: string, agentIds: string[] = []): Promise<WsDevice> {
    const device = await WsDevice.connect(baseUrl, token);
    device.send({ type: 'device_hello', device_id: deviceId, agent_ids: agentIds });
    return device;
  }

  /** Sends a frame: an object as JSON text, a string or a Buffer as it is. */
  send(frame: object | string | Buffer, options: { binary?: boolean } = {}): void {
    this.ws.send(typeof frame === 'string' || Buffer.isBuffer(frame) ? frame : JSON.stringify(frame), { binary: options.binary ?? false });
  }

  /** The first frame (already received or future) after `from` of `type` that satisfies `predicate`. */
  next(
    type: string,
    predicate: (frame: Frame) => boolean = () => true,
    options: { from?: number; timeoutMs?: number } = {},
  ): Promise<Frame> {
    const timeoutMs = options.timeoutMs ?? 15_000;
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.frames.slice(options.from ?? 0).find((frame) => frame.type === type && predicate(frame));
        if (!found) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(found);
      };
      const timer = setTimeout(
        () => (
          this.waiters.delete(check),
          reject(new Error(`no ${type} frame within ${timeoutMs} ms; got ${JSON.stringify(this.frames.map((f) => f.type))}`))
        ),
        timeoutMs,
      );
      this.waiters.add(check);
      check();
    });
  }

  /** Frames of `type` received so far. */
  all(type: string): Frame[] {
    return this.frames.filter((frame) => frame.type === type);
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  close(): void {
    this.ws.close();
  }
}
