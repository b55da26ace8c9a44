import { SwitchboardApiError } from './errors';
import type { CanvasRoomEvent } from './canvas-sync';
import { CANVAS_ROOM_EVENTS } from './events';
import { EventStream, type EventSource, type EventStreamOptions, type SseMessage } from './sse';
import { seg, Transport, type ClientTokens, type TransportOptions } from './transport';
import type * as T from './types';

export interface SwitchboardClientOptions extends TransportOptions {}

export interface GenerateOptions extends EventStreamOptions {
  /** Sent as `Idempotency-Key`; generated when absent, so a retried POST never starts a second generation. */
  idempotencyKey?: string;
  /** Told once the server has accepted the generation (before any event). */
  onStart?: (info: { generationId: string; replayed: boolean }) => void;
}

/** A generation's event stream; `generationId` is known once the first response arrived. */
export interface GenerationStream extends EventStream<T.SequencedEvent> {
  generationId?: string;
}

/**
 * A typed client of the Switchboard HTTP API. Browsers and Node 20 (global fetch, no Node APIs).
 *
 * ```ts
 * const sb = createSwitchboardClient({ baseUrl: 'http://127.0.0.1:3000' });
 * await sb.auth.login({ email, password });
 * const { canvas } = await sb.canvases.create({ title: 'Launch' });
 * for await (const { event } of sb.generations.generate(canvas.id, { prompt: 'Plan the launch' })) console.log(event.type);
 * ```
 */
