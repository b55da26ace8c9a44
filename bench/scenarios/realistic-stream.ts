import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { LlmEndpoint } from '../../src/ai/llm';
import { createCanvas, registerUser } from '../../test/support/http';
import type { BenchContext } from '../lib/context';
import { consumeModelStream } from '../lib/floor';
import { ownCpuMs, startInProcessSwitchboard, uniquePrefix } from '../lib/harness';
import { startCpuProfile } from '../lib/profiler';
import { generateStream } from '../lib/sse-client';
import { median, round, slope, summarize } from '../lib/stats';
import { fromWire, msBetween, settle, withTimeout } from '../lib/timing';

export interface RealisticStreamOptions {
  /** Tool calls per generation for each measured size (~55 chunks per call). */
  callCounts: number[];
  /** Measured runs per size and consumer. */
  reps: number;
  warmups: number;
}

/** Chunks a turn of `calls` calls streams (see stream-model-process.ts): role + ~55 per call + finish + usage. */
const CONSUMERS = ['switchboard', 'openaiSdk', 'bare'] as const;
type Consumer = (typeof CONSUMERS)[number];

/**
 * The model streams 200 create_text calls in ~4-character deltas (~10,900 chunks, ~3.5 MB) as fast
 * as the socket takes them, from a process of its own. Three consumers take the same stream in
 * turn: a whole Switchboard generation (POST → `complete` on the SSE client) and the minimal
 * consumer (`bare`: fetch, SSE line split, JSON.parse of each chunk, the arguments accumulated per
 * call), the reference Switchboard's CPU per generation is held to, both in this process; and the
 * `openai` SDK alone (iterate, accumulate arguments per call, parse each call) in a process of its
 * own (sdk-consumer-process.ts), whose garbage would otherwise be collected in the next
 * generation measured here. CPU is the consumer's process's user+system time per run (the
 * generation's SSE client included).
 */
