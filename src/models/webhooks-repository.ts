import { and, asc, desc, eq, inArray, sql } from 'drizzle-orm';
import type { Db } from './database';
import { rowsOf } from './migrate';
import {
  webhookDeliveries,
  webhookDeliveryAttempts,
  webhookEndpoints,
  type WebhookDeliveryAttemptRow,
  type WebhookDeliveryRow,
  type WebhookEndpointRow,
} from './schema';

/** An endpoint as its owner sees it: never its secret. */
export type WebhookEndpointView = Omit<WebhookEndpointRow, 'secretSealed'>;

const endpointView = ({ secretSealed: _secret, ...rest }: WebhookEndpointRow): WebhookEndpointView => rest;

/** Where one user's run ends and approval requests go: their webhook endpoints, and whether any task of theirs has A2A push configs. */
export interface UserSubscriptions {
  endpoints: ReadonlyArray<{ id: string; flowId: string | null; events: readonly string[] }>;
  pushes: boolean;
}

/** What one delivery attempt ended with. */
export interface WebhookAttempt {
  status: 'delivered' | 'retrying' | 'failed';
  responseStatus: number | null;
  error: string | null;
}

/** How many attempts a delivery keeps in its log: its newest ones (a redelivery counts on). */
export const WEBHOOK_ATTEMPTS_KEPT = 30;

/** A delivery with its attempts, oldest first. */
export type WebhookDeliveryWithAttempts = WebhookDeliveryRow & { attemptLog: WebhookDeliveryAttemptRow[] };

/** An A2A push notification config of a task, as stored (its token sealed). */
export interface A2aPushConfigRow {
  id: string;
  userId: string;
  taskId: string;
  configId: string;
  url: string;
  tokenSealed: string | null;
}

interface PushRow {
  id: string;
  user_id: string;
  task_id: string;
  config_id: string;
  url: string;
  token_sealed: string | null;
}

const pushRow = (row: PushRow): A2aPushConfigRow => ({
  id: row.id,
  userId: row.user_id,
  taskId: row.task_id,
  configId: row.config_id,
  url: row.url,
  tokenSealed: row.token_sealed,
});

/** `webhook_endpoints`, `webhook_deliveries` and their attempts: reads by id are scoped to the owner. */
export class WebhooksRepository {
  constructor(private readonly db: Db) {}

  async createEndpoint(input: {
    userId: string;
    flowId: string | null;
    url: string;
    description: string;
    events: string[];
    secretSealed: string;
  }): Promise<WebhookEndpointView> {
    const [row] = await this.db.insert(webhookEndpoints).values(input).returning();
    return endpointView(row);
  }

  async countEndpoints(userId: string): Promise<number> {
    const [row] = await this.db
      .select({ count: sql<number>`count(*)::int` })
      .from(webhookEndpoints)
      .where(eq(webhookEndpoints.userId, userId));
    return row.count;
  }

  /** The user's endpoints, newest first. */
  async listEndpoints(userId: string): Promise<WebhookEndpointView[]> {
    const rows = await this.db
      .select()
      .from(webhookEndpoints)
      .where(eq(webhookEndpoints.userId, userId))
      .orderBy(desc(webhookEndpoints.createdAt), desc(webhookEndpoints.id));
    return rows.map(endpointView);
  }

  /** The user's endpoint `id`, or null (someone else's is null too). */
  async findEndpoint(userId: string, id: string): Promise<WebhookEndpointView | null> {
    const rows = await this.db
      .select()
      .from(webhookEndpoints)
      .where(and(eq(webhookEndpoints.id, id), eq(webhookEndpoints.userId, userId)))
      .limit(1);
    return rows[0] ? endpointView(rows[0]) : null;
  }

  /** Deletes the user's endpoint and its deliveries; false when they have no such endpoint. */
  async deleteEndpoint(userId: string, id: string): Promise<boolean> {
    const rows = await this.db
      .delete(webhookEndpoints)
      .where(and(eq(webhookEndpoints.id, id), eq(webhookEndpoints.userId, userId)))
      .returning({ id: webhookEndpoints.id });
    return rows.length > 0;
  }

