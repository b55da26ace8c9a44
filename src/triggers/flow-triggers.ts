import { createHash, randomUUID } from 'node:crypto';
import type { FetchedEvent } from '../agents/agent-runner';
import type { LimitsResolver } from '../auth/limits';
import type { SecretBox } from '../connectors/secret-box';
import { inputKeys, MAX_INPUT_CHARS, type AgentflowDefinition } from '../flows/definition';
import { AppError, badRequest, conflict, notFound, parseOr400 } from '../lib/errors';
import type { Logger } from '../lib/logger';
import { RateLimiter } from '../lib/rate-limiter';
import type { RedisClient } from '../lib/redis';
import { redisKeys } from '../lib/redis-keys';
import { findUnstorableText } from '../lib/text-safety';
import type { Repositories } from '../models';
import type { FlowRow, FlowTriggerConfig, FlowTriggerRow } from '../models/schema';
import type { Enqueue } from '../producers/registry';
import { newWebhookSecret, verifyWebhook } from '../webhooks/signature';
import {
  MAX_TRIGGERS_PER_FLOW,
  nextSlot,
  scheduleOf,
  settingsOf,
  shortestInterval,
  triggerInputSchema,
  type CreateTrigger,
  type UpdateTrigger,
} from './trigger-definition';

/** How far a `webhook-timestamp` may be from now (seconds), as Standard Webhooks receivers check it. */
export const WEBHOOK_TOLERANCE_SECONDS = 300;
/** The body an inbound webhook may send: the input bound, with room for JSON whitespace. */
export const MAX_HOOK_BODY_BYTES = 64 * 1024;

export interface FlowTriggersDeps {
  repos: Pick<Repositories, 'flowTriggers' | 'agents'>;
  /** Seals webhook secrets at rest (the OAuth token key). */
  box: SecretBox;
  enqueue: Enqueue;
  /** Replay claims and rate-limit windows. */
  redis: RedisClient;
  keyPrefix: string;
  limits: Pick<LimitsResolver, 'forUser'>;
  /** The server's public root: a webhook trigger's URL is `<publicUrl>/api/v1/hooks/<id>`. */
  publicUrl: string;
  logger: Logger;
}

const sealContext = (triggerId: string) => `flow-trigger:${triggerId}`;
/** A fire's id from a delivery's `webhook-id`: hashed, so any id the sender chose fits a job id. */
const hookFire = (webhookId: string) => `hook-${createHash('sha256').update(webhookId).digest('hex').slice(0, 40)}`;

/**
 * A flow's triggers (owner-only CRUD), the inbound webhook door, and the one way any trigger
 * fires: {@link fire} applies the trigger's rate limit and debounce and queues a `flows` `trigger`
 * job, which a worker admits (concurrency) and turns into an execution.
 */
export class FlowTriggers {
  private readonly log: Logger;
  private readonly limiter: RateLimiter;

  constructor(private readonly deps: FlowTriggersDeps) {
    this.log = deps.logger.child({ component: 'flow-triggers' });
    this.limiter = new RateLimiter(deps.redis, deps.keyPrefix);
  }

  /** The URL a webhook trigger is called at. */
  hookUrl(triggerId: string): string {
    return `${this.deps.publicUrl}/api/v1/hooks/${triggerId}`;
  }