export function createSwitchboardClient(options: SwitchboardClientOptions) {
  const http = new Transport(options);
  const get = <R>(path: string, signal?: AbortSignal) => http.json<R>('GET', path, { signal });
  const post = <R>(path: string, body?: unknown, headers?: Record<string, string>) => http.json<R>('POST', path, { body, headers });
  const patch = <R>(path: string, body: unknown) => http.json<R>('PATCH', path, { body });
  const put = <R>(path: string, body?: unknown) => http.json<R>('PUT', path, { body });
  const del = (path: string) => http.json<void>('DELETE', path);
  const keep = (auth: T.AuthResponse | T.TokenPair) => (
    http.setTokens({ accessToken: auth.accessToken, refreshToken: auth.refreshToken }),
    auth
  );
  const canvas = (canvasId: string) => `/canvases/${seg(canvasId)}`;
  const flow = (flowId: string) => `/flows/${seg(flowId)}`;
  const execution = (flowId: string, executionId: string) => `${flow(flowId)}/executions/${seg(executionId)}`;
  const embed = (embedToken: string) => `/embed/public/${seg(embedToken)}`;
  const generation = (canvasId: string, generationId: string) => `${canvas(canvasId)}/ai/generations/${seg(generationId)}`;

  return {
    /** The API base URL (`…/api/v1`). */
    apiBase: http.apiBase,
    /** The server root, where the Socket.IO namespaces live. */
    serverUrl: http.serverUrl,
    /** Current tokens (after login or a refresh). */
    tokens: (): ClientTokens => http.getTokens(),
    setTokens: (tokens: ClientTokens) => http.setTokens(tokens),
    /** An access token valid for at least `minValidityMs` (default 60 s), refreshed first if needed; the token source for sockets. */
    freshAccessToken: (minValidityMs?: number) => http.freshAccessToken(minValidityMs),
    /** Same as `generations.cancel`: stop a generation from any node. */
    cancelGeneration: (canvasId: string, generationId: string) =>
      post<T.GenerationCancelResult>(`${generation(canvasId, generationId)}/cancel`),
    /** Same as `chat.cancel`: stop a session's running turn. */
    cancelChat: (sessionId: string) => post<T.ChatCancelResult>(`/chat/sessions/${seg(sessionId)}/cancel`),

    auth: {
      /** 201; keeps the returned tokens. */
      register: async (body: T.RegisterRequest) => keep(await post<T.AuthResponse>('/auth/register', body)) as T.AuthResponse,
      login: async (body: T.LoginRequest) => keep(await post<T.AuthResponse>('/auth/login', body)) as T.AuthResponse,
      /** Rotates the refresh token (the old one is consumed). Done by itself on a 401 too. */
      refresh: async (refreshToken = http.getTokens().refreshToken ?? '') =>
        keep(await http.json<T.TokenPair>('POST', '/auth/refresh', { body: { refreshToken }, auth: false })),
      /** Signs this session out (its refresh and access tokens stop working, its sockets close) and forgets the tokens. */
      logout: async (refreshToken = http.getTokens().refreshToken ?? '') => {
        await http.json<void>('POST', '/auth/logout', { body: { refreshToken }, auth: false });
        http.setTokens({ accessToken: undefined, refreshToken: undefined });
      },
      me: () => get<T.MeResponse>('/me'),
      /** Everything the server holds about you, as one document (5 an hour; a signed-in session only). */
      exportAccount: () => get<T.AccountExport>('/me/export'),
      /** Everything you did (device tool calls, generations, undo, flows, agent runs …), newest first, one page (`limit` ≤ 200, default 50). */
      history: (query: { limit?: number; cursor?: string } = {}) =>
        get<{ history: T.HistoryEntry[]; nextCursor: string | null }>(`/me/history${queryString(query)}`),
      /** Deletes the account (`confirm`: its email); every session and key stops working, so the tokens are forgotten. */
      deleteAccount: async (body: T.DeleteAccountRequest) => {
        const deleted = await http.json<T.DeletedAccount>('DELETE', '/me', { body });
        http.setTokens({ accessToken: undefined, refreshToken: undefined });
        return deleted;
      },
    },

    /** Your PSA, where resolved sessions' ticket notes are pushed (credentials are sealed and never answered). */
    psa: {
      connect: (body: T.PsaConnectionRequest) => http.json<{ connection: T.PsaConnection }>('PUT', '/psa/connection', { body }),
      get: () => get<{ connection: T.PsaConnection }>('/psa/connection'),
      disconnect: () => del('/psa/connection'),
    },

    devices: {
      /** Your devices: those online now first, then the ones your local agents name (read again to follow presence). */
      list: () => get<{ devices: T.DeviceView[] }>('/devices'),
      /** The changes the coding agents made to the project the device serves, newest first (read from the device). */
      changes: (deviceId: string) => get<{ changes: T.ChangeRecord[] }>(`/devices/${seg(deviceId)}/changes`),
      /** Restores the file a change touched to its previous content (409 `undo_refused` when it changed since). */
      undoChange: (deviceId: string, changeId: string) => post<T.UndoneChange>(`/devices/${seg(deviceId)}/changes/${seg(changeId)}/undo`),
    },

    /** The coding agents as the deployment runs them (read-only). */
    coding: {
      /** The five agents with prompt, tools and model, the operator's overrides applied. */
      agents: () => get<{ agents: T.CodingAgentView[] }>('/coding/agents'),
    },

    /** API keys for programs (`createSwitchboardClient({ baseUrl, apiKey })`); managed with a signed-in session only. */
    apiKeys: {
      /** 201; `secret` is shown this once. */
      create: (body: T.CreateApiKeyRequest) => post<T.CreatedApiKey>('/api-keys', body),
      /** Newest first, one page (`limit` ≤ 200, default 50); never the secrets. */
      list: (query: { limit?: number; cursor?: string } = {}) => get<T.ApiKeyPage>(`/api-keys${queryString(query)}`),
      /** Revokes at once on every node; answers the revoked key. */
      revoke: (keyId: string) => http.json<{ apiKey: T.ApiKey }>('DELETE', `/api-keys/${seg(keyId)}`),
    },

    /**
     * The OAuth clients (Claude, ChatGPT, an IDE…) you allowed to use `/mcp`: list them, and revoke one,
     * which ends its access on every node. A signed-in session only, not an API key.
     */
    mcpClients: {
      list: () => get<{ clients: T.AllowedMcpClient[] }>('/mcp-clients'),
      /** Revokes every consent you gave that client; answers what was revoked. */
      revoke: (grantId: string) => http.json<{ revoked: T.AllowedMcpClient[] }>('DELETE', `/mcp-clients/${seg(grantId)}`),
    },

    /** MCP servers whose allowed tools your agentflow nodes may call as `mcp__<name>__<tool>` (docs/mcp.md). */
    mcpServers: {
      /** 201; the auth header's value is stored sealed and never returned. */
      /** With `signIn` when the server wants OAuth: open its `authorizationUrl` in the browser. */
      register: (body: T.RegisterMcpServerRequest) => post<{ mcpServer: T.McpServer; signIn?: T.McpSignIn }>('/mcp-servers', body),
      /** Newest first (at most 50). */
      list: () => get<{ mcpServers: T.McpServer[] }>('/mcp-servers'),
      delete: (serverId: string) => del(`/mcp-servers/${seg(serverId)}`),
      /** The allowed tools as the server lists them now: pinned, new or changed, with flagged descriptions. */
      tools: (serverId: string) => get<{ tools: T.McpToolStatus[] }>(`/mcp-servers/${seg(serverId)}/tools`),
      /** Pins the tools as listed now, changed and flagged ones included (a signed-in session, not an API key). */
      approveTools: (serverId: string) => post<{ tools: T.McpToolStatus[] }>(`/mcp-servers/${seg(serverId)}/tools/approve`),
      /** Starts (again) your OAuth sign-in to a server that wants one (yours or a shared one). */
      signIn: (serverId: string) => post<{ signIn: T.McpSignIn }>(`/mcp-servers/${seg(serverId)}/oauth/authorize`),
      /** Where the authorization server sends the browser back: the query it carried (needs the browser's binding cookie). */
      oauthCallback: (query: { code?: string; state?: string; error?: string; iss?: string }) =>
        http.json<{ signedIn: true; mcpServerId: string; name: string }>('GET', `/mcp-oauth/callback${queryString(query)}`, {
          auth: false,
        }),
      /** Switchboard's OAuth Client ID Metadata Document. */
      clientMetadata: () => http.json<Record<string, unknown>>('GET', '/mcp-oauth/client-metadata.json', { auth: false }),
    },

    /** Webhooks out: signed POSTs when your runs end or wait for an approval (docs/webhooks.md). */
    webhooks: {
      /** 201; `secret` (`whsec_…`) is shown this once: keep it to verify the signatures. */
      create: (body: T.CreateWebhookRequest) => post<{ webhook: T.WebhookEndpoint; secret: string }>('/webhooks', body),
      list: () => get<{ webhooks: T.WebhookEndpoint[] }>('/webhooks'),
      get: (webhookId: string) => get<{ webhook: T.WebhookEndpoint }>(`/webhooks/${seg(webhookId)}`),
      delete: (webhookId: string) => del(`/webhooks/${seg(webhookId)}`),
      /** The delivery log, newest first; pass `nextCursor` back as `cursor`. */
      deliveries: (webhookId: string, query: { limit?: number; cursor?: string } = {}) =>
        get<{ deliveries: T.WebhookDelivery[]; nextCursor: string | null }>(`/webhooks/${seg(webhookId)}/deliveries${queryString(query)}`),
      /** 202: the same message (same `webhook-id`) queued again. */
      redeliver: (webhookId: string, deliveryId: string) =>
        post<{ delivery: T.WebhookDelivery }>(`/webhooks/${seg(webhookId)}/deliveries/${seg(deliveryId)}/redeliver`, {}),
      /** 202: a `webhook.test` message queued for the endpoint. */
      test: (webhookId: string) => post<{ delivery: T.WebhookDelivery }>(`/webhooks/${seg(webhookId)}/test`, {}),
    },

    canvases: {
      create: (body: T.CreateCanvasRequest) => post<{ canvas: T.Canvas }>('/canvases', body),
      /** Newest first, one page (`limit` ≤ 200, default 50); pass `nextCursor` back as `cursor`. */
      list: (page: { limit?: number; cursor?: string } = {}) =>
        get<{ canvases: T.Canvas[]; nextCursor: string | null }>(`/canvases${pageQuery(page)}`),
      get: (canvasId: string) => get<T.CanvasWithMembers>(canvas(canvasId)),
      update: (canvasId: string, body: T.UpdateCanvasRequest) => patch<{ canvas: T.Canvas }>(canvas(canvasId), body),
      delete: (canvasId: string) => del(canvas(canvasId)),
      /** Owner only. */
      audit: (canvasId: string, page: { limit?: number; cursor?: string } = {}) =>
        get<{ audit: T.AuditRow[]; nextCursor: string | null }>(`${canvas(canvasId)}/audit${pageQuery(page)}`),
      /**
       * The canvas room's events over SSE (`GET /canvases/:id/events`), for code without Socket.IO:
       * `ready`, then each room event in seq order as `{event, payload, seq}`; from now, or after
       * `lastEventId`. A dropped connection or an expired token reconnects (with a fresh token) and
       * resumes after the last event; `resync` says events were missed (reload the blocks); `closed`
       * (signed out, no longer a member) ends it.
       */
      feed: (canvasId: string, opts: EventStreamOptions = {}): EventStream<CanvasFeedEvent> =>
        new EventStream(
          canvasFeedSource((lastEventId, signal) => {
            const headers: Record<string, string> = { accept: 'text/event-stream' };
            if (lastEventId) headers['last-event-id'] = lastEventId;
            return http.send('GET', `${canvas(canvasId)}/events`, { signal, headers });
          }),
          opts,
        ),
    },

    members: {
      /** One page in join order (owner first; `limit` ≤ 200, default 200); pass `nextCursor` back as `cursor` for the next. */
      list: (canvasId: string, page: { limit?: number; cursor?: string } = {}) =>
        get<{ members: T.CanvasMember[]; nextCursor: string | null }>(`${canvas(canvasId)}/members${pageQuery(page)}`),
      /** Adds or changes a member (owner only). */
      set: (canvasId: string, body: T.AddMemberRequest) => post<{ member: T.AddedMember }>(`${canvas(canvasId)}/members`, body),
      /**
       * Removes a member (owner only), or leaves the canvas when `userId` is the caller's own. The
       * canvas's creator cannot be removed (409 `owner_cannot_be_removed`).
       */
      remove: (canvasId: string, userId: string) => del(`${canvas(canvasId)}/members/${seg(userId)}`),
    },

    blocks: {
      /** One page in rank order (`limit` ≤ 200, default 200); pass `nextCursor` back as `cursor` for the next. */
      list: (canvasId: string, page: { limit?: number; cursor?: string } = {}) =>
        get<{ blocks: T.Block[]; nextCursor: string | null }>(`${canvas(canvasId)}/blocks${pageQuery(page)}`),
      /** Every block of the canvas in rank order, following `nextCursor` page by page. */
      listAll: async (canvasId: string): Promise<T.Block[]> => {
        const all: T.Block[] = [];
        let cursor: string | undefined;
        do {
          const page = await get<{ blocks: T.Block[]; nextCursor: string | null }>(`${canvas(canvasId)}/blocks${pageQuery({ cursor })}`);
          all.push(...page.blocks);
          cursor = page.nextCursor ?? undefined;
        } while (cursor);
        return all;
      },
      create: (canvasId: string, body: T.CreateBlockRequest) => post<{ block: T.Block }>(`${canvas(canvasId)}/blocks`, body),
      update: (canvasId: string, blockId: string, body: T.UpdateBlockRequest) =>
        patch<{ block: T.Block }>(`${canvas(canvasId)}/blocks/${seg(blockId)}`, body),
      delete: (canvasId: string, blockId: string) => del(`${canvas(canvasId)}/blocks/${seg(blockId)}`),
    },

    generations: {
      /**
       * Starts a generation and streams its events (`POST …/ai/generate-stream`); a dropped
       * connection resumes from the last event through `…/events`.
       */
      generate(canvasId: string, body: T.GenerateRequest, opts: GenerateOptions = {}): GenerationStream {
        const idempotencyKey = opts.idempotencyKey ?? globalThis.crypto.randomUUID();
        let stream: GenerationStream;
        const open = async (lastEventId: string | undefined, signal: AbortSignal) => {
          if (stream.generationId) return openEvents(canvasId, stream.generationId, lastEventId, signal);
          const response = await http.send('POST', `${canvas(canvasId)}/ai/generate-stream`, {
            body,
            signal,
            headers: { accept: 'text/event-stream', 'idempotency-key': idempotencyKey },
          });
          stream.generationId = response.headers.get('x-generation-id') ?? undefined;
          if (stream.generationId)
            opts.onStart?.({ generationId: stream.generationId, replayed: response.headers.get('idempotent-replayed') === 'true' });
          return response;
        };
        stream = new EventStream(generationSource(open), opts);
        return stream;
      },
      /** Replays a generation's events from the start (or after `lastEventId`), then follows it live to the end. */
      events(canvasId: string, generationId: string, opts: EventStreamOptions = {}): GenerationStream {
        const stream: GenerationStream = new EventStream(
          generationSource((lastEventId, signal) => openEvents(canvasId, generationId, lastEventId, signal)),
          opts,
        );
        stream.generationId = generationId;
        return stream;
      },
      get: (canvasId: string, generationId: string) => get<{ generation: T.Generation }>(generation(canvasId, generationId)),
      /**
       * Stops a queued or running generation (its requester, or an editor/owner), from any node: 202
       * `{generationId, status: "cancelling"}`; its stream then ends with `cancelled`.
       * 409 `not_running` once it has ended.
       */
      cancel: (canvasId: string, generationId: string) => post<T.GenerationCancelResult>(`${generation(canvasId, generationId)}/cancel`),
      /**
       * Removes the generation's blocks that no one has edited since; the edited ones stay, listed in
       * `keptBlockIds`, unless `{force: true}`. With `{askIfEdited: true}` an undo that would keep
       * edited blocks changes nothing and is 409 `edited_blocks` listing them in
       * `details.editedBlockIds` (ask the user, then undo again with or without `force`). A second
       * undo is 409 `already_undone`.
       */
      undo: (canvasId: string, generationId: string, body: T.UndoRequest = {}) =>
        post<T.UndoResult>(`${generation(canvasId, generationId)}/undo`, body),
      /**
       * Puts back what the last undo removed (same ids and ranks), once: a second redo, or one without
       * an undo, is 409 `nothing_to_redo`; 409 `redo_conflict` when the canvas has changed where they stood.
       */
      redo: (canvasId: string, generationId: string) => post<T.RedoResult>(`${generation(canvasId, generationId)}/redo`),
      /** Alias of `canvases.audit`. */
      audit: (canvasId: string, page: { limit?: number; cursor?: string } = {}) =>
        get<{ audit: T.AuditRow[]; nextCursor: string | null }>(`${canvas(canvasId)}/audit${pageQuery(page)}`),
    },

    /**
     * Room threads: a canvas's chat sessions, read by every member and posted to by its editors and
     * owners. Follow one live over the `/canvas` socket with `followThread` (from `./room-thread`), or
     * over SSE with `events`.
     */
    threads: {
      /** A new thread of the canvas (editor; a viewer is 403, a non-member 404). */
      create: (canvasId: string, body: T.CreateThreadRequest = {}) => post<{ thread: T.ChatSession }>(`${canvas(canvasId)}/threads`, body),
      /** The canvas's threads, most recently active first (any member). */
      list: (canvasId: string, page: { limit?: number; cursor?: string } = {}) =>
        get<{ threads: T.ChatSession[]; nextCursor: string | null }>(`${canvas(canvasId)}/threads${pageQuery(page)}`),
      /** The thread, your role, and its turns that have not ended (`openTurns`, each with the room seq it starts at). */
      get: (canvasId: string, threadId: string) => get<T.ThreadView>(`${canvas(canvasId)}/threads/${seg(threadId)}`),
      /** Posts a message (editor): 202 once stored and its turn queued, billed to you; the answer reaches every member as `thread_event`s. */
      post: (canvasId: string, threadId: string, body: T.ThreadMessageRequest) =>
        post<{ threadId: string; messageId: string }>(`${canvas(canvasId)}/threads/${seg(threadId)}/messages`, body),
      /** Sets who decides the approvals its turns ask (editor): the requester, any editor, the canvas owner or a quorum of editors. */
      setApprovalPolicy: (canvasId: string, threadId: string, body: { policy: T.ThreadApprovalPolicy['policy']; quorum?: number }) =>
        put<{ thread: T.ChatSession }>(`${canvas(canvasId)}/threads/${seg(threadId)}/approvals`, body),
      /** The devices lent to the thread, oldest first (any member). */
      devices: (canvasId: string, threadId: string) =>
        get<{ devices: T.DeviceLoan[] }>(`${canvas(canvasId)}/threads/${seg(threadId)}/devices`),
      /** Lends one of your devices to the thread (editor): its turns may ask to run tools on it, and you are asked. */
      lendDevice: (canvasId: string, threadId: string, deviceId: string) =>
        put<{ device: T.DeviceLoan }>(`${canvas(canvasId)}/threads/${seg(threadId)}/devices/${seg(deviceId)}`),
      /** Takes your device back: no turn of the thread runs a tool on it any more. */
      withdrawDevice: (canvasId: string, threadId: string, deviceId: string) =>
        del(`${canvas(canvasId)}/threads/${seg(threadId)}/devices/${seg(deviceId)}`),
      /**
       * The thread's room events over SSE: `ready`, then its `thread_event`s in seq order; without
       * `lastEventId` from the first turn that has not ended. Reconnects and resumes like `canvases.feed`.
       */
      events: (canvasId: string, threadId: string, opts: EventStreamOptions = {}): EventStream<CanvasFeedEvent> =>
        new EventStream(
          canvasFeedSource((lastEventId, signal) => {
            const headers: Record<string, string> = { accept: 'text/event-stream' };
            if (lastEventId) headers['last-event-id'] = lastEventId;
            return http.send('GET', `${canvas(canvasId)}/threads/${seg(threadId)}/events`, { signal, headers });
          }),
          opts,
        ),
    },
    chat: {
      /** One assistant turn, answered when done. */
      send: (body: T.ChatRequest) => post<T.ChatResponse>('/chat', body),
      /** One assistant turn as `text_chunk`s then `final` (or `error`). Not resumable: the turn is not replayed. */
      stream: (body: T.ChatRequest, opts: ChatStreamOptions = {}): EventStream<T.ChatEvent> => chatTurn('/chat/stream', body, opts),
      /**
       * Stops the session's running turn: 202 `{sessionId, status: "cancelling"}`; its stream
       * ends with `cancelled` (the partial answer), a pending `send` answers `{cancelled: true}`.
       * 409 `not_running` when no turn runs.
       */
      cancel: (sessionId: string) => post<T.ChatCancelResult>(`/chat/sessions/${seg(sessionId)}/cancel`),
      /** An empty session; with `canvasId`, a room thread of that canvas (editor), as `threads.create`. */
      createSession: (body: T.CreateThreadRequest & { canvasId?: string } = {}) => post<{ session: T.ChatSession }>('/chat/sessions', body),
      /**
       * One page of the conversation (`limit` ≤ 200, default 200): the latest messages, oldest → newest; pass
       * `nextCursor` back as `cursor` for the messages before them (null once the page reaches the first).
       */
      history: (sessionId: string, page: { limit?: number; cursor?: string } = {}) =>
        get<T.ChatHistory>(`/chat/sessions/${seg(sessionId)}/history${pageQuery(page)}`),
      /** The whole conversation, oldest → newest, following `nextCursor` back page by page. */
      historyAll: async (sessionId: string): Promise<T.ChatHistory> => {
        let cursor: string | undefined;
        let first: T.ChatHistory | undefined;
        const pages: T.ChatHistory['messages'][] = [];
        do {
          const page = await get<T.ChatHistory>(`/chat/sessions/${seg(sessionId)}/history${pageQuery({ cursor })}`);
          first ??= page;
          pages.unshift(page.messages);
          cursor = page.nextCursor ?? undefined;
        } while (cursor);
        return { ...first, messages: pages.flat(), nextCursor: null };
      },
      /**
       * The caller's sessions, most recently active first (`limit` ≤ 200, default 50); pass `nextCursor` back as `cursor`.
       * `kind: 'assistant'` lists the assistant's own conversations only, `'flow'` only chatflow (and embed) sessions.
       */
      sessions: (page: { limit?: number; cursor?: string; kind?: 'assistant' | 'flow' } = {}) =>
        get<{ sessions: T.ChatSession[]; nextCursor: string | null }>(
          `/chat/sessions${queryString({ limit: page.limit, cursor: page.cursor || undefined, kind: page.kind })}`,
        ),
      /** One session (its owner only). */
      session: (sessionId: string) => get<{ session: T.ChatSession }>(`/chat/sessions/${seg(sessionId)}`),
      deleteSession: (sessionId: string) => del(`/chat/sessions/${seg(sessionId)}`),
      /** `psaTicketId`: the PSA ticket the notes are pushed to, when a PSA is connected. */
      resolve: (sessionId: string, body: { resolutionSummary?: string; psaTicketId?: string | number } = {}) =>
        post<T.ResolveResponse>(`/chat/sessions/${seg(sessionId)}/resolve`, body),
      /** Keeps the session's task lane on the server (null clears it); `session(id).pendingTaskLane` reads it back. */
      setTaskLane: (sessionId: string, lane: T.TaskLane | null) =>
        http.json<{ sessionId: string; pendingTaskLane: T.TaskLane | null }>('PUT', `/chat/sessions/${seg(sessionId)}/task-lane`, {
          body: { lane },
        }),
      /** Keeps the session's multitask strategy: what a message sent while one of its turns runs does. */
      setMultitask: (sessionId: string, multitask: T.Multitask) =>
        http.json<{ sessionId: string; multitask: T.Multitask }>('PUT', `/chat/sessions/${seg(sessionId)}/multitask`, {
          body: { multitask },
        }),
      /** Rates an assistant answer (a message of the session's history) thumbs up or down; rating again replaces it. */
      rateAnswer: (sessionId: string, messageId: string, body: { rating: 'up' | 'down'; comment?: string }) =>
        http.json<T.AnswerRatingResult>('PUT', `/chat/sessions/${seg(sessionId)}/messages/${seg(messageId)}/rating`, { body }),
      /** Hands the session to a human; `reason` is kept on the session (`escalationReason`); its notes are written and pushed to the PSA as on resolve. */
      escalate: (sessionId: string, body: { reason?: string; psaTicketId?: string | number } = {}) =>
        post<T.EscalateResponse>(`/chat/sessions/${seg(sessionId)}/escalate`, body),
      pause: (sessionId: string) => post<{ sessionId: string; status: 'paused' }>(`/chat/sessions/${seg(sessionId)}/pause`, {}),
      documentation: (sessionId: string) => get<T.SessionDocumentation>(`/chat/sessions/${seg(sessionId)}/documentation`),
      /** The caller's resolved sessions most like `q` (a problem in words), best first; `limit` ≤ 20, default 5. */
      similarSessions: (q: string, opts: { limit?: number } = {}) =>
        get<{ model: string; sessions: T.SimilarSession[] }>(`/chat/sessions/similar${queryString({ q, limit: opts.limit })}`),
      /** The ticket notes as they are written: `chunk`s, then `done` or `error`. Reopening replays from the first chunk. */
      documentationStream(sessionId: string, opts: Pick<EventStreamOptions, 'signal'> = {}): EventStream<T.NotesStreamEvent> {
        return new EventStream<T.NotesStreamEvent>(
          {
            resumable: false,
            retryable: () => false,
            open: (_lastEventId, signal) =>
              http.send('GET', `/chat/sessions/${seg(sessionId)}/documentation/stream`, {
                signal,
                headers: { accept: 'text/event-stream' },
              }),
            decode: ({ data }) => {
              if (data === '[DONE]') return { kind: 'event', value: { type: 'done' }, terminal: true };
              if (data.startsWith('[ERROR]'))
                return { kind: 'event', value: { type: 'error', message: data.slice(7).trim() }, terminal: true };
              return { kind: 'event', value: { type: 'chunk', text: notesChunkText(data) }, terminal: false };
            },
          },
          opts,
        );
      },
    },

    approvals: {
      /** The caller's own requests, newest first (`status: 'pending'` for what waits on a decision); `nextCursor` when more follow. */
      list: (query: { status?: T.Approval['status']; limit?: number; cursor?: string } = {}) =>
        get<{ requests: T.Approval[]; nextCursor?: string }>(`/hitl/requests${queryString(query)}`),
      get: (approvalId: string) => get<T.Approval>(`/hitl/requests/${seg(approvalId)}`),
      /** Runs the call (with `arguments` instead of the model's, when given: checked against the tool's schema). */
      approve: (approvalId: string, options: { arguments?: Record<string, unknown> } = {}) =>
        put<T.Approval>(`/hitl/requests/${seg(approvalId)}/approve`, options.arguments ? { arguments: options.arguments } : undefined),
      /** Refuses the call (with a `message` the model reads as its result, when given: the turn goes on). */
      reject: (approvalId: string, options: { message?: string } = {}) =>
        put<T.Approval>(
          `/hitl/requests/${seg(approvalId)}/reject`,
          options.message !== undefined ? { message: options.message } : undefined,
        ),
    },

    inputs: {
      /** The forms the caller may answer, newest first (`status: 'pending'` for what waits); `nextCursor` when more follow. */
      list: (query: { status?: T.InputRequest['status']; limit?: number; cursor?: string } = {}) =>
        get<{ inputs: T.InputRequest[]; nextCursor?: string }>(`/hitl/inputs${queryString(query)}`),
      get: (inputId: string) => get<T.InputRequest>(`/hitl/inputs/${seg(inputId)}`),
      /** Answers a form (a signed-in person only): its `values`, and one of its `decision`s when it has some. The first answer wins. */
      answer: (inputId: string, body: { values?: Record<string, unknown>; decision?: string }) =>
        post<T.InputRequest>(`/hitl/inputs/${seg(inputId)}/answer`, body),
    },

    models: {
      /** The `{provider, model}` pairs this deployment serves (what a flow, node or chat request may name). */
      list: () => get<{ models: Array<{ provider: string; model: string }> }>('/models'),
    },

    flows: {
      create: (body: T.CreateFlowRequest) => post<{ flow: T.Flow }>('/flows', body),
      /** Newest first, one page (`limit` ≤ 200, default 50); pass `nextCursor` back as `cursor`. */
      list: (page: { limit?: number; cursor?: string } = {}) =>
        get<{ flows: T.Flow[]; nextCursor: string | null }>(`/flows${pageQuery(page)}`),
      get: (flowId: string) => get<{ flow: T.Flow }>(flow(flowId)),
      /** Renames it or replaces its definition (its type never changes). */
      update: (flowId: string, body: T.UpdateFlowRequest) => patch<{ flow: T.Flow }>(flow(flowId), body),
      /** Deletes the flow with its executions. */
      delete: (flowId: string) => del(flow(flowId)),
      /** Runs an agentflow in the background (202); `input` fills its `{{input.<key>}}` templates. */
      execute: (flowId: string, body: { input?: Record<string, unknown>; version?: number } = {}) =>
        post<{ executionId: string }>(`${flow(flowId)}/execute`, body),
      /**
       * Runs an agentflow and streams its events; a dropped connection resumes from the last event
       * through `…/executions/{executionId}/events`. `executionId` is set once the server answered.
       */
      executeStream(
        flowId: string,
        body: { input?: Record<string, unknown>; version?: number } = {},
        opts: EventStreamOptions = {},
      ): ExecutionStream {
        let stream: ExecutionStream;
        const open = async (lastEventId: string | undefined, signal: AbortSignal) => {
          if (stream.executionId) return openExecutionEvents(flowId, stream.executionId, lastEventId, signal);
          const response = await http.send('POST', `${flow(flowId)}/execute/stream`, {
            body,
            signal,
            headers: { accept: 'text/event-stream' },
          });
          stream.executionId = response.headers.get('x-execution-id') ?? undefined;
          return response;
        };
        stream = new EventStream(executionSource(open), opts);
        return stream;
      },
      /** A flow's executions, newest first, one page (`limit` ≤ 200, default 50). */
      executions: (flowId: string, page: { limit?: number; cursor?: string } = {}) =>
        get<{ executions: T.FlowExecutionSummary[]; nextCursor: string | null }>(`${flow(flowId)}/executions${pageQuery(page)}`),
      /** An execution with each node's status, output, error, attempts, usage and timings. */
      execution: (flowId: string, executionId: string) => get<{ execution: T.FlowExecution }>(execution(flowId, executionId)),
      /** Replays an execution's events from the start (or after `lastEventId`), then follows it live to the end. */
      events(flowId: string, executionId: string, opts: EventStreamOptions = {}): ExecutionStream {
        const stream: ExecutionStream = new EventStream(
          executionSource((lastEventId, signal) => openExecutionEvents(flowId, executionId, lastEventId, signal)),
          opts,
        );
        stream.executionId = executionId;
        return stream;
      },
      /**
       * Replays an ended execution from `fromNode` with `changes` as a new execution: upstream nodes keep
       * their committed outputs (no model call), a changed definition becomes a draft version to publish.
       */
      replay: (flowId: string, executionId: string, body: T.ReplayRequest) =>
        post<T.ReplayStarted>(`${execution(flowId, executionId)}/replay`, body),
      /** The same replay, streaming its events; a dropped connection resumes through `…/executions/{executionId}/events`. */
      replayStream(flowId: string, executionId: string, body: T.ReplayRequest, opts: EventStreamOptions = {}): ExecutionStream {
        let stream: ExecutionStream;
        const open = async (lastEventId: string | undefined, signal: AbortSignal) => {
          if (stream.executionId) return openExecutionEvents(flowId, stream.executionId, lastEventId, signal);
          const response = await http.send('POST', `${execution(flowId, executionId)}/replay/stream`, {
            body,
            signal,
            headers: { accept: 'text/event-stream' },
          });
          stream.executionId = response.headers.get('x-execution-id') ?? undefined;
          return response;
        };
        stream = new EventStream(executionSource(open), opts);
        return stream;
      },
      /** Stops an execution: 202 `{executionId, status: "cancelling"}`; its stream ends with `cancelled`. */
      cancel: (flowId: string, executionId: string) =>
        post<{ executionId: string; status: 'cancelling' }>(`${execution(flowId, executionId)}/cancel`),
      /** One chatflow turn, answered when done; pass the returned `sessionId` back to continue the conversation. */
      chat: (flowId: string, body: T.FlowChatRequest) => post<T.ChatResponse>(`${flow(flowId)}/chat`, body),
      /** One chatflow turn as `text_chunk`s then `final` (or `error`, `cancelled`). Not resumable. */
      chatStream: (flowId: string, body: T.FlowChatRequest, opts: ChatStreamOptions = {}): EventStream<T.ChatEvent> =>
        chatTurn(`${flow(flowId)}/chat/stream`, body, opts),
      /** The messages of all your sessions with a chatflow (your embeds' visitors' too), one page from the newest back (`limit` ≤ 200, default 200). */
      chatHistory: (flowId: string, page: { limit?: number; cursor?: string } = {}) =>
        get<T.FlowChatHistory>(`${flow(flowId)}/chat/history${pageQuery(page)}`),
      versions: {
        /** A flow's saved versions, newest first, one page (`limit` ≤ 200, default 50); no definitions. */
        list: (flowId: string, page: { limit?: number; cursor?: string } = {}) =>
          get<{ versions: T.FlowVersionSummary[]; nextCursor: string | null }>(`${flow(flowId)}/versions${pageQuery(page)}`),
        /** One version with its definition. */
        get: (flowId: string, version: number) => get<{ version: T.FlowVersion }>(`${flow(flowId)}/versions/${seg(String(version))}`),
        /** Publishes a saved version (an older one: a rollback); executions started and pinned embeds keep theirs. */
        publish: (flowId: string, version: number) => post<{ flow: T.Flow }>(`${flow(flowId)}/versions/${seg(String(version))}/publish`),
      },
      embeds: {
        /** A public chat widget of a chatflow, answering only to `allowedOrigins`, pinned to `version` (default: the published one); the `embedToken` is shown once. */
        create: (flowId: string, body: { allowedOrigins: string[]; version?: number }) =>
          post<T.CreatedFlowEmbed>(`${flow(flowId)}/embeds`, body),
        list: (flowId: string) => get<{ embeds: T.FlowEmbed[] }>(`${flow(flowId)}/embeds`),
        /** Replaces an embed's allowed origins; its token stays the same. */
        update: (flowId: string, embedId: string, body: { allowedOrigins: string[]; version?: number }) =>
          patch<{ embed: T.FlowEmbed }>(`${flow(flowId)}/embeds/${seg(embedId)}`, body),
        delete: (flowId: string, embedId: string) => del(`${flow(flowId)}/embeds/${seg(embedId)}`),
      },
      /** Triggers that run an agentflow unattended: schedules, signed inbound webhooks, a cloud agent's fetched mail. */
      triggers: {
        /** Adds a trigger; a webhook's answer holds its `secret` (`whsec_…`), shown this once. */
        create: (flowId: string, body: T.CreateFlowTriggerRequest) => post<T.CreatedFlowTrigger>(`${flow(flowId)}/triggers`, body),
        /** The flow's triggers, each schedule with its `nextRunAt`. */
        list: (flowId: string) => get<{ triggers: T.FlowTrigger[] }>(`${flow(flowId)}/triggers`),
        get: (flowId: string, triggerId: string) => get<{ trigger: T.FlowTrigger }>(`${flow(flowId)}/triggers/${seg(triggerId)}`),
        /** Renames, enables or disables it, or changes its schedule or settings (`null` clears a setting). */
        update: (flowId: string, triggerId: string, body: T.UpdateFlowTriggerRequest) =>
          patch<{ trigger: T.FlowTrigger }>(`${flow(flowId)}/triggers/${seg(triggerId)}`, body),
        delete: (flowId: string, triggerId: string) => del(`${flow(flowId)}/triggers/${seg(triggerId)}`),
        /**
         * Sends one delivery to a webhook trigger, signed with its secret the Standard Webhooks way
         * (no token needed): `input` becomes the flow's input. Reuse `id` to retry the same delivery.
         */
        deliver: async (triggerId: string, secret: string, input: Record<string, unknown>, id = `msg_${randomId()}`) => {
          const timestamp = Math.floor(Date.now() / 1000);
          const signature = await signWebhook(secret, id, timestamp, JSON.stringify(input));
          return http.json<T.FlowWebhookAccepted>('POST', `/hooks/${seg(triggerId)}`, {
            body: input,
            auth: false,
            headers: { 'webhook-id': id, 'webhook-timestamp': String(timestamp), 'webhook-signature': signature },
          });
        },
      },
    },

    /** Evaluations: datasets run through flow versions, each answer scored, the versions compared. Only the owner sees them. */
    evaluations: {
      datasets: {
        /** Exactly one of `rows` and `csv` (a header of input keys and an `expected` column). */
        upload: (body: { name: string; rows?: Array<{ input: Record<string, unknown>; expected?: unknown }>; csv?: string }) =>
          post<{ dataset: T.EvaluationDataset }>('/evaluations/datasets', body),
        /** From a flow's newest completed executions (their outputs become the expected outputs). */
        fromExecutions: (body: { name: string; flowId: string; version?: number; limit?: number }) =>
          post<{ dataset: T.EvaluationDataset }>('/evaluations/datasets/from-executions', body),
        list: (page: { limit?: number; cursor?: string } = {}) =>
          get<{ datasets: T.EvaluationDataset[]; nextCursor: string | null }>(`/evaluations/datasets${pageQuery(page)}`),
        /** The dataset with one page of its rows. */
        get: (datasetId: string, page: { limit?: number; cursor?: string } = {}) =>
          get<{ dataset: T.EvaluationDataset; rows: T.EvaluationDatasetRow[]; nextCursor: string | null }>(
            `/evaluations/datasets/${seg(datasetId)}${pageQuery(page)}`,
          ),
        delete: (datasetId: string) => del(`/evaluations/datasets/${seg(datasetId)}`),
      },
      create: (body: T.CreateEvaluationRequest) => post<{ evaluation: T.Evaluation }>('/evaluations', body),
      /** Newest first; `flowId` keeps one flow's evaluations only. */
      list: ({ flowId, ...page }: { limit?: number; cursor?: string; flowId?: string } = {}) => {
        const query = pageQuery(page);
        const flow = flowId ? `${query ? '&' : '?'}flowId=${encodeURIComponent(flowId)}` : '';
        return get<{ evaluations: T.Evaluation[]; nextCursor: string | null }>(`/evaluations${query}${flow}`);
      },
      /** The evaluation with every result. */
      get: (evaluationId: string) => get<{ evaluation: T.Evaluation; results: T.EvaluationResult[] }>(`/evaluations/${seg(evaluationId)}`),
      compare: (evaluationId: string) => get<T.EvaluationComparison>(`/evaluations/${seg(evaluationId)}/comparison`),
      cancel: (evaluationId: string) => post<{ evaluationId: string; status: 'cancelled' }>(`/evaluations/${seg(evaluationId)}/cancel`),
    },

    /**
     * Knowledge bases: documents in (uploads, URLs), their ingestion's progress, chunks and hybrid
     * search. Only the owner changes a base; members of the canvases it is shared with read it.
     */
    knowledge: {
      bases: {
        create: (body: { name: string; description?: string }) => post<{ base: T.KnowledgeBase }>('/knowledge/bases', body),
        list: () => get<{ bases: T.KnowledgeBase[] }>('/knowledge/bases'),
        /** A base with its documents. */
        get: (baseId: string) => get<{ base: T.KnowledgeBase; documents: T.KnowledgeDocument[] }>(`/knowledge/bases/${seg(baseId)}`),
        /** Deletes a base with its documents and chunks. */
        delete: (baseId: string) => del(`/knowledge/bases/${seg(baseId)}`),
      },
      /** Uploads files (multipart): each becomes a document, `queued`, or `failed` at once with the reason. */
      upload: (baseId: string, files: T.KnowledgeFile[]) => {
        const form = new FormData();
        for (const file of files)
          form.append(
            'file',
            file.data instanceof Blob ? file.data : new Blob([file.data as Uint8Array<ArrayBuffer>], { type: file.type }),
            file.name,
          );
        return post<{ documents: T.KnowledgeDocument[] }>(`/knowledge/bases/${seg(baseId)}/documents`, form);
      },
      /** Adds a web page or a file on the web (private addresses are refused). */
      addUrl: (baseId: string, body: { url: string; name?: string }) =>
        post<{ document: T.KnowledgeDocument }>(`/knowledge/bases/${seg(baseId)}/urls`, body),
      document: (documentId: string) => get<{ document: T.KnowledgeDocument }>(`/knowledge/documents/${seg(documentId)}`),
      /** The chunks retrieval searches, in order. */
      chunks: (documentId: string) => get<{ chunks: T.KnowledgeChunk[] }>(`/knowledge/documents/${seg(documentId)}/chunks`),
      /** An ingestion's progress, live: where the document stands, each step, to `ready` or `failed`. */
      progress: (documentId: string, opts: Pick<EventStreamOptions, 'signal'> = {}): EventStream<T.KnowledgeProgress> =>
        new EventStream<T.KnowledgeProgress>(
          {
            resumable: false,
            retryable: () => false,
            open: (_lastEventId, signal) =>
              http.send('GET', `/knowledge/documents/${seg(documentId)}/events`, { signal, headers: { accept: 'text/event-stream' } }),
            decode: (message) => {
              const value = JSON.parse(message.data) as T.KnowledgeProgress;
              return { kind: 'event', value, terminal: value.status === 'ready' || value.status === 'failed' };
            },
          },
          opts,
        ),
      /** Ingests a document again; its current chunks stay searchable until the new ones are ready. */
      reingest: (documentId: string) => post<{ document: T.KnowledgeDocument }>(`/knowledge/documents/${seg(documentId)}/reingest`),
      deleteDocument: (documentId: string) => del(`/knowledge/documents/${seg(documentId)}`),
      /** Hybrid search (vectors and full text, fused by rank) over your documents and those shared with your canvases. */
      search: (body: T.KnowledgeSearchRequest) => post<{ hits: T.KnowledgeHit[] }>('/knowledge/search', body),
      /** Shares your base with a canvas you own or edit: its members read and search it. */
      share: (baseId: string, canvasId: string) =>
        put<{ base: T.KnowledgeBase }>(`/knowledge/bases/${seg(baseId)}/canvases/${seg(canvasId)}`),
      /** Stops sharing your base with a canvas. */
      unshare: (baseId: string, canvasId: string) => del(`/knowledge/bases/${seg(baseId)}/canvases/${seg(canvasId)}`),
    },

    /** Secrets agentflow HTTP tools send, by name (`httpTools[].credential`); stored sealed, never answered. */
    httpCredentials: {
      /** Creates or replaces the credential `name`. */
      put: (name: string, body: T.PutHttpCredentialRequest) =>
        put<{ credential: T.HttpCredential }>(`/http-credentials/${seg(name)}`, body),
      list: () => get<{ credentials: T.HttpCredential[] }>('/http-credentials'),
      delete: (name: string) => del(`/http-credentials/${seg(name)}`),
    },

    /** A chatflow's public widget: no token, the `embedToken` names the flow (the server checks the page's `Origin`). */
    embed: {
      chat: (embedToken: string, body: T.FlowChatRequest) =>
        http.json<T.ChatResponse>('POST', `${embed(embedToken)}/chat`, { body, auth: false }),
      chatStream: (embedToken: string, body: T.FlowChatRequest, opts: ChatStreamOptions = {}): EventStream<T.ChatEvent> =>
        chatTurn(`${embed(embedToken)}/chat/stream`, body, opts, false),
    },

    embeddings: {
      /** `{vector, model, dimensions}` through the `embeddings` queue. */
      embed: (body: T.EmbedRequest) => post<T.Embedding>('/storage/vectors/embed', body),
    },

    agents: {
      /** Agent types with the JSON schema of their config. */
      catalog: () => get<{ agents: unknown[] }>('/agents/catalog'),
      runs: (query: T.ListRunsQuery = {}) => get<T.AgentRunPage>(`/agents/runs${queryString(query)}`),
      /** Starts a run now (202); a local agent's run waits for its device. */
      run: (agentId: string) => post<T.StartedRun>(`/agents/${seg(agentId)}/run`),
      /**
       * Stops a run (202) from any API node: queued or waiting for its device, it ends at once; running, its model and device calls
       * are aborted and what it delivered stays. 404 another user's run, 409 `not_running` once it has ended.
       */
      cancelRun: (runId: string) => post<T.AgentRunCancelResult>(`/agents/runs/${seg(runId)}/cancel`),
      local: {
        list: () => get<{ agents: T.Agent[] }>('/agents/local'),
        create: (body: T.CreateLocalAgentRequest) => post<T.Agent>('/agents/local', body),
        get: (agentId: string) => get<T.Agent>(`/agents/local/${seg(agentId)}`),
        update: (agentId: string, body: T.UpdateLocalAgentRequest) => http.json<T.Agent>('PUT', `/agents/local/${seg(agentId)}`, { body }),
        delete: (agentId: string) => del(`/agents/local/${seg(agentId)}`),
      },
      cloud: {
        list: () => get<{ agents: T.Agent[] }>('/agents/cloud'),
        create: (body: T.CreateCloudAgentRequest) => post<T.Agent>('/agents/cloud', body),
        get: (agentId: string) => get<T.Agent>(`/agents/cloud/${seg(agentId)}`),
        update: (agentId: string, body: T.UpdateCloudAgentRequest) => http.json<T.Agent>('PUT', `/agents/cloud/${seg(agentId)}`, { body }),
        delete: (agentId: string) => del(`/agents/cloud/${seg(agentId)}`),
        /** Detaches the agent's account (its settings stay); the sealed tokens go when no other agent of yours uses them. */
        disconnect: (agentId: string) => http.json<T.Agent>('DELETE', `/agents/cloud/${seg(agentId)}/connection`),
      },
      /** The setup conversation: 3-5 answers, then `done: true` with a `promptTemplate`. */
      journey: {
        start: (body: T.JourneyStartRequest) => post<T.JourneyReply>('/agents/journey/start', body),
        message: (body: T.JourneyMessageRequest) => post<T.JourneyReply>('/agents/journey/message', body),
        get: (sessionId: string) => get<T.JourneyView>(`/agents/journey/${seg(sessionId)}`),
        /** Stops the answer waiting for its reply (202); the waiting `message` call answers `cancelled: true`. 409 `not_running` when none waits. */
        cancel: (sessionId: string) => post<T.JourneyCancelResult>(`/agents/journey/${seg(sessionId)}/cancel`),
      },
    },

    oauth: {
      /** The provider's consent URL (open it in a browser); with `agentId` the account is attached to that cloud agent. */
      authorize: (provider: T.OAuthProvider, agentId?: string) =>
        get<T.OAuthAuthorization>(`/oauth/${seg(provider)}/authorize${queryString({ agentId })}`),
      /**
       * Where the provider sends the browser back: pass the query it carried (`code` and `state`, or
       * `error`). Needs no token (the signed `state` names the user); answers ids, never a token.
       */
      callback: (provider: T.OAuthProvider, query: { code?: string; state?: string; error?: string }) =>
        http.json<Record<string, unknown>>('GET', `/oauth/${seg(provider)}/callback${queryString(query)}`, { auth: false }),
      refresh: (provider: T.OAuthProvider, body: T.OAuthRefreshRequest = {}) =>
        post<T.OAuthRefreshed>(`/oauth/${seg(provider)}/refresh`, body),
    },

    metrics: {
      summary: () => get<T.MetricsSummary>('/metrics/summary'),
      /** This process's Prometheus metrics in prom-client's JSON form (an admin's token; 403 for anyone else). */
      json: () =>
        get<
          Array<{
            name: string;
            help: string;
            type: string;
            values: Array<{ labels: Record<string, string | number>; value: number; metricName?: string }>;
          }>
        >('/metrics/json'),
    },

    usage: {
      /** Model usage per UTC day, provider and model (`from`..`to`, default the last 30 days; `all` for admins). */
      daily: (query: T.UsageQuery = {}) =>
        get<{ days: T.DailyUsage[] }>(
          `/usage${queryString({ from: query.from, to: query.to, all: query.all === undefined ? undefined : String(query.all) })}`,
        ),
      /** The caller's tier and, per window (UTC hour, UTC month), limits, usage so far and when the window resets. */
      budget: () => get<T.BudgetResponse>('/usage/budget'),
      /** Satisfaction rate from answer ratings, messages per session and daily active users (`from`..`to`; `all` for admins). */
      engagement: (query: T.UsageQuery = {}) =>
        get<T.Engagement>(
          `/usage/engagement${queryString({ from: query.from, to: query.to, all: query.all === undefined ? undefined : String(query.all) })}`,
        ),
    },

    admin: {
      /** MCP servers shared with every user (an admin's own session). */
      mcpServers: {
        register: (body: T.RegisterMcpServerRequest) => post<{ mcpServer: T.McpServer; signIn?: T.McpSignIn }>('/admin/mcp-servers', body),
        list: () => get<{ mcpServers: T.McpServer[] }>('/admin/mcp-servers'),
        delete: (serverId: string) => del(`/admin/mcp-servers/${seg(serverId)}`),
        approveTools: (serverId: string) => post<{ tools: T.McpToolStatus[] }>(`/admin/mcp-servers/${seg(serverId)}/tools/approve`),
      },
      /** The audit trail, newest first: who did what, from which address, user agent or device (an admin's token). */
      audit: (query: T.AuditQuery = {}) =>
        get<{ audit: T.AuditRow[]; nextCursor: string | null }>(
          `/admin/audit${queryString({
            actorId: query.actorId,
            deviceId: query.deviceId,
            action: query.action,
            limit: query.limit === undefined ? undefined : String(query.limit),
            cursor: query.cursor,
          })}`,
        ),
      users: {
        /** The users, newest first, searched by email or name with `q` (an admin's token). */
        list: (query: { q?: string; limit?: number; cursor?: string } = {}) =>
          get<{ users: T.UserListEntry[]; nextCursor: string | null }>(`/admin/users${queryString(query)}`),
        /** A user's tier, overrides and the limits in effect (an admin's token). */
        plan: (userId: string) => get<{ user: T.UserPlan }>(`/admin/users/${seg(userId)}/plan`),
        /** Moves a user to another tier (an admin's token; audited; in effect from their next request). */
        setTier: (userId: string, tier: T.User['tier']) => put<{ user: T.UserPlan }>(`/admin/users/${seg(userId)}/tier`, { tier }),
        /** Replaces a user's limit overrides over their tier; `null` clears them (an admin's token; audited). */
        setLimits: (userId: string, limits: T.UserLimitOverrides | null) =>
          put<{ user: T.UserPlan }>(`/admin/users/${seg(userId)}/limits`, { limits }),
      },
    },

    /** The OpenAPI 3.1 document of this API (public). */
    openapi: () => http.json<Record<string, unknown>>('GET', '/openapi.json', { auth: false }),
  };

  /** One chat turn's SSE (`/chat/stream`, a chatflow's, a public widget's): not resumable, the turn is not replayed. */
  function chatTurn(path: string, body: unknown, opts: ChatStreamOptions, auth = true): EventStream<T.ChatEvent> {
    return new EventStream<T.ChatEvent>(
      {
        resumable: false,
        retryable: () => false,
        open: async (_lastEventId, signal) => {
          const response = await http.send('POST', path, { body, signal, auth, headers: { accept: 'text/event-stream' } });
          const sessionId = response.headers.get('x-chat-session-id');
          if (sessionId) opts.onStart?.({ sessionId });
          return response;
        },
        decode: (message) => {
          const parsed = JSON.parse(message.data) as T.ChatEvent;
          const event = { ...parsed, type: parsed.type ?? message.event } as T.ChatEvent;
          return { kind: 'event', value: event, terminal: event.type === 'final' || event.type === 'error' || event.type === 'cancelled' };
        },
      },
      opts,
    );
  }

  function openExecutionEvents(flowId: string, executionId: string, lastEventId: string | undefined, signal: AbortSignal) {
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (lastEventId) headers['last-event-id'] = lastEventId;
    return http.send('GET', `${execution(flowId, executionId)}/events`, { signal, headers });
  }

  function openEvents(canvasId: string, generationId: string, lastEventId: string | undefined, signal: AbortSignal) {
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (lastEventId) headers['last-event-id'] = lastEventId;
    return http.send('GET', `${generation(canvasId, generationId)}/events`, { signal, headers });
  }
}