  /**
   * What the user's run ends are published to, in one statement: every endpoint of theirs with its
   * events, and whether any task of theirs has a push config (both reads indexed by user).
   */
  async subscriptions(userId: string): Promise<UserSubscriptions> {
    const rows = rowsOf<{ id: string | null; flow_id: string | null; events: string[] | null }>(
      await this.db.execute(sql`
        select id, flow_id, events from webhook_endpoints where user_id = ${userId}::uuid
        union all
        select null::uuid, null::uuid, null::text[] where exists (select 1 from a2a_push_configs where user_id = ${userId}::uuid)`),
    );
    return {
      endpoints: rows.flatMap((row) => (row.id ? [{ id: row.id, flowId: row.flow_id, events: row.events ?? [] }] : [])),
      pushes: rows.some((row) => row.id === null),
    };
  }

  /**
   * New pending deliveries of one message body, one per endpoint (each endpoint once), in one
   * statement that also prunes each endpoint's log to its newest `keep` rows: finished deliveries
   * (delivered or failed) past them are deleted; one still being attempted stays until it ends and a
   * later write prunes it, so no message is dropped unsent. An endpoint that is no longer the user's
   * (deleted since a cached read named it) gets no row.
   */
  async createDeliveries(
    userId: string,
    endpointIds: string[],
    eventType: string,
    body: (deliveryId: string) => string,
    keep: number,
  ): Promise<Array<{ id: string }>> {
    if (!endpointIds.length) return [];
    const rows = endpointIds.map((endpointId) => {
      const id = crypto.randomUUID();
      return sql`(${id}::uuid, ${endpointId}::uuid, ${userId}::uuid, ${eventType}, ${body(id)})`;
    });
    const endpoints = sql.join(
      endpointIds.map((id) => sql`${id}::uuid`),
      sql`, `,
    );
    // The delete sees the log as it was before this insert, so the rows older than the newest
    // keep - 1 go, leaving room for the one written now.
    const result = await this.db.execute(sql`
      with inserted as (
        insert into webhook_deliveries (id, endpoint_id, user_id, event_type, body)
        select v.id, v.endpoint_id, v.user_id, v.event_type, v.body
        from (values ${sql.join(rows, sql`, `)}) as v (id, endpoint_id, user_id, event_type, body)
        join webhook_endpoints e on e.id = v.endpoint_id and e.user_id = v.user_id
        returning id
      ), pruned as (
        delete from webhook_deliveries where id in (
          select id from (
            select d.id, d.status,
              row_number() over (partition by d.endpoint_id order by d.created_at desc, d.id desc) as newer
            from webhook_deliveries d where d.endpoint_id in (${endpoints})
          ) ranked
          where ranked.newer >= ${keep} and ranked.status in ('delivered', 'failed')
        )
      )
      select id from inserted`);
    return rowsOf<{ id: string }>(result);
  }

  /** What the worker needs to send a delivery: the delivery, its endpoint's URL and sealed secret. */
  async forSending(id: string): Promise<{ delivery: WebhookDeliveryRow; url: string; secretSealed: string; endpointId: string } | null> {
    const rows = await this.db
      .select({ delivery: webhookDeliveries, url: webhookEndpoints.url, secretSealed: webhookEndpoints.secretSealed })
      .from(webhookDeliveries)
      .innerJoin(webhookEndpoints, eq(webhookEndpoints.id, webhookDeliveries.endpointId))
      .where(eq(webhookDeliveries.id, id))
      .limit(1);
    const row = rows[0];
    return row ? { ...row, endpointId: row.delivery.endpointId } : null;
  }

  /**
   * Records one attempt in one statement: the delivery's count, outcome and the receiver's status
   * code, a row of its attempt log (numbered by the new count), and the log pruned to its newest
   * {@link WEBHOOK_ATTEMPTS_KEPT} rows.
   */
  async recordAttempt(id: string, attempt: WebhookAttempt): Promise<void> {
    const delivered = attempt.status === 'delivered';
    await this.db.execute(sql`
      with updated as (
        update webhook_deliveries set
          status = ${attempt.status},
          attempts = attempts + 1,
          response_status = ${attempt.responseStatus},
          last_error = ${attempt.error},
          last_attempt_at = now(),
          delivered_at = case when ${delivered} then now() else delivered_at end
        where id = ${id}
        returning id, attempts, last_attempt_at
      ), logged as (
        insert into webhook_delivery_attempts (delivery_id, attempt, status, response_status, error, attempted_at)
        select id, attempts, ${attempt.status}, ${attempt.responseStatus}::int, ${attempt.error}::text, last_attempt_at from updated
      )
      delete from webhook_delivery_attempts
      where delivery_id = ${id} and attempt <= (select attempts from updated) - ${WEBHOOK_ATTEMPTS_KEPT}`);
  }

