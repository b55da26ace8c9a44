import { createSwitchboardClient, type SwitchboardClient, type SwitchboardClientOptions } from './client';
import type * as T from './types';

/** Where the server is and who calls (`SwitchboardClientOptions`: `baseUrl`, `apiKey`, tokens, `fetch`). */
export type APIConfig = SwitchboardClientOptions;

/** `chatflows.chat`'s request: one turn of the chatflow `workflowId`, else of the assistant without device tools. */
export interface AgenticRAGChatRequest {
  message: string;
  sessionId?: string;
  workflowId?: string;
  /** The model `{provider, model}` of an assistant turn (a chatflow turn uses its flow's model). */
  config?: T.ChatRequest['config'];
}

/**
 * The agent-builder SDK's surface, a thin alias of `createSwitchboardClient`: programs written for
 * it run unchanged.
 *
 * ```ts
 * const client = new AgenticRAGClient({ baseUrl: 'http://127.0.0.1:3000', apiKey: 'sb_live_…' });
 * const { workflows } = await client.workflows.list();
 * const result = await client.workflows.execute(workflows[0].id, { input: 'data' }); // {executionId}
 * const response = await client.chatflows.chat({ message: 'Hello!' }); // {sessionId, response, usage}
 * ```
 *
 * Workflows are Switchboard flows; `client.switchboard` is the full client.
 */
export class AgenticRAGClient {
  readonly switchboard: SwitchboardClient;

  readonly workflows: {
    /** One page of the caller's flows, newest first. */
    list: (page?: { limit?: number; cursor?: string }) => Promise<{ workflows: T.Flow[]; nextCursor: string | null }>;
    /** Runs an agentflow in the background with `input` (its `{{input.<key>}}` values). */
    execute: (workflowId: string, input?: Record<string, unknown>) => Promise<{ executionId: string }>;
  };

  readonly chatflows: {
    /** One turn, answered when done. */
    chat: (request: AgenticRAGChatRequest) => Promise<T.ChatResponse>;
  };

  constructor(config: APIConfig) {
    const sb = (this.switchboard = createSwitchboardClient(config));
    this.workflows = {
      list: async (page = {}) => {
        const { flows, nextCursor } = await sb.flows.list(page);
        return { workflows: flows, nextCursor };
      },
      execute: (workflowId, input = {}) => sb.flows.execute(workflowId, { input }),
    };
    this.chatflows = {
      chat: ({ message, sessionId, workflowId, config: model }) =>
        workflowId === undefined
          ? sb.chat.send({ message, sessionId, config: model, tools: 'none' })
          : sb.flows.chat(workflowId, { message, sessionId }),
    };
  }
}