export type SwitchboardClient = ReturnType<typeof createSwitchboardClient>;

/** Options of a chat turn's stream: `onStart` is told the session id once the server answered. */
export type ChatStreamOptions = Pick<EventStreamOptions, 'signal'> & { onStart?: (info: { sessionId: string }) => void };

/** An agentflow execution's event stream; `executionId` is known once the first response arrived. */
export interface ExecutionStream extends EventStream<T.SequencedExecutionEvent> {
  executionId?: string;
}

/** An execution's SSE messages as `{seq, event}`; `execution_completed`, `execution_failed` and `cancelled` end it. */
function executionSource(
  open: (lastEventId: string | undefined, signal: AbortSignal) => Promise<Response>,
): EventSource<T.SequencedExecutionEvent> {
  return {
    resumable: true,
    open,
    retryable: (error: unknown) => !(error instanceof SwitchboardApiError) || error.status === 0 || error.status >= 500,
    decode: (message: SseMessage) => {
      if (message.id === undefined) return { kind: 'skip' };
      const parsed = JSON.parse(message.data) as T.FlowExecutionEvent;
      const event = { ...parsed, type: parsed.type ?? message.event } as T.FlowExecutionEvent;
      return {
        kind: 'event',
        value: { seq: Number(message.id), event },
        terminal: event.type === 'execution_completed' || event.type === 'execution_failed' || event.type === 'cancelled',
      };
    },
  };
}