  /** The deliveries with their attempt logs (one read for all of them), in the order given. */
  async withAttempts(rows: WebhookDeliveryRow[]): Promise<WebhookDeliveryWithAttempts[]> {
    if (!rows.length) return [];
    const attempts = await this.db
      .select()
      .from(webhookDeliveryAttempts)
      .where(
        inArray(
          webhookDeliveryAttempts.deliveryId,
          rows.map((row) => row.id),
        ),
      )
      .orderBy(asc(webhookDeliveryAttempts.deliveryId), asc(webhookDeliveryAttempts.attempt));
    return rows.map((row) => ({ ...row, attemptLog: attempts.filter((attempt) => attempt.deliveryId === row.id) }));
  }

  /** The endpoint's deliveries, newest first, `limit` after the delivery `beforeId`. */
  async listDeliveries(userId: string, endpointId: string, options: { limit: number; beforeId?: string }): Promise<WebhookDeliveryRow[]> {
    const before = options.beforeId
      ? sql`(${webhookDeliveries.createdAt}, ${webhookDeliveries.id}) < (select d.created_at, d.id from webhook_deliveries d where d.id = ${options.beforeId})`
      : undefined;
    return this.db
      .select()
      .from(webhookDeliveries)
      .where(and(eq(webhookDeliveries.endpointId, endpointId), eq(webhookDeliveries.userId, userId), before))
      .orderBy(desc(webhookDeliveries.createdAt), desc(webhookDeliveries.id))
      .limit(options.limit);
  }

  /** The user's delivery `id` of endpoint `endpointId`, or null. */
  async findDelivery(userId: string, endpointId: string, id: string): Promise<WebhookDeliveryRow | null> {
    const rows = await this.db
      .select()
      .from(webhookDeliveries)
      .where(and(eq(webhookDeliveries.id, id), eq(webhookDeliveries.endpointId, endpointId), eq(webhookDeliveries.userId, userId)))
      .limit(1);
    return rows[0] ?? null;
  }

  /** Puts a delivery back to `pending` for a redelivery (its attempts keep counting). */
  async reopenDelivery(id: string): Promise<WebhookDeliveryRow | null> {
    const [row] = await this.db
      .update(webhookDeliveries)
      .set({ status: 'pending', lastError: null })
      .where(eq(webhookDeliveries.id, id))
      .returning();
    return row ?? null;
  }

  /** Stores a task's push config (a config of the same id on the task is replaced). */
  async putPushConfig(input: Omit<A2aPushConfigRow, 'id'>): Promise<A2aPushConfigRow> {
    const rows = rowsOf<PushRow>(
      await this.db.execute(sql`
        insert into a2a_push_configs (user_id, task_id, config_id, url, token_sealed)
        values (${input.userId}, ${input.taskId}, ${input.configId}, ${input.url}, ${input.tokenSealed})
        on conflict (task_id, config_id) do update set url = excluded.url, token_sealed = excluded.token_sealed
        where a2a_push_configs.user_id = excluded.user_id
        returning id, user_id, task_id, config_id, url, token_sealed`),
    );
    if (!rows[0]) throw new Error('push config owned by another user');
    return pushRow(rows[0]);
  }

  /** A task's push configs (oldest first); `userId` scopes them to the owner, `configId` to one. */
  async pushConfigs(taskId: string, userId?: string, configId?: string): Promise<A2aPushConfigRow[]> {
    const rows = rowsOf<PushRow>(
      await this.db.execute(sql`
        select id, user_id, task_id, config_id, url, token_sealed from a2a_push_configs
        where task_id = ${taskId}
          ${userId === undefined ? sql`` : sql`and user_id = ${userId}`}
          ${configId === undefined ? sql`` : sql`and config_id = ${configId}`}
        order by created_at, id`),
    );
    return rows.map(pushRow);
  }

  /** One push config by its row id (the delivery job's reference), or null when it was deleted. */
  async pushConfig(id: string): Promise<A2aPushConfigRow | null> {
    const rows = rowsOf<PushRow>(
      await this.db.execute(sql`select id, user_id, task_id, config_id, url, token_sealed from a2a_push_configs where id = ${id}`),
    );
    return rows[0] ? pushRow(rows[0]) : null;
  }

  async deletePushConfig(userId: string, taskId: string, configId: string): Promise<boolean> {
    const rows = rowsOf<{ id: string }>(
      await this.db.execute(
        sql`delete from a2a_push_configs where user_id = ${userId} and task_id = ${taskId} and config_id = ${configId} returning id`,
      ),
    );
    return rows.length > 0;
  }
}
