import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { QueueConsumers } from '../producers/worker-presence';
import { z } from 'zod';
import { MAX_CHAT_MESSAGE_CHARS } from '../assistant/chat-service';
import type { ChatRuns } from '../assistant/chat-run';
import { admitThenQueue, type BudgetAdmission } from '../turns/budget-admission';
import { AppError, notFound } from '../lib/errors';
import { webOriginSchema, type ChatflowDefinition } from './definition';
import type { Tier } from '../../config';
import type { Logger } from '../lib/logger';
import type { Repositories } from '../models';
import type { FlowRow } from '../models/schema';
import type { Enqueue } from '../producers/registry';
import { admitPrompt } from '../ai/prompt-admission';
import type { PromptGuardMode } from '../ai/prompt-guard';

/** `POST /flows/:id/chat[/stream]` and the public embed chat: `{message, sessionId?}`. */
export const flowChatBodySchema = z.strictObject({
  message: z.string().trim().min(1).max(MAX_CHAT_MESSAGE_CHARS),
  sessionId: z.uuid().optional(),
});
export type FlowChatBody = z.infer<typeof flowChatBodySchema>;

/** An origin as a browser sends it in `Origin`. */
const originSchema = webOriginSchema(200);

/**
 * `POST /flows/:id/embeds`: the origins whose pages may use the widget. Exact origins only: a
 * wildcard (`https://*.shop.example`) is refused, since an origin is compared as it is and a
 * pattern would silently never match.
 */
export const createEmbedBodySchema = z.strictObject({
  allowedOrigins: z
    .array(
      z
        .string()
        .max(200)
        .refine((value) => !value.includes('*'), 'wildcards are not supported: list each origin exactly (https://shop.example.com)')
        .pipe(originSchema),
    )
    .min(1)
    .max(20),
  /** The flow version the widget chats with; when creating, the published one if absent, and kept as it is on a change without it. */
  version: z.number().int().min(1).max(2_147_483_647).optional(),
});

/** The path segment of a public embed URL: an embed token, as {@link newEmbedToken} makes them. */
export const embedTokenParam = z.string().regex(/^sbe_[A-Za-z0-9_-]{43}$/);

/** A fresh embed token: shown once to the owner, then only its hash is kept. */
export function newEmbedToken(): { token: string; hash: string } {
  const token = `sbe_${randomBytes(32).toString('base64url')}`;
  return { token, hash: hashEmbedToken(token) };
}

export const hashEmbedToken = (token: string) => createHash('sha256').update(token).digest('hex');

/** The flow a chat turn runs: what the API checked (owner, type). */
export interface ChatflowRef {
  id: string;
  userId: string;
  /** The owner's tier when the request knows it (the owner is the caller): the job carries it, so the worker need not read it. */
  ownerTier?: Tier;
  /** The flow version an embed is pinned to (absent: the published one, read by the worker). */
  version?: number;
  /**
   * The definition the turn runs, as the caller read it with the checks above (the published one,
   * or the embed's pinned version): the turn's first model call is reserved from it, so the flow is
   * not read a second time.
   */
  definition: FlowRow['definition'];
}

/** A chatflow's history window when its definition sets none. */
export const DEFAULT_HISTORY_WINDOW = 20;

/**
 * The API side of a chatflow chat turn: check the session (it must be this flow's, and the
 * same embed's — or no embed's for the owner), store the user's message, enqueue the turn on the
 * `assistant` queue. The model runs on a worker: the API never loads the model client.
 */
export class FlowChats {
  private readonly log: Logger;

  /**
   * `runs`: each turn is a run of the kernel's chat kind, written with its message before its job. `budget`: the
   * turn's first model call is reserved against the flow owner's budget before anything is written.
   */
  constructor(
    private readonly deps: {
      repos: Repositories;
      enqueue: Enqueue;
      logger: Logger;
      runs: Pick<ChatRuns, 'row' | 'hold'>;
      budget: BudgetAdmission;
      /** Refuses (503 `queue_unconsumed`) a request whose queue no worker consumes, before anything is written. */
      consumers?: QueueConsumers;
      /** The prompt guard's mode: a message it blocks is refused (422 `prompt_rejected`) before anything is written. */
      promptGuard?: PromptGuardMode;
    },
  ) {
    this.log = deps.logger.child({ component: 'flow-chat' });
  }

