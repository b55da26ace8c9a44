/**
 * The load generator of the run-throughput scenario, in a process of its own so that its CPU (HTTP
 * requests, reading the SSE answers) is not counted as the pipeline's. Each run is a POST to an SSE
 * route; it is done when the `final` event's bytes have arrived (an `error` event or a non-SSE
 * answer is a failed run). Targets are used in turn, so the kinds of run alternate.
 *
 * Protocol (IPC): on start it sends `{ready}`. `{cmd: 'closed', concurrency, warmupMs, windowMs, targets}`
 * keeps `concurrency` runs in flight; `{cmd: 'open', rate, warmupMs, windowMs, targets}` starts
 * `rate` runs per second on a fixed schedule. Both send `{event: 'window-start'}` when the warm-up
 * ends and `{event: 'window-end'}` when the window ends, stop starting runs, wait for the runs in
 * flight, then send `{event: 'result', ...}`: the runs that finished inside the window, per kind,
 * with their latencies. `{cmd: 'stop'}` exits.
 */
import http from 'node:http';
import { now, msBetween, type Stamp } from './timing';

export interface LoadTarget {
  kind: string;
  url: string;
  token: string;
  body: Record<string, unknown>;
}

export interface LoadCommand {
  cmd: 'closed' | 'open';
  concurrency?: number;
  rate?: number;
  warmupMs: number;
  windowMs: number;
  targets: LoadTarget[];
}

export interface LoadResult {
  event: 'result';
  /** Runs that finished inside the window. */
  completed: number;
  /** Every run that finished, inside the window or not (for counts per run over the whole command). */
  total: number;
  failed: number;
  firstError?: string;
  windowMs: number;
  /** Latency (POST sent → `final` arrived) of each run that started and finished inside the window, by kind. */
  latenciesMs: Record<string, number[]>;
  completedByKind: Record<string, number>;
}

/**
 * Keep-alive connections, as many as the runs in flight: a run reuses a socket once the stream
 * before it closed. `node:http` rather than `fetch`: its web streams cost this process several
 * times the CPU per run, and this process shares the machine with the pipeline it measures.
 */
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
const FINAL = Buffer.from('event: final');
const ERROR = Buffer.from('event: error');

/** One run: POST, then read the SSE answer until `final`. Resolves with its latency, rejects on a failed run. */
function runOnce(target: LoadTarget, seq: number, started: Stamp = now()): Promise<number> {
  const body = JSON.stringify({ ...target.body, message: `${String(target.body.message)} #${seq}` });
  return new Promise<number>((resolve, reject) => {
    const request = http.request(target.url, {
      method: 'POST',
      agent,
      headers: {
        authorization: `Bearer ${target.token}`,
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        accept: 'text/event-stream',
      },
    });
    let answered = false;
    request.once('error', (error: NodeJS.ErrnoException) => {
      // A kept-alive socket the server closed, idle, as this request went out, before any answer:
      // the run is sent again on a fresh socket (as Node's documentation advises; fetch does it too).
      if (request.reusedSocket && error.code === 'ECONNRESET' && !answered) resolve(runOnce(target, seq, started));
      else reject(error);
    });
    request.once('response', (response) => {
      answered = true;
      if (!String(response.headers['content-type'] ?? '').startsWith('text/event-stream')) {
        const parts: Buffer[] = [];
        response.on('data', (part: Buffer) => parts.push(part));
        response.once('end', () =>
          reject(new Error(`${target.kind} answered ${response.statusCode}: ${Buffer.concat(parts).toString('utf8').slice(0, 300)}`)),
        );
        return;
      }
      let tail: Buffer = Buffer.alloc(0);
      let latency: number | undefined;
      response.on('data', (part: Buffer) => {
        // After `final` the server closes the stream; reading to the end lets the connection be reused.
        if (latency !== undefined) return;
        // The last bytes of the previous read, so a marker split across reads is still found.
        const window = tail.length ? Buffer.concat([tail, part]) : part;
        if (window.includes(FINAL)) latency = msBetween(started);
        else if (window.includes(ERROR)) {
          response.destroy();
          reject(new Error(`${target.kind} streamed an error: ${window.toString('utf8').slice(0, 300)}`));
        } else tail = window.subarray(Math.max(0, window.length - FINAL.length));
      });
      response.once('error', reject);
      response.once('end', () =>
        latency !== undefined ? resolve(latency) : reject(new Error(`${target.kind}: the stream ended without final`)),
      );
    });
    request.end(body);
  });
}

async function drive(command: LoadCommand): Promise<LoadResult> {
  const latenciesMs: Record<string, number[]> = {};
  const completedByKind: Record<string, number> = {};
  let completed = 0;
  let total = 0;
  let failed = 0;
  let firstError: string | undefined;
  let seq = 0;
  let windowStart: Stamp | undefined;
  let windowEnd: Stamp | undefined;
  let stopping = false;
  const inFlight = new Set<Promise<void>>();

  const start = () => {
    const target = command.targets[seq % command.targets.length];
    const startedAt = now();
    const run = runOnce(target, seq++).then(
      (latency) => {
        const finishedAt = now();
        total += 1;
        const inside = windowStart !== undefined && finishedAt >= windowStart && (windowEnd === undefined || finishedAt <= windowEnd);
        if (!inside) return;
        completed += 1;
        completedByKind[target.kind] = (completedByKind[target.kind] ?? 0) + 1;
        if (startedAt >= windowStart!) (latenciesMs[target.kind] ??= []).push(latency);
      },
      (error: unknown) => {
        failed += 1;
        firstError ??= error instanceof Error ? error.message : String(error);
      },
    );
    const tracked = run.finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
    return tracked;
  };

  const began = now();
  const timers: NodeJS.Timeout[] = [];
  timers.push(
    setTimeout(() => {
      windowStart = now();
      process.send?.({ event: 'window-start' });
    }, command.warmupMs),
  );
  const ended = new Promise<void>((resolve) =>
    timers.push(
      setTimeout(() => {
        windowEnd = now();
        stopping = true;
        process.send?.({ event: 'window-end' });
        resolve();
      }, command.warmupMs + command.windowMs),
    ),
  );

  if (command.cmd === 'closed') {
    const loop = async () => {
      while (!stopping) await start();
    };
    for (let i = 0; i < (command.concurrency ?? 1); i += 1) void loop();
  } else {
    // A fixed schedule: at each tick, start every run that is due by now (open loop: a slow answer
    // does not delay the next start).
    const intervalMs = 1000 / (command.rate ?? 1);
    let started = 0;
    const tick = setInterval(
      () => {
        if (stopping) return clearInterval(tick);
        const due = Math.floor(msBetween(began) / intervalMs) + 1;
        while (started < due) {
          started += 1;
          void start();
        }
      },
      Math.max(1, Math.min(10, intervalMs / 2)),
    );
    timers.push(tick);
  }
  await ended;
  while (inFlight.size) await Promise.all([...inFlight]);
  for (const timer of timers) clearTimeout(timer);
  return {
    event: 'result',
    completed,
    total,
    failed,
    firstError,
    windowMs: msBetween(windowStart!, windowEnd!),
    latenciesMs,
    completedByKind,
  };
}

process.on('message', (message: LoadCommand | { cmd: 'stop' }) => {
  if (message.cmd === 'stop') return void process.exit(0);
  drive(message).then(
    (result) => process.send?.(result),
    (error: unknown) => process.send?.({ event: 'failed', error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
  );
});
process.on('disconnect', () => process.exit(0));
process.send?.({ ready: true });