/** `?a=1&b=2` from the defined values, or nothing. */
function queryString(query: Record<string, string | number | undefined>): string {
  const pairs = Object.entries(query).filter((entry): entry is [string, string | number] => entry[1] !== undefined);
  return pairs.length ? `?${new URLSearchParams(pairs.map(([key, value]) => [key, String(value)])).toString()}` : '';
}

/**
 * A generation's SSE messages as `{seq, event}`. `complete`, `cancelled` and `error` with an id end the stream;
 * an `error` without one (`stream_interrupted`) only ends the connection, so the stream resumes.
 */
function generationSource(
  open: (lastEventId: string | undefined, signal: AbortSignal) => Promise<Response>,
): EventSource<T.SequencedEvent> {
  return {
    resumable: true,
    open,
    retryable: (error: unknown) => !(error instanceof SwitchboardApiError) || error.status === 0 || error.status >= 500,
    decode: (message: SseMessage) => {
      const event = JSON.parse(message.data) as T.GenerationEvent;
      if (message.id === undefined) return event.type === 'error' ? { kind: 'reconnect' } : { kind: 'skip' };
      return {
        kind: 'event',
        value: { seq: Number(message.id), event },
        terminal: event.type === 'complete' || event.type === 'error' || event.type === 'cancelled',
      };
    },
  };
}

