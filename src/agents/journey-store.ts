import { randomUUID } from 'node:crypto';
import type { RedisClient } from '../lib/redis';
import { z } from 'zod';
import { JOURNEY_AGENT_TYPES, JOURNEY_DATA_TYPES } from './journey-script';
import { redisKeys } from '../lib/redis-keys';

export const journeyEntrySchema = z.object({ role: z.enum(['assistant', 'user']), content: z.string() });
export type JourneyEntry = z.infer<typeof journeyEntrySchema>;

/**
 * One setup journey, as kept in Redis. `messages` alternate: the server's first question, then
 * each answer followed by its reply, so the reply to answer `n` is `messages[2n]`.
 */
export const journeySessionSchema = z.object({
  id: z.uuid(),
  userId: z.uuid(),
  agentType: z.enum(JOURNEY_AGENT_TYPES),
  dataTypes: z.array(z.enum(JOURNEY_DATA_TYPES)).min(1),
  /** Answers processed so far. */
  turn: z.number().int().min(0),
  done: z.boolean(),
  messages: z.array(journeyEntrySchema),
  promptTemplate: z.string().optional(),
  /** Whether the template is the model's or composed by the server from the answers. */
  templateSource: z.enum(['model', 'server']).optional(),
  createdAt: z.string(),
  /** Answers whose turn was cancelled before its reply, oldest first (the session stayed at its question). */
  cancelledTurns: z.array(z.object({ turn: z.number().int().min(1), answer: z.string(), cancelledAt: z.string() })).optional(),
});
export type JourneySession = z.infer<typeof journeySessionSchema>;

/**
 * The answer a queued turn is about to process, and the id of this attempt at the turn: a cancel
 * names the attempt, so an answer sent again after a cancel is a new attempt the old cancel cannot stop.
 */
export interface PendingAnswer {
  attempt: string;
  text: string;
}
const pendingAnswerSchema = z.object({ attempt: z.uuid(), text: z.string() });

/**
 * Journey sessions in Redis under `<prefix>:journey:<id>`, each expiring `ttlSeconds` after its
 * last change, plus the answer a queued turn is about to process (`…:answer:<turn>`), which keeps
 * user text out of the job payload. How each attempt at a turn ended is its run's (src/agents/journey-run.ts).
 */
export class JourneyStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keyPrefix: string,
    private readonly ttlSeconds: number,
  ) {}

  private key(id: string) {
    return redisKeys(this.keyPrefix).journey(id);
  }

  private answerKey(id: string, turn: number) {
    return redisKeys(this.keyPrefix).journeyAnswer(id, turn);
  }

  /** The session, or null when it is unknown, expired or unreadable. */
  async get(id: string): Promise<JourneySession | null> {
    const raw = await this.redis.get(this.key(id));
    if (!raw) return null;
    const parsed = journeySessionSchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : null;
  }

  /** Writes the session and restarts its expiry. */
  async save(session: JourneySession): Promise<void> {
    await this.redis.set(this.key(session.id), JSON.stringify(journeySessionSchema.parse(session)), 'EX', this.ttlSeconds);
  }

  /** Seconds until the session expires (0 when it is gone). */
  async ttl(id: string): Promise<number> {
    return Math.max(0, await this.redis.ttl(this.key(id)));
  }

  /**
   * Keeps the answer for turn `turn` unless one is already waiting (a double submit keeps the
   * first). Returns whether this call stored it.
   */
  async putAnswer(id: string, turn: number, answer: string): Promise<boolean> {
    const pending: PendingAnswer = { attempt: randomUUID(), text: answer };
    return (await this.redis.set(this.answerKey(id, turn), JSON.stringify(pending), 'EX', this.ttlSeconds, 'NX')) === 'OK';
  }

  /** The answer waiting for turn `turn` with its attempt id, or null when none waits. */
  async getAnswer(id: string, turn: number): Promise<PendingAnswer | null> {
    const raw = await this.redis.get(this.answerKey(id, turn));
    if (raw === null) return null;
    const parsed = pendingAnswerSchema.safeParse(parseJson(raw));
    return parsed.success ? parsed.data : null;
  }

  /**
   * Keeps the answer of a cancelled turn on the session (kept for the session's view), then drops
   * it as {@link dropAnswer} does. A session that expired meanwhile is left alone.
   */
  async cancelAnswer(id: string, turn: number, cancelledAt: Date): Promise<void> {
    const [session, pending] = await Promise.all([this.get(id), this.getAnswer(id, turn)]);
    if (session && pending) {
      const cancelledTurns = [...(session.cancelledTurns ?? []), { turn, answer: pending.text, cancelledAt: cancelledAt.toISOString() }];
      // The last ones: a user cancelling in a loop does not grow the session without bound.
      await this.save({ ...session, cancelledTurns: cancelledTurns.slice(-MAX_CANCELLED_TURNS) });
    }
    await this.dropAnswer(id, turn);
  }

  async dropAnswer(id: string, turn: number): Promise<void> {
    await this.redis.del(this.answerKey(id, turn));
  }
}

/** Cancelled turns a session keeps for its view. */
const MAX_CANCELLED_TURNS = 20;

function parseJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    // Not JSON: not an answer this store wrote.
    return null;
  }
}
