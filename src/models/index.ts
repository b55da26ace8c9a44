import type { Db } from './database';
import { AccountRepository } from './account-repository';
import { AdminsRepository } from './admins-repository';
import { AgentsRepository } from './agents-repository';
import { ApiKeysRepository } from './api-keys-repository';
import { McpOAuthRepository } from './mcp-oauth-repository';
import { McpServersRepository } from './mcp-servers-repository';
import { AuditRepository } from './audit-repository';
import { HistoryRepository } from './history-repository';
import { PsaRepository } from './psa-repository';
import { BlocksRepository } from './blocks-repository';
import { ChatRepository } from './chat-repository';
import { FlowExecutionsRepository } from './flow-executions-repository';
import { FlowsRepository } from './flows-repository';
import { FlowTriggersRepository } from './flow-triggers-repository';
import { FlowItemsRepository } from './flow-items-repository';
import { FlowReplaysRepository } from './flow-replays-repository';
import { CanvasesRepository } from './canvases-repository';
import { EmbedsRepository } from './embeds-repository';
import { EvalsRepository } from './evals-repository';
import { GenerationsRepository } from './generations-repository';
import { HitlRepository } from './hitl-repository';
import { InputRequestsRepository } from './input-requests-repository';
import { HttpCredentialsRepository } from './http-credentials-repository';
import { KnowledgeRepository } from './knowledge-repository';
import { RunsRepository } from './runs-repository';
import { ThreadsRepository } from './threads-repository';
import { WaitpointsRepository } from './waitpoints-repository';
import { SessionNotesRepository } from './session-notes-repository';
import { UsageRepository } from './usage-repository';
import { UsersRepository } from './users-repository';
import { WebhooksRepository } from './webhooks-repository';

/** Every repository over one database. */
export function createRepositories(db: Db) {
  const canvases = new CanvasesRepository(db);
  const runs = new RunsRepository(db);
  const blocks = new BlocksRepository(db);
  const audit = new AuditRepository(db);
  const flowExecutions = new FlowExecutionsRepository(db);
  const flows = new FlowsRepository(db);
  return {
    /**
     * The raw handle, for tests that arrange rows directly. SQL and transactions belong in
     * repository methods: nothing in src/ outside this folder uses it (lint keeps drizzle here).
     */
    db,
    users: new UsersRepository(db),
    admins: new AdminsRepository(db),
    canvases,
    blocks,
    generations: new GenerationsRepository(db, { canvases, blocks, audit }),
    audit,
    /** A user's own actions, across the tables that record them. */
    history: new HistoryRepository(db),
    usage: new UsageRepository(db),
    chat: new ChatRepository(db),
    /** Room threads' approval policies and the devices lent to them. */
    threads: new ThreadsRepository(db),
    hitl: new HitlRepository(db, audit),
    /** The forms agentflows' human_input nodes send to people. */
    inputRequests: new InputRequestsRepository(db, audit),
    notes: new SessionNotesRepository(db),
    /** PSA connections and the sessions' pushes of their notes. */
    psa: new PsaRepository(db),
    agents: new AgentsRepository(db),
    flows,
    flowExecutions,
    /** A replay's draft version and rows, written together. */
    flowReplays: new FlowReplaysRepository(db, flows, flowExecutions),
    flowItems: new FlowItemsRepository(db, flowExecutions),
    /** What starts an agentflow unattended: schedules, signed webhooks, connectors. */
    flowTriggers: new FlowTriggersRepository(db),
    embeds: new EmbedsRepository(db),
    /** Evaluation datasets, evaluations and their scored results. */
    evals: new EvalsRepository(db),
    apiKeys: new ApiKeysRepository(db),
    webhooks: new WebhooksRepository(db),
    mcpServers: new McpServersRepository(db),
    /** Each user's OAuth sign-ins to the MCP servers that need one. */
    mcpOAuth: new McpOAuthRepository(db),
    httpCredentials: new HttpCredentialsRepository(db),
    /** Knowledge bases, their documents and the chunks retrieval searches. */
    knowledge: new KnowledgeRepository(db),
    runs,
    waitpoints: new WaitpointsRepository(db, runs),
    /** One user's everything: the export's pages and the account's deletion. */
    account: new AccountRepository(db, runs),
  };
}
export type Repositories = ReturnType<typeof createRepositories>;
