import type { Config } from '../../config';
import type { SecretBox } from '../connectors/secret-box';
import { badRequest, conflict, notFound } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { Repositories } from '../models';
import type { HitlRequestRow, RunRow, WebhookDeliveryRow } from '../models/schema';
import type { WebhookEndpointView } from '../models/webhooks-repository';
import type { Enqueue } from '../producers/registry';
import { newWebhookSecret, signWebhook } from './signature';
import { refuseEndpointUrl, sendWebhook } from './webhook-sender';

/** The events an endpoint can take. */
export const WEBHOOK_EVENTS = ['run.succeeded', 'run.failed', 'run.cancelled', 'approval.requested'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];
/** The event `POST /webhooks/:id/test` sends; every endpoint takes it. */
export const TEST_EVENT = 'webhook.test';

/** Endpoints one user may have. */
export const MAX_WEBHOOK_ENDPOINTS = 20;

export interface WebhookServiceDeps {
  config: Pick<Config, 'webhooks'>;
  repos: Pick<Repositories, 'webhooks' | 'flows' | 'flowExecutions'>;
  /** Seals signing secrets at rest (the OAuth token key). */
  box: SecretBox;
  enqueue: Enqueue;
  logger: Logger;
}

/** What one attempt of a delivery came to. */
export interface DeliveryOutcome {
  status: 'delivered' | 'retrying' | 'failed' | 'gone';
  responseStatus: number | null;
  error: string | null;
}

const sealContext = (userId: string) => `webhook:${userId}`;

/**
 * Webhooks out: a user's endpoints (every run of theirs, or one flow's executions), the messages
 * their runs' ends and approval requests become, and their delivery on the `webhooks` queue,
 * signed the Standard Webhooks way and retried with backoff. Publishing writes one row and one job
 * per subscribed endpoint and holds nothing in memory; nothing of it can fail the run it reports.
 */
export class WebhookService {
  private readonly log: Logger;

  constructor(private readonly deps: WebhookServiceDeps) {
    this.log = deps.logger.child({ component: 'webhooks' });
  }

  /** Registers an endpoint; the answer holds its signing secret, the one time it is shown. */
  async create(
    userId: string,
    input: { url: string; events: WebhookEvent[]; flowId?: string; description?: string },
  ): Promise<{ endpoint: WebhookEndpointView; secret: string }> {
    const { repos } = this.deps;
    const refused = await refuseEndpointUrl(input.url, this.deps.config.webhooks);
    if (refused) throw badRequest(`This endpoint URL is refused: ${refused}`, [{ path: 'url', message: refused }]);
    if (input.flowId) {
      const flow = await repos.flows.find(input.flowId);
      if (!flow || flow.userId !== userId) throw notFound('Flow');
    }
    if ((await repos.webhooks.countEndpoints(userId)) >= MAX_WEBHOOK_ENDPOINTS)
      throw conflict('too_many_endpoints', `A user may have at most ${MAX_WEBHOOK_ENDPOINTS} webhook endpoints`);
    const secret = newWebhookSecret();
    const endpoint = await repos.webhooks.createEndpoint({
      userId,
      flowId: input.flowId ?? null,
      url: input.url,
      description: input.description ?? '',
      events: [...new Set(input.events)],
      secretSealed: this.deps.box.seal(secret, sealContext(userId)),
    });
    this.log.info({ userId, endpointId: endpoint.id, flowId: endpoint.flowId }, 'webhook endpoint created');
    return { endpoint, secret };
  }

  list(userId: string): Promise<WebhookEndpointView[]> {
    return this.deps.repos.webhooks.listEndpoints(userId);
  }

  async get(userId: string, id: string): Promise<WebhookEndpointView> {
    const endpoint = await this.deps.repos.webhooks.findEndpoint(userId, id);
    if (!endpoint) throw notFound('Webhook endpoint');
    return endpoint;
  }

  async remove(userId: string, id: string): Promise<void> {
    if (!(await this.deps.repos.webhooks.deleteEndpoint(userId, id))) throw notFound('Webhook endpoint');
  }

  async deliveries(userId: string, endpointId: string, page: { limit: number; beforeId?: string }): Promise<WebhookDeliveryRow[]> {
    await this.get(userId, endpointId);
    return this.deps.repos.webhooks.listDeliveries(userId, endpointId, page);
  }

  /** Sends a delivery again (same message id and body, a new timestamp and signature), whatever its state. */
  async redeliver(userId: string, endpointId: string, deliveryId: string): Promise<WebhookDeliveryRow> {
    const delivery = await this.deps.repos.webhooks.findDelivery(userId, endpointId, deliveryId);
    if (!delivery) throw notFound('Webhook delivery');
    if (delivery.status === 'pending' || delivery.status === 'retrying')
      throw conflict('delivery_in_progress', 'This delivery is still being attempted');
    const reopened = (await this.deps.repos.webhooks.reopenDelivery(delivery.id))!;
    await this.queue(reopened.id, reopened.attempts);
    return reopened;
  }

  /** Queues a `webhook.test` message to one endpoint. */
  async test(userId: string, endpointId: string): Promise<WebhookDeliveryRow> {
    const endpoint = await this.get(userId, endpointId);
    const [row] = await this.deps.repos.webhooks.createDeliveries(userId, [endpoint.id], TEST_EVENT, () =>
      message(TEST_EVENT, { endpointId: endpoint.id }),
    );
    await this.queue(row.id, 0);
    return (await this.deps.repos.webhooks.findDelivery(userId, endpoint.id, row.id))!;
  }