export async function realisticStreamScenario(ctx: BenchContext, options: RealisticStreamOptions) {
  const model = await StreamModel.start();
  const app = await startInProcessSwitchboard({
    redis: ctx.redis,
    keyPrefix: uniquePrefix('stream'),
    dataDir: ctx.dataDir,
    endpoint: model.endpoint,
  });
  const sdk = await SdkConsumer.start();
  try {
    const owner = await registerUser(app.api, 'Stream');
    const canvasId = await createCanvas(app.api, owner, 'Stream canvas');
    let run = 0;
    type Consumed = {
      startedAt?: bigint;
      headersAt?: bigint;
      toolStageAt?: bigint;
      firstOutputAt?: bigint;
      completeAt?: bigint;
      calls: number;
      /** CPU the consumer measured in a process of its own (the SDK's), instead of this process's. */
      cpuMs?: number;
    };
    const consume: Record<Consumer, (calls: number, tag: string) => Promise<Consumed>> = {
      switchboard: async (calls, tag) => {
        const stream = await generateStream(
          app.api,
          owner.accessToken,
          canvasId,
          `Write ${calls} paragraphs [calls:${calls}] [run:${tag}]`,
          { timeoutMs: 120_000 },
        );
        const outputs = stream.events.filter((event) => event.event === 'tool_output');
        const complete = stream.events.find((event) => event.event === 'complete');
        const toolStage = stream.events.find((event) => event.event === 'status' && event.data.stage === 'tool');
        if (!complete) throw new Error(`generation ended without complete: ${JSON.stringify(stream.events.at(-1)?.data)}`);
        return {
          startedAt: stream.startedAt,
          headersAt: stream.headersAt,
          toolStageAt: toolStage?.at,
          firstOutputAt: outputs[0]?.at,
          completeAt: complete.at,
          calls: outputs.length,
        };
      },
      openaiSdk: async (calls, tag) => sdk.consume(model.baseURL, 'realistic', `Write ${calls} paragraphs [calls:${calls}] [run:${tag}]`),
      bare: async (calls, tag) => consumeModelStream(model.baseURL, 'realistic', `Write ${calls} paragraphs [calls:${calls}] [run:${tag}]`),
    };

    const bySize: Array<Record<string, unknown>> = [];
    const lastByteToComplete: number[] = [];
    const firstCallToOutput: number[] = [];
    const postToModelRequest: number[] = [];
    const postToHeaders: number[] = [];
    const firstTokenToSse: number[] = [];
    for (const calls of options.callCounts) {
      const cpu: Record<Consumer, number[]> = { switchboard: [], openaiSdk: [], bare: [] };
      let chunks = 0;
      let bytes = 0;
      for (let rep = 0; rep < options.warmups + options.reps; rep += 1) {
        // Consumers alternate within a rep, so the machine's state is shared by all three.
        for (const consumer of CONSUMERS) {
          const tag = `s${run++}`;
          await settle(100);
          const profiled = consumer === 'switchboard' && rep === options.warmups && ctx.profileDir;
          const stopProfile = profiled ? await startCpuProfile(ctx.profileDir, `realistic-stream-${calls}`) : undefined;
          const cpu0 = ownCpuMs();
          const result = await consume[consumer](calls, tag);
          const spent = result.cpuMs ?? ownCpuMs() - cpu0;
          const profile = await stopProfile?.();
          if (profile) ctx.log(`realisticStream: CPU profile of one ${calls}-call generation in ${profile}`);
          if (result.calls !== calls) throw new Error(`${consumer} saw ${result.calls} of ${calls} calls`);
          if (rep < options.warmups) continue;
          cpu[consumer].push(spent);
          const turn = await model.turn(tag);
          chunks = turn.chunks;
          bytes = turn.bytes;
          if (consumer === 'switchboard') {
            // Queue overhead: our part of time to first token, at every size.
            postToModelRequest.push(msBetween(result.startedAt!, fromWire(turn.requestAt)));
            postToHeaders.push(msBetween(result.startedAt!, result.headersAt));
            if (result.toolStageAt) firstTokenToSse.push(msBetween(fromWire(turn.firstCallAt), result.toolStageAt));
          }
          if (consumer === 'switchboard' && calls === options.callCounts.at(-1)) {
            lastByteToComplete.push(msBetween(fromWire(turn.lastByteAt), result.completeAt));
            firstCallToOutput.push(msBetween(fromWire(turn.firstCallAt), result.firstOutputAt));
          }
        }
      }
      const medians = Object.fromEntries(CONSUMERS.map((consumer) => [consumer, round(median(cpu[consumer]))])) as Record<Consumer, number>;
      bySize.push({
        calls,
        chunks,
        megabytes: round(bytes / 2 ** 20),
        cpuMsP50: medians,
        ratioToOpenaiSdk: round(medians.switchboard / medians.openaiSdk),
        // The reference that matters: the least any consumer of the same bytes spends (fetch, SSE split, JSON.parse of each chunk).
        ratioToMinimalConsumer: round(medians.switchboard / medians.bare),
        switchboardCpuMsPer1kChunks: round((medians.switchboard / chunks) * 1000),
      });
      ctx.log(
        `realisticStream: ${calls} calls (${chunks} chunks): CPU ours ${medians.switchboard} ms, openai SDK ${medians.openaiSdk} ms, minimal consumer ${medians.bare} ms (${round(medians.switchboard / medians.bare)} ×)`,
      );
    }
    const largest = bySize.at(-1)!;
    return {
      config: {
        ...options,
        model: 'a separate process streams create_text calls in ~4-character argument deltas as fast as the socket takes them',
        cpu: 'user+system CPU per generation of the benchmark process (Switchboard with every role, or the minimal consumer), and of its own process for the openai SDK consumer',
      },
      bySize,
      ratioToOpenaiSdk: largest.ratioToOpenaiSdk,
      ratioToMinimalConsumer: largest.ratioToMinimalConsumer,
      // CPU per chunk should not grow with the stream: a slope in ms per 1k chunks, and the spread.
      cpuMsPer1kChunksSlope: round(
        slope(bySize.map((row) => [row.chunks as number, (row.cpuMsP50 as Record<Consumer, number>).switchboard] as const)) * 1000,
      ),
      lastByteToCompleteMs: summarize(lastByteToComplete),
      firstCallToFirstToolOutputMs: summarize(firstCallToOutput),
      // POST sent → the model has the request; the model's first token → its first SSE byte (status tool).
      postToModelRequestMs: summarize(postToModelRequest),
      // The API's share of it: POST sent → SSE response headers (validation, limits, row, enqueue).
      postToResponseHeadersMs: summarize(postToHeaders),
      modelFirstTokenToFirstSseMs: summarize(firstTokenToSse),
    };
  } finally {
    await app.stop();
    await sdk.stop();
    await model.stop();
  }
}

