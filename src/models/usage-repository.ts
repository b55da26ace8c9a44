import { and, asc, eq, gte, inArray, isNull, lt, sql, type SQL } from 'drizzle-orm';
import type { Db, DbOrTx } from './database';
import { chatMessages, chatSessions, llmUsage } from './schema';

export interface UsageRecord {
  userId: string | null;
  generationId?: string | null;
  sessionId?: string | null;
  purpose: 'generation' | 'chat' | 'embedding' | 'extraction' | 'notes' | 'journey' | 'flow' | 'chatflow' | 'evaluation';
  provider: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  /** No provider figures (an aborted stream): about 4 characters a token. */
  estimated?: boolean;
}

/** Calls, tokens and cost of one model. */
export interface ModelUsage {
  provider: string;
  model: string;
  calls: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

/** Tokens and cost of one UTC day for one provider and model (`GET /usage`). */
export interface DailyUsage {
  /** `YYYY-MM-DD`, the UTC day. */
  day: string;
  provider: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

/** How people use the assistant in a range: answer ratings, messages per session, daily active users (`GET /usage/engagement`). */
export interface Engagement {
  ratings: { up: number; down: number };
  /** User and assistant messages (tool results excluded) and the sessions they were in. */
  messages: number;
  sessions: number;
  /** Per UTC day with any, the users who sent at least one message that day, oldest first. */
  activeUsers: Array<{ day: string; users: number }>;
}

/** Token usage and cost, one row per model call (or per generation, summed over its calls). */
export class UsageRepository {
  constructor(private readonly db: Db) {}

  async record(entry: UsageRecord, db: DbOrTx = this.db): Promise<void> {
    await db.insert(llmUsage).values(entry);
  }

  /** Writes `entries` in one statement (nothing for none). */
  async recordMany(entries: readonly UsageRecord[], db: DbOrTx = this.db): Promise<void> {
    if (entries.length) await db.insert(llmUsage).values([...entries]);
  }

  /**
   * Sums by UTC day, provider and model of the calls made in `[from, until)`, oldest day first;
   * one user's (`userId`), or everyone's (`userId` null: admins). One user's range reads the
   * `(user_id, created_at)` index. Sums are float8 so large totals stay JS numbers on both drivers.
   */
  async dailyTotals(range: { userId: string | null; from: Date; until: Date }): Promise<DailyUsage[]> {
    const day = sql<string>`to_char((${llmUsage.createdAt} at time zone 'UTC')::date, 'YYYY-MM-DD')`;
    const rows = await this.db
      .select({
        day,
        provider: llmUsage.provider,
        model: llmUsage.model,
        inputTokens: sql<number>`coalesce(sum(${llmUsage.inputTokens}), 0)::float8`,
        outputTokens: sql<number>`coalesce(sum(${llmUsage.outputTokens}), 0)::float8`,
        costUsd: sql<number>`coalesce(sum(${llmUsage.costUsd}), 0)::float8`,
      })
      .from(llmUsage)
      .where(
        and(
          range.userId === null ? undefined : eq(llmUsage.userId, range.userId),
          gte(llmUsage.createdAt, range.from),
          lt(llmUsage.createdAt, range.until),
        ),
      )
      .groupBy(day, llmUsage.provider, llmUsage.model)
      .orderBy(asc(day), asc(llmUsage.provider), asc(llmUsage.model));
    return rows.map((row) => ({
      ...row,
      inputTokens: Number(row.inputTokens),
      outputTokens: Number(row.outputTokens),
      costUsd: Number(row.costUsd),
    }));
  }

  /**
   * Usage by model, and the cost and calls since `since`: of one user, or of everyone (`userId`
   * null, for admins). `GET /metrics/summary`.
   */
  async summary(userId: string | null, since: Date): Promise<{ byModel: ModelUsage[]; recent: { costUsd: number; calls: number } }> {
    const scope = userId === null ? sql`true` : eq(llmUsage.userId, userId);
    const [byModel, recent] = await Promise.all([
      this.db
        .select({
          provider: llmUsage.provider,
          model: llmUsage.model,
          calls: sql<number>`count(*)::int`,
          inputTokens: sql<number>`coalesce(sum(${llmUsage.inputTokens}), 0)::int`,
          outputTokens: sql<number>`coalesce(sum(${llmUsage.outputTokens}), 0)::int`,
          costUsd: sql<number>`coalesce(sum(${llmUsage.costUsd}), 0)::float8`,
        })
        .from(llmUsage)
        .where(scope)
        .groupBy(llmUsage.provider, llmUsage.model),
      this.db
        .select({ costUsd: sql<number>`coalesce(sum(${llmUsage.costUsd}), 0)::float8`, calls: sql<number>`count(*)::int` })
        .from(llmUsage)
        .where(and(scope, gte(llmUsage.createdAt, since))),
    ]);
    return { byModel, recent: recent[0] ?? { costUsd: 0, calls: 0 } };
  }