  /** A run ended: `run.succeeded`, `run.failed` (failed or timed out) or `run.cancelled`. */
  async runEnded(run: RunRow): Promise<void> {
    const type: WebhookEvent | null =
      run.status === 'succeeded'
        ? 'run.succeeded'
        : run.status === 'failed' || run.status === 'timed_out'
          ? 'run.failed'
          : run.status === 'cancelled'
            ? 'run.cancelled'
            : null;
    if (!type) return;
    await this.publish(
      run.userId,
      type,
      () => this.flowOf(run.kind === 'flow' ? run.id : null),
      (flowId) => ({
        runId: run.id,
        kind: run.kind,
        status: run.status,
        ...(flowId ? { flowId, executionId: run.id } : {}),
        ...(run.errorCode ? { error: { code: run.errorCode, message: run.errorMessage } } : {}),
        endedAt: (run.endedAt ?? new Date()).toISOString(),
      }),
    );
  }

  /** A tool call waits for its owner's approval. */
  async approvalRequested(row: HitlRequestRow): Promise<void> {
    await this.publish(
      row.userId,
      'approval.requested',
      () => this.flowOf(row.executionId),
      (flowId) => ({
        approvalId: row.id,
        toolName: row.toolName,
        reason: row.reason,
        expiresAt: row.expiresAt.toISOString(),
        ...(row.sessionId ? { sessionId: row.sessionId } : {}),
        ...(row.executionId ? { executionId: row.executionId, flowId } : {}),
      }),
    );
  }

  /** The flow of an agentflow execution (null for none). */
  private async flowOf(executionId: string | null): Promise<string | null> {
    return executionId ? ((await this.deps.repos.flowExecutions.find(executionId))?.flowId ?? null) : null;
  }

  /**
   * One delivery row and one job per endpoint that takes the event: the user's endpoints for every
   * run, and those for the event's flow. The user's subscribed endpoints are read first (one indexed
   * read, usually of no rows), so an event nobody takes costs nothing more; the flow is looked up
   * only when an endpoint is limited to one.
   */
  async publish(
    userId: string,
    type: WebhookEvent,
    flowOf: () => Promise<string | null>,
    data: (flowId: string | null) => Record<string, unknown>,
  ): Promise<number> {
    const subscribed = await this.deps.repos.webhooks.subscribed(userId, type);
    if (!subscribed.length) return 0;
    const flowId = await flowOf();
    const endpoints = subscribed.filter((endpoint) => endpoint.flowId === null || endpoint.flowId === flowId);
    if (!endpoints.length) return 0;
    const body = message(type, data(flowId));
    const rows = await this.deps.repos.webhooks.createDeliveries(
      userId,
      endpoints.map((endpoint) => endpoint.id),
      type,
      () => body,
    );
    for (const row of rows) await this.queue(row.id, 0);
    return rows.length;
  }

  /**
   * One attempt of a delivery (the `webhooks` worker): signs the body with a fresh timestamp, POSTs
   * it, and records the attempt. A 2xx is delivered; anything else is `retrying` until the last
   * attempt, then `failed`. A delivery whose endpoint was deleted is `gone` (nothing to do).
   */
  async attempt(deliveryId: string, lastAttempt: boolean): Promise<DeliveryOutcome> {
    const { repos, config, box } = this.deps;
    const found = await repos.webhooks.forSending(deliveryId);
    if (!found) return { status: 'gone', responseStatus: null, error: null };
    const { delivery, url, secretSealed } = found;
    const secret = box.open(secretSealed, sealContext(delivery.userId)).plaintext;
    const timestamp = Math.floor(Date.now() / 1000);
    const result = await sendWebhook(
      url,
      {
        'webhook-id': delivery.id,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signWebhook(secret, delivery.id, timestamp, delivery.body),
      },
      delivery.body,
      { timeoutMs: config.webhooks.timeoutMs, privateOrigins: config.webhooks.privateOrigins },
    );
    const ok = result.status !== null && result.status >= 200 && result.status < 300;
    const outcome: DeliveryOutcome = {
      status: ok ? 'delivered' : lastAttempt ? 'failed' : 'retrying',
      responseStatus: result.status,
      error: ok ? null : result.status === null ? result.error : `HTTP ${result.status}`,
    };
    await repos.webhooks.recordAttempt(delivery.id, outcome as DeliveryOutcome & { status: 'delivered' | 'retrying' | 'failed' });
    this.log.info(
      { deliveryId, endpointId: found.endpointId, status: outcome.status, responseStatus: outcome.responseStatus },
      'webhook attempt',
    );
    return outcome;
  }

  private async queue(deliveryId: string, round: number): Promise<void> {
    const { attempts, backoffMs } = this.deps.config.webhooks;
    await this.deps.enqueue('webhooks', 'deliver', { deliveryId, round }, { attempts, backoff: { type: 'exponential', delay: backoffMs } });
  }
}

/** A message body as the Standard Webhooks scheme shapes it: `type`, `timestamp`, `data`. */
function message(type: string, data: Record<string, unknown>): string {
  return JSON.stringify({ type, timestamp: new Date().toISOString(), data });
}
