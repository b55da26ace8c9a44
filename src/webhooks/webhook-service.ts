import { randomUUID } from 'node:crypto';
import { A2A_CONTENT_TYPE, Role, StreamResponse, TaskState, type Part, type Task } from '@a2a-js/sdk';
import type { Config, Tier } from '../../config';
import type { SecretBox } from '../connectors/secret-box';
import { badRequest, conflict, notFound } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { UsageLimiter } from '../lib/usage-limiter';
import type { Repositories } from '../models';
import type { HitlRequestRow, InputRequestRow, RunRow } from '../models/schema';
import type { A2aPushConfigRow, WebhookDeliveryWithAttempts, WebhookEndpointView } from '../models/webhooks-repository';
import type { Enqueue } from '../producers/registry';
import { newWebhookSecret, signWebhook } from './signature';
import type { SubscriptionsPort } from './subscriptions';
import { refuseEndpointUrl, sendWebhook } from './webhook-sender';

/** The events an endpoint can take. */
export const WEBHOOK_EVENTS = ['run.succeeded', 'run.failed', 'run.cancelled', 'approval.requested', 'input.requested'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];
/** The event `POST /webhooks/:id/test` sends; every endpoint takes it. */
export const TEST_EVENT = 'webhook.test';

/** Endpoints one user may have. */
export const MAX_WEBHOOK_ENDPOINTS = 20;

export interface WebhookServiceDeps {
  config: Pick<Config, 'webhooks'>;
  repos: Pick<Repositories, 'webhooks' | 'flows' | 'flowExecutions' | 'chat'>;
  /** Seals signing secrets at rest (the OAuth token key). */
  box: SecretBox;
  enqueue: Enqueue;
  /** The per-user, per-tier limits: test sends and redeliveries count against `webhookSendsPerMinute`. */
  usage: Pick<UsageLimiter, 'take'>;
  logger: Logger;
  /** Each user's endpoints and push configs, cached per process (absent: read at every run's end). */
  subscriptions?: SubscriptionsPort;
}

/** Who asks for a send: the user, and their tier for the limit. */
export interface WebhookCaller {
  id: string;
  tier?: Tier;
}

/** What one attempt of a delivery came to. */
export interface DeliveryOutcome {
  status: 'delivered' | 'retrying' | 'failed' | 'gone';
  responseStatus: number | null;
  error: string | null;
}

const sealContext = (userId: string) => `webhook:${userId}`;
const pushSealContext = (userId: string, taskId: string) => `a2a-push:${userId}:${taskId}`;

/** A task's push notification config as its owner set it (the token in clear, for them only). */
export interface A2aPushConfig {
  id: string;
  taskId: string;
  url: string;
  token: string;
}

/** Push configs one task may have. */
export const MAX_PUSH_CONFIGS_PER_TASK = 10;

/**
 * Webhooks out: a user's endpoints (every run of theirs, or one flow's executions), the messages
 * their runs' ends, approval requests and form requests become, and their delivery on the `webhooks` queue,
 * signed the Standard Webhooks way and retried with backoff. Publishing writes one row and one job
 * per subscribed endpoint and holds nothing in memory; nothing of it can fail the run it reports.
 */
export class WebhookService {
  private readonly log: Logger;

  private readonly subscriptions: SubscriptionsPort;

  constructor(private readonly deps: WebhookServiceDeps) {
    this.log = deps.logger.child({ component: 'webhooks' });
    this.subscriptions = deps.subscriptions ?? {
      get: (userId) => deps.repos.webhooks.subscriptions(userId),
      changed: () => Promise.resolve(),
    };
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
    await this.subscriptions.changed(userId);
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
    await this.subscriptions.changed(userId);
  }

  /** The endpoint's deliveries, newest first, each with its attempts (oldest first). */
  async deliveries(userId: string, endpointId: string, page: { limit: number; beforeId?: string }): Promise<WebhookDeliveryWithAttempts[]> {
    await this.get(userId, endpointId);
    const { webhooks } = this.deps.repos;
    return webhooks.withAttempts(await webhooks.listDeliveries(userId, endpointId, page));
  }