/** The `openai` SDK's consumer in its own process (sdk-consumer-process.ts) and its IPC. */
class SdkConsumer {
  private nextId = 1;

  private constructor(private readonly child: ChildProcess) {}

  static async start(): Promise<SdkConsumer> {
    const child = fork(path.join(__dirname, '../lib/sdk-consumer-process.ts'), [], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        child.once('message', () => resolve());
        child.once('exit', (code) => reject(new Error(`SDK consumer process exited with ${code}`)));
      }),
      30_000,
      'SDK consumer process start',
    );
    return new SdkConsumer(child);
  }

  /** One stream read by the SDK there: its calls and the CPU it took. */
  async consume(baseURL: string, model: string, prompt: string): Promise<{ calls: number; cpuMs: number }> {
    const id = this.nextId++;
    const reply = await withTimeout(
      new Promise<{ calls?: number; cpuMs?: number; error?: string }>((resolve) => {
        const onMessage = (message: { id?: number; calls?: number; cpuMs?: number; error?: string }) => {
          if (message.id !== id) return;
          this.child.off('message', onMessage);
          resolve(message);
        };
        this.child.on('message', onMessage);
        this.child.send({ id, baseURL, model, prompt });
      }),
      120_000,
      'SDK consumer',
    );
    if (reply.error !== undefined) throw new Error(`the SDK consumer failed: ${reply.error}`);
    return { calls: reply.calls!, cpuMs: reply.cpuMs! };
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.send({ cmd: 'stop' });
    await withTimeout(exited, 10_000, 'SDK consumer process exit').catch(() => this.child.kill('SIGKILL'));
  }
}

/** The model process (stream-model-process.ts) and its IPC. */
export class StreamModel {
  private nextId = 1;

  private constructor(
    private readonly child: ChildProcess,
    readonly baseURL: string,
  ) {}

  /** The endpoint Switchboard is given for it (model `realistic`). */
  get endpoint(): LlmEndpoint {
    return { baseURL: this.baseURL, apiKey: 'bench', provider: 'scripted', models: ['realistic'] };
  }

  /** Its process id, for its CPU time. */
  get pid(): number {
    return this.child.pid!;
  }

  static async start(): Promise<StreamModel> {
    const child = fork(path.join(__dirname, '../lib/stream-model-process.ts'), [], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    const port = await withTimeout(
      new Promise<number>((resolve, reject) => {
        child.once('message', (message: { port: number }) => resolve(message.port));
        child.once('exit', (code) => reject(new Error(`model process exited with ${code}`)));
      }),
      30_000,
      'model process start',
    );
    return new StreamModel(child, `http://127.0.0.1:${port}/v1`);
  }

  /** The stamps of turn `tag` once its last byte left. */
  async turn(tag: string): Promise<{ chunks: number; bytes: number; requestAt: string; firstCallAt: string; lastByteAt: string }> {
    for (let attempt = 0; attempt < 50; attempt += 1) {
      const id = this.nextId++;
      const reply = await withTimeout(
        new Promise<{ turn: { chunks: number; bytes: number; requestAt?: string; firstCallAt?: string; lastByteAt?: string } | null }>(
          (resolve) => {
            const onMessage = (message: { id?: number; turn: never }) => {
              if (message.id !== id) return;
              this.child.off('message', onMessage);
              resolve(message);
            };
            this.child.on('message', onMessage);
            this.child.send({ id, cmd: 'turn', tag });
          },
        ),
        10_000,
        'model turn',
      );
      const turn = reply.turn;
      if (turn?.requestAt && turn.firstCallAt && turn.lastByteAt)
        return turn as { chunks: number; bytes: number; requestAt: string; firstCallAt: string; lastByteAt: string };
      await settle(10);
    }
    throw new Error(`model process has no finished turn ${tag}`);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.send({ cmd: 'stop' });
    await withTimeout(exited, 10_000, 'model process exit').catch(() => this.child.kill('SIGKILL'));
  }
}
