import { and, desc, eq, sql } from 'drizzle-orm';
import type { Db } from './database';
import { webhookDeliveries, webhookEndpoints, type WebhookDeliveryRow, type WebhookEndpointRow } from './schema';

/** An endpoint as its owner sees it: never its secret. */
export type WebhookEndpointView = Omit<WebhookEndpointRow, 'secretSealed'>;

const endpointView = ({ secretSealed: _secret, ...rest }: WebhookEndpointRow): WebhookEndpointView => rest;

/** What one delivery attempt ended with. */
export interface WebhookAttempt {
  status: 'delivered' | 'retrying' | 'failed';
  responseStatus: number | null;
  error: string | null;
}

/** `webhook_endpoints` and `webhook_deliveries`: reads by id are scoped to the owner. */
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
   * The user's endpoints that take `eventType`, with the flow each is limited to (null: every run).
   * One indexed read, usually of no rows.
   */
  async subscribed(userId: string, eventType: string): Promise<Array<{ id: string; flowId: string | null }>> {
    return this.db
      .select({ id: webhookEndpoints.id, flowId: webhookEndpoints.flowId })
      .from(webhookEndpoints)
      .where(and(eq(webhookEndpoints.userId, userId), sql`${eventType} = any(${webhookEndpoints.events})`));
  }

  /** New pending deliveries of one message body, one per endpoint, in one statement. */
  async createDeliveries(userId: string, endpointIds: string[], eventType: string, body: (deliveryId: string) => string) {
    if (!endpointIds.length) return [];
    const rows = endpointIds.map((endpointId) => {
      const id = crypto.randomUUID();
      return { id, endpointId, userId, eventType, body: body(id) };
    });
    return this.db.insert(webhookDeliveries).values(rows).returning({ id: webhookDeliveries.id });
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

  /** Records one attempt: its count, outcome and the receiver's status code. */
  async recordAttempt(id: string, attempt: WebhookAttempt): Promise<void> {
    await this.db
      .update(webhookDeliveries)
      .set({
        status: attempt.status,
        attempts: sql`${webhookDeliveries.attempts} + 1`,
        responseStatus: attempt.responseStatus,
        lastError: attempt.error,
        lastAttemptAt: sql`now()`,
        ...(attempt.status === 'delivered' ? { deliveredAt: sql`now()` } : {}),
      })
      .where(eq(webhookDeliveries.id, id));
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
}