  /**
   * Sends a delivery again (same message id and body, a new timestamp and signature), whatever its
   * state. Counted against the caller's `webhookSendsPerMinute` once the delivery is found and
   * finished: past it, 429 and nothing is queued.
   */
  async redeliver(caller: WebhookCaller, endpointId: string, deliveryId: string): Promise<WebhookDeliveryWithAttempts> {
    const delivery = await this.deps.repos.webhooks.findDelivery(caller.id, endpointId, deliveryId);
    if (!delivery) throw notFound('Webhook delivery');
    if (delivery.status === 'pending' || delivery.status === 'retrying')
      throw conflict('delivery_in_progress', 'This delivery is still being attempted');
    await this.deps.usage.take('webhookSendsPerMinute', caller);
    const reopened = (await this.deps.repos.webhooks.reopenDelivery(delivery.id))!;
    await this.queue(reopened.id, reopened.attempts);
    const [withAttempts] = await this.deps.repos.webhooks.withAttempts([reopened]);
    return withAttempts;
  }

  /**
   * Queues a `webhook.test` message to one endpoint. Counted against the caller's
   * `webhookSendsPerMinute` once the endpoint is found: past it, 429 and no row, no POST.
   */
  async test(caller: WebhookCaller, endpointId: string): Promise<WebhookDeliveryWithAttempts> {
    const endpoint = await this.get(caller.id, endpointId);
    await this.deps.usage.take('webhookSendsPerMinute', caller);
    const [row] = await this.deps.repos.webhooks.createDeliveries(
      caller.id,
      [endpoint.id],
      TEST_EVENT,
      () => message(TEST_EVENT, { endpointId: endpoint.id }),
      this.deps.config.webhooks.deliveriesKept,
    );
    await this.queue(row.id, 0);
    const [queued] = await this.deps.repos.webhooks.withAttempts([
      (await this.deps.repos.webhooks.findDelivery(caller.id, endpoint.id, row.id))!,
    ]);
    return queued;
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

  /**
   * Stores a push config of one of the caller's tasks (the caller checked the task is theirs). The
   * URL passes the webhook rules (http(s), no credentials, no private address unless the operator
   * allowed its origin); a refused URL is a 400 and nothing is stored.
   */
  async setPush(userId: string, config: A2aPushConfig): Promise<A2aPushConfig> {
    const { webhooks } = this.deps.repos;
    const refused = await refuseEndpointUrl(config.url, this.deps.config.webhooks);
    if (refused) throw badRequest(`This push notification URL is refused: ${refused}`, [{ path: 'url', message: refused }]);
    const existing = await webhooks.pushConfigs(config.taskId, userId);
    if (!existing.some((row) => row.configId === config.id) && existing.length >= MAX_PUSH_CONFIGS_PER_TASK)
      throw conflict('too_many_push_configs', `A task may have at most ${MAX_PUSH_CONFIGS_PER_TASK} push notification configs`);
    await webhooks.putPushConfig({
      userId,
      taskId: config.taskId,
      configId: config.id,
      url: config.url,
      tokenSealed: config.token ? this.deps.box.seal(config.token, pushSealContext(userId, config.taskId)) : null,
    });
    await this.subscriptions.changed(userId);
    return config;
  }

  /** The caller's push configs of a task (one, with `configId`). */
  async pushConfigs(userId: string, taskId: string, configId?: string): Promise<A2aPushConfig[]> {
    const rows = await this.deps.repos.webhooks.pushConfigs(taskId, userId, configId);
    return rows.map((row) => ({
      id: row.configId,
      taskId: row.taskId,
      url: row.url,
      token: row.tokenSealed ? this.deps.box.open(row.tokenSealed, pushSealContext(userId, row.taskId)).plaintext : '',
    }));
  }

  /** Deletes one of the caller's push configs; false when there was none. */
  async deletePush(userId: string, taskId: string, configId: string): Promise<boolean> {
    const deleted = await this.deps.repos.webhooks.deletePushConfig(userId, taskId, configId);
    if (deleted) await this.subscriptions.changed(userId);
    return deleted;
  }

  /**
   * A chat turn's run ended: its task (completed, failed or canceled) is pushed to the task's
   * configs. Nothing is read when the user has no push config (their cached subscriptions say so).
   */
  async pushRunEnded(run: RunRow): Promise<void> {
    if (run.kind !== 'chat') return;
    const state =
      run.status === 'succeeded'
        ? TaskState.TASK_STATE_COMPLETED
        : run.status === 'failed' || run.status === 'timed_out'
          ? TaskState.TASK_STATE_FAILED
          : run.status === 'cancelled'
            ? TaskState.TASK_STATE_CANCELED
            : null;
    if (state === null) return;
    if (!(await this.subscriptions.get(run.userId)).pushes) return;
    const configs = await this.deps.repos.webhooks.pushConfigs(run.id);
    if (!configs.length) return;
    const { chat } = this.deps.repos;
    const turn = await chat.findTurn(run.id);
    if (!turn) return;
    const reply = await chat.findReply(turn.sessionId, run.id);
    const message =
      state === TaskState.TASK_STATE_FAILED
        ? [textPart(run.errorMessage ?? 'The turn failed'), dataPart({ code: run.errorCode ?? run.status })]
        : undefined;
    await this.push(configs, {
      id: run.id,
      contextId: turn.sessionId,
      status: {
        state,
        message: message && agentMessage(run.id, turn.sessionId, message),
        timestamp: (run.endedAt ?? new Date()).toISOString(),
      },
      artifacts: reply
        ? [
            {
              artifactId: 'answer',
              name: 'answer',
              description: 'The answer of the turn',
              parts: [textPart(reply.content)],
              metadata: undefined,
              extensions: [],
            },
          ]
        : [],
      history: [],
      metadata: undefined,
    });
  }

  /** A chat turn waits for an approval: its task (input-required, what it waits for) is pushed. */
  async pushApprovalRequested(row: HitlRequestRow): Promise<void> {
    if (!row.sessionId) return;
    if (!(await this.subscriptions.get(row.userId)).pushes) return;
    const configs = await this.deps.repos.webhooks.pushConfigs(row.messageId);
    if (!configs.length) return;
    const parts = [
      textPart(`Waiting for approval of ${row.toolName}: ${row.reason}`),
      dataPart({
        approvalId: row.id,
        toolName: row.toolName,
        parameters: row.parameters,
        decide: `PUT /api/v1/hitl/requests/${row.id}/approve|reject`,
      }),
    ];
    await this.push(configs, {
      id: row.messageId,
      contextId: row.sessionId,
      status: {
        state: TaskState.TASK_STATE_INPUT_REQUIRED,
        message: agentMessage(row.messageId, row.sessionId, parts),
        timestamp: new Date().toISOString(),
      },
      artifacts: [],
      history: [],
      metadata: undefined,
    });
  }

  /** One `push` job per config on the `webhooks` queue, carrying the task as an A2A stream response. */
  private async push(configs: A2aPushConfigRow[], task: Task): Promise<void> {
    const body = JSON.stringify(StreamResponse.toJSON({ payload: { $case: 'task', value: task } }));
    const { attempts, backoffMs } = this.deps.config.webhooks;
    const eventId = randomUUID();
    for (const config of configs)
      await this.deps.enqueue(
        'webhooks',
        'push',
        { pushId: config.id, eventId, body },
        { attempts, backoff: { type: 'exponential', delay: backoffMs } },
      );
  }

  /**
   * One attempt of a push (the `webhooks` worker): POSTs the body to the config's URL with its
   * token in `X-A2A-Notification-Token`, under the webhook rules (no redirects, no private
   * address unless allowed, the timeout). A config deleted meanwhile is `gone`.
   */
  async attemptPush(pushId: string, body: string): Promise<DeliveryOutcome> {
    const { repos, config, box } = this.deps;
    const found = await repos.webhooks.pushConfig(pushId);
    if (!found) return { status: 'gone', responseStatus: null, error: null };
    const token = found.tokenSealed ? box.open(found.tokenSealed, pushSealContext(found.userId, found.taskId)).plaintext : null;
    const result = await sendWebhook(
      found.url,
      { 'content-type': A2A_CONTENT_TYPE, ...(token ? { 'X-A2A-Notification-Token': token } : {}) },
      body,
      { timeoutMs: config.webhooks.timeoutMs, privateOrigins: config.webhooks.privateOrigins },
    );
    const ok = result.status !== null && result.status >= 200 && result.status < 300;
    const outcome: DeliveryOutcome = {
      status: ok ? 'delivered' : 'retrying',
      responseStatus: result.status,
      error: ok ? null : result.status === null ? result.error : `HTTP ${result.status}`,
    };
    const line = { pushId, taskId: found.taskId, status: outcome.status, responseStatus: outcome.responseStatus };
    if (ok) this.log.info(line, 'a2a push attempt');
    else this.log.warn({ ...line, reason: outcome.error }, 'a2a push attempt failed');
    return outcome;
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

  /**
   * An agentflow's human_input node waits for a form's answer: each recipient's endpoints hear it
   * (an endpoint limited to one flow, only for that flow's forms).
   */
  async inputRequested(row: InputRequestRow, flowId: string): Promise<void> {
    for (const userId of row.recipients)
      await this.publish(
        userId,
        'input.requested',
        () => Promise.resolve(flowId),
        () => ({
          inputId: row.id,
          executionId: row.executionId,
          flowId,
          nodeId: row.nodeId,
          ownerId: row.userId,
          prompt: row.prompt,
          form: row.form,
          decisions: row.decisions,
          expiresAt: row.expiresAt.toISOString(),
          answer: `POST /api/v1/hitl/inputs/${row.id}/answer`,
        }),
      );
  }

  /** The flow of an agentflow execution (null for none). */
  private async flowOf(executionId: string | null): Promise<string | null> {
    return executionId ? ((await this.deps.repos.flowExecutions.find(executionId))?.flowId ?? null) : null;
  }

  /**
   * One delivery row and one job per endpoint that takes the event: the user's endpoints for every
   * run, and those for the event's flow. Each endpoint's log keeps its newest `deliveriesKept`
   * (finished deliveries past them are pruned by the same statement). The user's endpoints come from
   * the per-process cache of their subscriptions, so an event nobody takes costs no statement; the
   * flow is looked up only when an endpoint is limited to one.
   */
  async publish(
    userId: string,
    type: WebhookEvent,
    flowOf: () => Promise<string | null>,
    data: (flowId: string | null) => Record<string, unknown>,
  ): Promise<number> {
    const subscribed = (await this.subscriptions.get(userId)).endpoints.filter((endpoint) => endpoint.events.includes(type));
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
      this.deps.config.webhooks.deliveriesKept,
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
    // A failed attempt says why (our own words: a status, a timeout, a refused connection).
    const line = { deliveryId, endpointId: found.endpointId, status: outcome.status, responseStatus: outcome.responseStatus };
    if (ok) this.log.info(line, 'webhook attempt');
    else this.log.warn({ ...line, reason: outcome.error }, 'webhook attempt failed');
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

const textPart = (text: string): Part => ({
  content: { $case: 'text', value: text },
  metadata: undefined,
  filename: '',
  mediaType: 'text/plain',
});
const dataPart = (value: unknown): Part => ({
  content: { $case: 'data', value },
  metadata: undefined,
  filename: '',
  mediaType: 'application/json',
});
const agentMessage = (taskId: string, contextId: string, parts: Part[]) => ({
  messageId: randomUUID(),
  contextId,
  taskId,
  role: Role.ROLE_AGENT,
  parts,
  metadata: undefined,
  extensions: [],
  referenceTaskIds: [],
});