  /**
   * Saves a trigger on the owner's agentflow. A webhook's answer holds its signing secret, the one
   * time it is shown. Refused: a chatflow (409 `not_an_agentflow`), a 21st trigger (409
   * `too_many_triggers`), a schedule firing more often than the plan allows (403
   * `schedule_too_frequent`), a schedule input lacking a key the prompts read (400 `missing_input`),
   * a connector on an agent that is not the owner's cloud agent (404).
   */
  async create(flow: FlowRow, body: CreateTrigger): Promise<{ trigger: FlowTriggerRow; secret?: string }> {
    if (flow.type !== 'agentflow') throw conflict('not_an_agentflow', 'Only an agentflow can have triggers');
    const parsed = body;
    this.checkSettingsFit(parsed.type, parsed);
    if ((await this.deps.repos.flowTriggers.countForFlow(flow.id)) >= MAX_TRIGGERS_PER_FLOW)
      throw conflict('too_many_triggers', `A flow holds at most ${MAX_TRIGGERS_PER_FLOW} triggers; delete one first`);
    const settings = settingsOf(parsed);
    const id = randomUUID();
    let config: FlowTriggerConfig = {};
    let nextRunAt: Date | null = null;
    let secret: string | undefined;
    if (parsed.type === 'schedule') {
      config = { cron: parsed.cron, timezone: parsed.timezone, catchUp: parsed.catchUp, input: parsed.input };
      await this.checkSchedule(flow, config);
      nextRunAt = nextSlot(parsed.cron, parsed.timezone, new Date());
    } else if (parsed.type === 'connector') {
      const agent = await this.deps.repos.agents.get('cloud', flow.userId, parsed.agentId);
      if (!agent) throw notFound('Cloud agent');
      config = { agentId: parsed.agentId };
    } else {
      secret = newWebhookSecret();
    }
    const trigger = await this.deps.repos.flowTriggers.create({
      id,
      flowId: flow.id,
      userId: flow.userId,
      type: parsed.type,
      name: parsed.name,
      enabled: parsed.enabled,
      config,
      settings,
      secretSealed: secret ? this.deps.box.seal(secret, sealContext(id)) : null,
      nextRunAt,
    });
    this.log.info({ triggerId: id, flowId: flow.id, userId: flow.userId, type: parsed.type }, 'flow trigger created');
    return { trigger, ...(secret ? { secret } : {}) };
  }

  async list(flow: FlowRow): Promise<FlowTriggerRow[]> {
    return this.deps.repos.flowTriggers.listForFlow(flow.id);
  }

  async get(flow: FlowRow, id: string): Promise<FlowTriggerRow> {
    const trigger = await this.deps.repos.flowTriggers.findOfFlow(flow.id, id);
    if (!trigger) throw notFound('Trigger');
    return trigger;
  }

  /**
   * Changes a trigger: its name, whether it is on, a schedule's cron, zone, catch-up and input,
   * and the settings (null clears one). A schedule's next run is computed again from now.
   */
  async update(flow: FlowRow, id: string, body: UpdateTrigger): Promise<FlowTriggerRow> {
    const trigger = await this.get(flow, id);
    const schedule = scheduleOf(trigger);
    const scheduleFields = (['cron', 'timezone', 'catchUp', 'input'] as const).filter((key) => body[key] !== undefined);
    if (!schedule && scheduleFields.length)
      throw badRequest(
        'Invalid request body',
        scheduleFields.map((path) => ({ path, message: `only a schedule trigger has ${path}` })),
      );
    this.checkSettingsFit(trigger.type, body);
    const patch: Parameters<Repositories['flowTriggers']['update']>[2] = { settings: settingsOf(body, trigger.settings) };
    if (body.name !== undefined) patch.name = body.name;
    if (body.enabled !== undefined) patch.enabled = body.enabled;
    if (schedule) {
      const config = {
        cron: body.cron ?? schedule.cron,
        timezone: body.timezone ?? schedule.timezone,
        catchUp: body.catchUp ?? schedule.catchUp,
        input: body.input ?? schedule.input,
      };
      await this.checkSchedule(flow, config);
      patch.config = config;
      // Re-enabled or rescheduled: the next slot from now (slots missed while off are not owed).
      patch.nextRunAt = nextSlot(config.cron, config.timezone, new Date());
    }
    const updated = await this.deps.repos.flowTriggers.update(flow.id, id, patch);
    if (!updated) throw notFound('Trigger');
    return updated;
  }

  async remove(flow: FlowRow, id: string): Promise<void> {
    if (!(await this.deps.repos.flowTriggers.delete(flow.id, id))) throw notFound('Trigger');
  }