  async start(flow: ChatflowRef, body: FlowChatBody, embedId: string | null = null): Promise<{ sessionId: string; messageId: string }> {
    const { chat } = this.deps.repos;
    // A chatflow's chat, its embeds' visitors and the AI SDK edge all start here.
    admitPrompt(this.deps.promptGuard ?? 'off', 'flow_chat', [{ path: 'message', text: body.message }], {
      logger: this.log,
      userId: flow.userId,
    });
    if (body.sessionId) {
      const session = await chat.findOwned(flow.userId, body.sessionId);
      // Another flow's, another embed's, the owner's own (for an embed), or an embed's (for the owner): all answer as missing.
      if (!session || session.flowId !== flow.id || (session.embedId ?? null) !== embedId) throw notFound('Chat session');
    }
    await this.deps.consumers?.require('assistant');
    // The turn's first model call as its worker will send it (chatflow-runner.ts): the flow's system
    // prompt, the session's last `historyWindow` messages and the message, on the flow's model, no
    // tools. Reserved whole, the worker's call takes the reservation over as it is.
    // Validated when the flow was saved (src/flows/definition.ts).
    const settings = flow.definition as unknown as ChatflowDefinition;
    const history = body.sessionId
      ? await chat.context(body.sessionId, Number.MAX_SAFE_INTEGER, settings.historyWindow ?? DEFAULT_HISTORY_WINDOW)
      : [];
    const first = {
      userId: flow.userId,
      texts: [settings.systemPrompt, ...history.map((earlier) => earlier.content), body.message],
      model: settings.model?.model,
      fixed: { bytes: 0, texts: 0 },
    };
    // The flow's owner pays for every turn, also for an embed's visitors.
    const { sessionId, stored: turn } = await admitThenQueue(this.deps.budget, first, async (budget) => {
      // The message and its turn's queued run (keyed by the message's id, chosen here) in one
      // statement, with the new session when there is none.
      const run = this.deps.runs.row({ id: randomUUID(), userId: flow.userId });
      const { sessionId, messageId } = body.sessionId
        ? { sessionId: body.sessionId, messageId: await chat.addTurn(body.sessionId, body.message, run) }
        : await chat.openSession(
            {
              userId: flow.userId,
              deviceId: null,
              title: titleOf(body.message),
              mode: 'flow',
              flowId: flow.id,
              embedId: embedId ?? undefined,
            },
            body.message,
            run,
          );
      const stored = { id: messageId };
      // The turn holds the reservation from now on: whoever ends it gives back what no call took.
      await this.deps.runs.hold(messageId, { userId: flow.userId, reservationId: budget }, { beforeQueued: true });
      await this.deps.enqueue('assistant', 'chatflow-turn', {
        userId: flow.userId,
        flowId: flow.id,
        sessionId,
        messageId: stored.id,
        budget,
        tier: flow.ownerTier,
        ...(flow.version === undefined ? {} : { flowVersion: flow.version }),
      });
      return { sessionId, stored };
    });
    // At debug: the request's own line and the worker's started and completed lines (same session and message ids) tell the turn at info.
    this.log.debug({ flowId: flow.id, sessionId, messageId: turn.id, embedId }, 'chatflow turn queued');
    return { sessionId, messageId: turn.id };
  }
}

/** What a chatflow turn refused by its owner's budget says: a fixed text, since an embed's visitors read it. */
export const FLOW_BUDGET_SPENT = "The flow's model budget is spent for now; please try again later";

/** A chatflow chat turn that ended in `error`: the status its JSON answer carries. */
export function chatErrorStatus(code: string): number {
  if (code === 'llm_unavailable' || code === 'llm_auth_failed') return 503;
  if (code === 'budget_exceeded') return 429;
  if (code === 'flow_not_found' || code === 'session_not_found') return 404;
  return 502;
}

export const flowNotChat = () => new AppError(409, 'not_a_chatflow', 'This flow is an agentflow: run it with POST /flows/:id/execute');

const titleOf = (text: string) => {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > 80 ? `${line.slice(0, 79)}…` : line;
};