  /**
   * One user's spend since each of `starts` (tokens in + out, model calls — embeddings count
   * tokens only — and cost), in one statement over the earliest start: the budget windows.
   */
  async spentSince(userId: string, starts: Date[]): Promise<Array<{ tokens: number; requests: number; costUsd: number }>> {
    if (!starts.length) return [];
    const earliest = new Date(Math.min(...starts.map((start) => start.getTime())));
    const columns = Object.fromEntries(
      starts.flatMap((start, index) => {
        const within = sql`${llmUsage.createdAt} >= ${start.toISOString()}::timestamptz`;
        return [
          [
            `tokens${index}`,
            sql<number>`coalesce(sum(${llmUsage.inputTokens} + ${llmUsage.outputTokens}) filter (where ${within}), 0)::float8`,
          ],
          [`requests${index}`, sql<number>`count(*) filter (where ${within} and ${llmUsage.purpose} <> 'embedding')::float8`],
          [`cost${index}`, sql<number>`coalesce(sum(${llmUsage.costUsd}) filter (where ${within}), 0)::float8`],
        ];
      }),
    );
    const [row] = await this.db
      .select(columns)
      .from(llmUsage)
      .where(and(eq(llmUsage.userId, userId), gte(llmUsage.createdAt, earliest)));
    return starts.map((_start, index) => ({
      tokens: Number(row?.[`tokens${index}`] ?? 0),
      requests: Number(row?.[`requests${index}`] ?? 0),
      costUsd: Number(row?.[`cost${index}`] ?? 0),
    }));
  }

  /**
   * Ratings given, messages and sessions, and daily active users in `[from, until)`: of one user's
   * sessions, or of everyone's (`userId` null: admins). A person's own conversations count; sessions
   * a public widget's visitors started (`embed_id`) are the flow owner's by ownership, not activity,
   * and are left out of messages, sessions and active users. Three statements, run together.
   */
  async engagement(range: { userId: string | null; from: Date; until: Date }): Promise<Engagement> {
    const owner = range.userId === null ? undefined : eq(chatSessions.userId, range.userId);
    const sent = (column: typeof chatMessages.createdAt | typeof chatMessages.ratedAt) =>
      and(gte(column, range.from), lt(column, range.until));
    const day = sql<string>`to_char((${chatMessages.createdAt} at time zone 'UTC')::date, 'YYYY-MM-DD')`;
    const [ratings, messages, days] = await Promise.all([
      this.db
        .select({
          up: sql<number>`count(*) filter (where ${chatMessages.rating} = 'up')::int`,
          down: sql<number>`count(*) filter (where ${chatMessages.rating} = 'down')::int`,
        })
        .from(chatMessages)
        .innerJoin(chatSessions, eq(chatSessions.id, chatMessages.sessionId))
        .where(and(owner, sent(chatMessages.ratedAt))),
      this.db
        .select({ messages: sql<number>`count(*)::int`, sessions: sql<number>`count(distinct ${chatMessages.sessionId})::int` })
        .from(chatMessages)
        .innerJoin(chatSessions, eq(chatSessions.id, chatMessages.sessionId))
        .where(and(owner, isNull(chatSessions.embedId), inArray(chatMessages.role, ['user', 'assistant']), sent(chatMessages.createdAt))),
      this.db
        .select({ day, users: sql<number>`count(distinct ${chatSessions.userId})::int` })
        .from(chatMessages)
        .innerJoin(chatSessions, eq(chatSessions.id, chatMessages.sessionId))
        .where(and(owner, isNull(chatSessions.embedId), eq(chatMessages.role, 'user'), sent(chatMessages.createdAt)))
        .groupBy(day)
        .orderBy(asc(day)),
    ]);
    return {
      ratings: { up: Number(ratings[0]?.up ?? 0), down: Number(ratings[0]?.down ?? 0) },
      messages: Number(messages[0]?.messages ?? 0),
      sessions: Number(messages[0]?.sessions ?? 0),
      activeUsers: days.map((row) => ({ day: row.day, users: Number(row.users) })),
    };
  }
}

/** The CTE `usage` that writes usage lines beside another statement (only when `when` holds, if given); null for none. */
export function usageInsert(lines: readonly UsageRecord[], when?: SQL): SQL | null {
  if (!lines.length) return null;
  const values = sql.join(
    lines.map(
      (u) => sql`(${u.userId}::uuid, ${u.generationId ?? null}::uuid, ${u.sessionId ?? null}::uuid, ${u.purpose}, ${u.provider}, ${u.model},
        ${u.inputTokens}::int, ${u.outputTokens}::int, ${u.costUsd}::float8, ${u.estimated ?? false}::boolean)`,
    ),
    sql`, `,
  );
  return sql`usage as (
    insert into llm_usage (user_id, generation_id, session_id, purpose, provider, model, input_tokens, output_tokens, cost_usd, estimated)
    select * from (values ${values}) as line ${when ? sql`where ${when}` : sql``}
  )`;
}

/** `with` the CTEs given (those not null), then `body`. */
export function withCtes(ctes: ReadonlyArray<SQL | null>, body: SQL): SQL {
  const present = ctes.filter((cte): cte is SQL => cte !== null);
  return present.length ? sql`with ${sql.join(present, sql`, `)} ${body}` : body;
}
