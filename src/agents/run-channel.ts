import type { RedisClient } from '../lib/redis';
import { toStorable } from '../lib/text-safety';
import type { z } from 'zod';
import { followStream } from '../lib/redis-streams';
import { agentCompleteSchema, agentDataSchema, describeIssues, type AgentFile, type AgentFrameAck } from '../schemas/device-protocol';
import { redisKeys } from '../lib/redis-keys';

/** A frame of a local run as the worker reads it. */
export type RunFrame = { type: 'data'; files: AgentFile[] } | { type: 'complete'; filesRead: number; errors: string[] };

/**
 * Carries a local run's `agent_data` / `agent_complete` frames from the API node holding the
 * device's socket to the worker running the run, through one Redis stream per run. The worker
 * opens the channel (naming the user and device allowed to write to it) before it sends
 * `agent_run`; the API node appends only frames from that device, so a device cannot feed files
 * into another user's run, or into a run that is not waiting for files.
 */
export class AgentRunChannel {
  /** Per run, the last frame this node is storing: the next one waits for it (see {@link accept}). */
  private readonly tails = new Map<string, Promise<void>>();

  constructor(
    private readonly redis: RedisClient,
    private readonly keyPrefix: string,
    /** Content bytes a run's frames may carry in all; the worker keeps fewer, this caps what Redis holds. */
    private readonly maxStreamBytes = Number.POSITIVE_INFINITY,
  ) {}

  private framesKey = (runId: string) => redisKeys(this.keyPrefix).agentRunFrames(runId);
  private ownerKey = (runId: string) => redisKeys(this.keyPrefix).agentRunOwner(runId);
  private bytesKey = (runId: string) => redisKeys(this.keyPrefix).agentRunBytes(runId);

  async open(runId: string, userId: string, deviceId: string, ttlMs: number): Promise<void> {
    await this.redis
      .multi()
      .del(this.framesKey(runId), this.bytesKey(runId))
      .set(this.ownerKey(runId), `${userId}\n${deviceId}`, 'PX', ttlMs)
      .exec();
  }

  async close(runId: string): Promise<void> {
    await this.redis.del(this.framesKey(runId), this.ownerKey(runId), this.bytesKey(runId));
  }

  /**
   * Validates a frame from a device and appends it to its run; the result is the frame's ack.
   *
   * A run's frames are stored in the order they were accepted, whatever each one waits on: a
   * device may send `agent_data` and `agent_complete` back to back without waiting for acks, and
   * a `complete` stored before the data it follows would end the run without those files. The
   * order is taken before the first await, so it is the order the transport delivered.
   */
  accept(userId: string, deviceId: string, type: 'agent_data' | 'agent_complete', rawPayload: unknown): Promise<AgentFrameAck> {
    // Device data is the user's own but untrusted text: cleaned, not refused, so a file with a NUL
    // still reaches the run.
    const payload = toStorable(rawPayload);
    const schema: z.ZodType<{ runId: string }> = type === 'agent_data' ? agentDataSchema : agentCompleteSchema;
    const parsed = schema.safeParse(payload);
    if (!parsed.success) return Promise.resolve({ ok: false, error: { code: 'validation_failed', message: describeIssues(parsed.error) } });
    const { runId } = parsed.data;
    const frame: RunFrame =
      type === 'agent_data'
        ? { type: 'data', files: (parsed.data as z.output<typeof agentDataSchema>).files }
        : {
            type: 'complete',
            filesRead: (parsed.data as z.output<typeof agentCompleteSchema>).filesRead,
            errors: (parsed.data as z.output<typeof agentCompleteSchema>).errors,
          };
    return this.inRunOrder(runId, () => this.append(userId, deviceId, runId, frame));
  }

  /** Runs `step` once every step queued earlier for `runId` on this node has settled. */
  private inRunOrder<T>(runId: string, step: () => Promise<T>): Promise<T> {
    const result = (this.tails.get(runId) ?? Promise.resolve()).then(step);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(runId, tail);
    void tail.then(() => {
      if (this.tails.get(runId) === tail) this.tails.delete(runId);
    });
    return result;
  }

  private async append(userId: string, deviceId: string, runId: string, frame: RunFrame): Promise<AgentFrameAck> {
    const owner = await this.redis.get(this.ownerKey(runId));
    if (owner !== `${userId}\n${deviceId}`)
      return { ok: false, error: { code: 'unknown_run', message: `No run ${runId} is waiting for files from this device` } };
    if (frame.type === 'data') {
      const bytes = frame.files.reduce((sum, file) => sum + Buffer.byteLength(file.content, 'utf8'), 0);
      const total = await this.redis.multi().incrby(this.bytesKey(runId), bytes).pexpire(this.bytesKey(runId), 3_600_000).exec();
      if (Number(total?.[0]?.[1]) > this.maxStreamBytes) {
        return {
          ok: false,
          error: { code: 'too_large', message: `The run's files passed ${this.maxStreamBytes} bytes; send agent_complete` },
        };
      }
    }
    const key = this.framesKey(runId);
    await this.redis.multi().xadd(key, '*', 'f', JSON.stringify(frame)).pexpire(key, 3_600_000).exec();
    return { ok: true };
  }

  /** The run's frames, live, until `complete` or `signal` aborts. */
  async *frames(runId: string, signal: AbortSignal): AsyncGenerator<RunFrame> {
    for await (const [, json] of followStream(this.redis, this.framesKey(runId), '0', signal)) {
      const frame = JSON.parse(json) as RunFrame;
      yield frame;
      if (frame.type === 'complete') return;
    }
  }
}