  /** A schedule's checks: the plan's shortest interval, and an input holding every key the prompts read. */
  private async checkSchedule(flow: FlowRow, config: Extract<FlowTriggerConfig, { cron: string }>): Promise<void> {
    const plan = await this.deps.limits.forUser(flow.userId);
    const min = plan?.limits.minScheduleIntervalSeconds ?? 60;
    const every = shortestInterval(config.cron, config.timezone);
    if (every < min) {
      throw new AppError(
        403,
        'schedule_too_frequent',
        `The schedule fires every ${every} s at its closest; the ${plan?.tier ?? 'free'} plan allows a schedule at most every ${min} s (minScheduleIntervalSeconds)`,
        { limit: 'minScheduleIntervalSeconds', minIntervalSeconds: min, scheduleIntervalSeconds: every, tier: plan?.tier ?? 'free' },
      );
    }
    const missing = inputKeys(flow.definition as unknown as AgentflowDefinition).filter((key) => config.input[key] === undefined);
    if (missing.length)
      throw new AppError(
        400,
        'missing_input',
        `The schedule's input lacks ${missing.map((key) => `"${key}"`).join(', ')}, read by the flow's prompts`,
        {
          missing,
        },
      );
  }

  /** Debounce and rate limits belong to triggers fired from outside; a schedule's pace is its cron. */
  private checkSettingsFit(type: FlowTriggerRow['type'], body: { debounceSeconds?: number | null; rateLimit?: unknown }): void {
    if (type !== 'schedule') return;
    const wrong = (['debounceSeconds', 'rateLimit'] as const).filter((key) => body[key] !== undefined && body[key] !== null);
    if (wrong.length)
      throw badRequest(
        'Invalid request body',
        wrong.map((path) => ({
          path,
          message: 'a schedule fires on its cron: debounce and rate limits are for webhook and connector triggers',
        })),
      );
  }

  /**
   * `POST /hooks/:triggerId`: a delivery signed per Standard Webhooks. Unknown trigger: 404. Missing
   * headers, a timestamp more than {@link WEBHOOK_TOLERANCE_SECONDS} from now, or a signature that
   * is not the trigger secret's: 401, nothing runs. Then: a disabled trigger 409
   * `trigger_disabled`; a body that is not a JSON object of input keys 400; a `webhook-id` already
   * received 409 `webhook_replayed`; over the trigger's rate limit 429. Accepted: the fire is queued.
   */
  async receive(
    triggerId: string,
    headers: { id?: string; timestamp?: string; signature?: string },
    rawBody: Buffer,
  ): Promise<{ fire: string; debounced: boolean }> {
    const trigger = await this.deps.repos.flowTriggers.find(triggerId);
    if (!trigger || trigger.type !== 'webhook' || !trigger.secretSealed) throw notFound('Trigger');
    const { id, timestamp, signature } = headers;
    if (!id || !timestamp || !signature)
      throw new AppError(401, 'invalid_signature', 'A delivery needs the webhook-id, webhook-timestamp and webhook-signature headers');
    const sent = Number(timestamp);
    if (!Number.isInteger(sent) || Math.abs(Date.now() / 1000 - sent) > WEBHOOK_TOLERANCE_SECONDS)
      throw new AppError(401, 'timestamp_out_of_tolerance', `webhook-timestamp must be within ${WEBHOOK_TOLERANCE_SECONDS} s of now`);
    const body = rawBody.toString('utf8');
    const secret = this.deps.box.open(trigger.secretSealed, sealContext(trigger.id)).plaintext;
    if (!verifyWebhook(secret, { id, timestamp, signature }, body, WEBHOOK_TOLERANCE_SECONDS))
      throw new AppError(401, 'invalid_signature', "The webhook-signature is not this trigger's secret's signature of the delivery");
    if (!trigger.enabled) throw conflict('trigger_disabled', 'This trigger is disabled: enable it to run the flow from its webhook');
    const input = inputOfBody(body);
    const fire = hookFire(id);
    const claim = redisKeys(this.deps.keyPrefix).triggerDelivery(trigger.id, fire);
    const claimed = await this.deps.redis.set(claim, '1', 'EX', 2 * WEBHOOK_TOLERANCE_SECONDS + 60, 'NX');
    if (claimed !== 'OK') throw conflict('webhook_replayed', `The delivery ${JSON.stringify(id.slice(0, 100))} was already received`);
    try {
      const debounced = await this.fire(trigger, fire, input);
      return { fire, debounced };
    } catch (error) {
      // Refused or not queued: the sender's retry of the same delivery may run it.
      await this.deps.redis.del(claim);
      throw error;
    }
  }