/** One message of a canvas room feed (`canvases.feed`). */
export type CanvasFeedEvent =
  | (CanvasRoomEvent & { seq: number })
  /** The feed is open: it starts after `seq`. */
  | { event: 'ready'; seq: number; payload: { canvasId: string; seq: number } }
  /** Events after the last one seen are no longer kept: reload the canvas's blocks, then read on. */
  | { event: 'resync'; seq: number; payload: { canvasId: string; lastSeq: number } }
  /** The feed ended for good: `session_revoked` (signed out, key revoked) or `not_a_member`. */
  | { event: 'closed'; seq: undefined; payload: { canvasId: string; reason: string; message: string } };

const ROOM_EVENTS = new Set<string>(CANVAS_ROOM_EVENTS);

/**
 * A room feed's SSE messages. `closed` with `token_expired` and `interrupted` only end the connection
 * (the next one presents a fresh token and resumes); any other `closed` ends the feed.
 */
function canvasFeedSource(open: (lastEventId: string | undefined, signal: AbortSignal) => Promise<Response>): EventSource<CanvasFeedEvent> {
  return {
    resumable: true,
    open,
    retryable: (error: unknown) => !(error instanceof SwitchboardApiError) || error.status === 0 || error.status >= 500,
    decode: (message: SseMessage) => {
      const payload = JSON.parse(message.data) as Record<string, unknown>;
      const seq = message.id === undefined ? undefined : Number(message.id);
      if (message.event === 'interrupted') return { kind: 'reconnect' };
      if (message.event === 'closed') {
        if (payload.reason === 'token_expired') return { kind: 'reconnect' };
        return { kind: 'event', value: { event: 'closed', seq: undefined, payload } as CanvasFeedEvent, terminal: true };
      }
      if (seq === undefined || (message.event !== 'ready' && message.event !== 'resync' && !ROOM_EVENTS.has(message.event ?? '')))
        return { kind: 'skip' };
      return { kind: 'event', value: { event: message.event, seq, payload } as CanvasFeedEvent, terminal: false };
    },
  };
}