  /**
   * A cloud agent's run fetched mails or messages: each enabled connector trigger on that agent
   * fires once for the run (`run-<runId>`), its input `{agentId, runId, provider, items}` — the
   * items' text clipped so the input stays within the input bound. The items are the provider's
   * data, never instructions. A trigger refused (its rate limit) records why; the others still fire.
   */
  async connectorFetched(event: FetchedEvent): Promise<void> {
    const triggers = (await this.deps.repos.flowTriggers.connectorTriggersOf(event.agentId)).filter((row) => row.userId === event.userId);
    if (!triggers.length) return;
    const input = connectorInput(event);
    for (const trigger of triggers) {
      try {
        await this.fire(trigger, `run-${event.runId}`, input);
      } catch (error) {
        if (!(error instanceof AppError)) throw error;
        await this.deps.repos.flowTriggers.recordFire(trigger.id, { code: error.code, message: error.message });
      }
    }
  }

  /**
   * Fires a trigger: counted against its rate limit (429 `trigger_rate_limited` past it), then
   * queued, delayed by its debounce (fires within the window replace each other: the last input
   * runs). Returns whether the fire was debounced.
   */
  async fire(trigger: FlowTriggerRow, fire: string, input: Record<string, unknown>): Promise<boolean> {
    const { rateLimit, debounceSeconds } = trigger.settings;
    if (rateLimit) {
      try {
        await this.limiter.take('flow-trigger', trigger.id, rateLimit.limit, rateLimit.perSeconds * 1000);
      } catch (error) {
        if (!(error instanceof AppError)) throw error;
        throw new AppError(
          429,
          'trigger_rate_limited',
          `This trigger fires at most ${rateLimit.limit} times per ${rateLimit.perSeconds} s (its rateLimit)`,
          { limit: rateLimit.limit, perSeconds: rateLimit.perSeconds },
          error.headers,
        );
      }
    }
    const delay = debounceSeconds ? debounceSeconds * 1000 : 0;
    try {
      await this.deps.enqueue(
        'flows',
        'trigger',
        { triggerId: trigger.id, userId: trigger.userId, fire, input },
        delay ? { delay, deduplication: { id: `trigger-debounce-${trigger.id}`, ttl: delay, extend: true, replace: true } } : {},
      );
    } catch (error) {
      this.log.error({ err: error, triggerId: trigger.id }, 'trigger fire could not be queued');
      throw new AppError(503, 'queue_unavailable', 'The fire could not be queued; retry shortly', undefined, { 'Retry-After': '2' });
    }
    return delay > 0;
  }
}

/** A delivery's body as the flow's input: empty is `{}`, else a JSON object of input keys within the input bound. */
export function inputOfBody(body: string): Record<string, unknown> {
  if (!body.trim()) return {};
  if (body.length > MAX_INPUT_CHARS)
    throw new AppError(400, 'input_too_large', `The body is ${body.length} characters; a flow's input is at most ${MAX_INPUT_CHARS}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw badRequest('The body must be JSON', [{ path: '(body)', message: 'not valid JSON' }]);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw badRequest("The body must be a JSON object: it becomes the flow's input", [{ path: '(body)', message: 'expected an object' }]);
  const unstorable = findUnstorableText(parsed);
  if (unstorable)
    throw badRequest('Text must be valid Unicode without NUL (\\u0000) characters or lone surrogates', [
      { path: unstorable, message: 'not valid Unicode text' },
    ]);
  return parseOr400(triggerInputSchema, parsed, 'body');
}

/** Characters of one item's text a connector fire carries. */
const ITEM_TEXT_CHARS = 2_000;

/** A run's items as a flow's input: in fetch order, each text clipped, as many as fit the input bound. */
export function connectorInput(event: FetchedEvent): Record<string, unknown> {
  const base = { agentId: event.agentId, runId: event.runId, provider: event.provider };
  const items: Array<Record<string, unknown>> = [];
  let size = JSON.stringify({ ...base, items: [] }).length;
  for (const item of event.items) {
    const entry = {
      id: item.id,
      kind: item.kind,
      subject: item.subject,
      sender: item.sender,
      date: item.date,
      text: item.text.slice(0, ITEM_TEXT_CHARS),
    };
    const chars = JSON.stringify(entry).length + 1;
    if (size + chars > MAX_INPUT_CHARS) break;
    items.push(entry);
    size += chars;
  }
  return { ...base, items };
}