/** `?limit=&cursor=` of a paginated list, or nothing. */
function pageQuery(page: { limit?: number; cursor?: string }): string {
  const params = new URLSearchParams();
  if (page.limit !== undefined) params.set('limit', String(page.limit));
  if (page.cursor) params.set('cursor', page.cursor);
  const text = params.toString();
  return text ? `?${text}` : '';
}

/**
 * A ticket-notes chunk's text: each chunk is one JSON line `{"type":"chunk","text":…}` (its
 * newlines escaped); a server that sends the bare markdown instead is read as is.
 */
function notesChunkText(data: string): string {
  try {
    const parsed: unknown = JSON.parse(data);
    if (parsed && typeof parsed === 'object' && typeof (parsed as { text?: unknown }).text === 'string')
      return (parsed as { text: string }).text;
  } catch {
    // Not JSON: bare markdown.
  }
  return data;
}

/** A random delivery id. */
function randomId(): string {
  return globalThis.crypto.randomUUID();
}

/** `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">` under the key the `whsec_` secret encodes (WebCrypto: browsers and Node). */
async function signWebhook(secret: string, id: string, timestamp: number, body: string): Promise<string> {
  const encoded = secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret;
  const keyBytes = Uint8Array.from(atob(encoded), (c) => c.charCodeAt(0));
  const key = await globalThis.crypto.subtle.importKey('raw', keyBytes, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const mac = new Uint8Array(await globalThis.crypto.subtle.sign('HMAC', key, new TextEncoder().encode(`${id}.${timestamp}.${body}`)));
  return `v1,${btoa(String.fromCharCode(...mac))}`;
}
