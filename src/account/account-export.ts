import type { AccountRepository } from '../models/account-repository';
import type { JsonStreamWriter } from './json-writer';

/** Names the document's shape; a change that removes or renames a field gets a new version. */
export const EXPORT_FORMAT = 'switchboard.account-export.v1';

const byId = (row: { id: string }) => row.id;

/**
 * Writes everything Switchboard holds about `userId` as one JSON document, a page of rows at a
 * time. What is a secret is left out or only said to exist: no password hash, no refresh-token or
 * API-key hash (nor a key's visible prefix), no embed token hash, no sealed OAuth token (a cloud
 * agent's credential and each connection say `stored: true`). Canvases other users own appear by
 * id and role only. Returns false when the user does not exist (nothing was written).
 */
export async function writeAccountExport(account: AccountRepository, userId: string, out: JsonStreamWriter): Promise<boolean> {
  const profile = await account.profile(userId);
  if (!profile) return false;
  await out.object(
    { format: EXPORT_FORMAT, exportedAt: new Date().toISOString() },
    {
      profile: () => out.value(profile),
      canvases: () =>
        out.list(account.ownedCanvases(userId), byId, (canvas) =>
          out.object(canvas, { blocks: () => out.list(account.canvasBlocks(canvas.id), (block) => block.rank) }),
        ),
      memberships: () => out.list(account.memberships(userId), (row) => row.canvasId),
      chatSessions: () =>
        out.list(account.chatSessions(userId), byId, (session) =>
          out.object(session, { messages: () => out.list(account.chatMessages(session.id), (message) => String(message.seq)) }),
        ),
      approvals: () => out.list(account.approvals(userId), byId),
      flows: () =>
        out.list(account.flows(userId), byId, (flow) =>
          out.object(flow, {
            versions: () => out.list(account.flowVersions(flow.id), (version) => String(version.version)),
            embeds: () => out.all(account.flowEmbeds(flow.id)),
            executions: () =>
              out.list(account.flowExecutions(flow.id), byId, (execution) =>
                out.object(execution, { nodes: () => out.all(account.flowExecutionNodes(execution.id)) }),
              ),
          }),
        ),
      httpCredentials: () => out.all(account.httpCredentials(userId)),
      agents: () =>
        out.object(
          {},
          {
            local: () => out.list(account.localAgents(userId), byId),
            cloud: () =>
              out.list(account.cloudAgents(userId), byId, ({ credentialId, ...agent }) =>
                out.value({ ...agent, credential: credentialId ? { id: credentialId, stored: true } : null }),
              ),
            connections: () => out.all(account.connections(userId), (connection) => out.value({ ...connection, stored: true })),
            runs: () => out.list(account.agentRuns(userId), byId),
          },
        ),
      psaConnections: () =>
        out.all(account.psaConnections(userId), (connection) => out.value({ ...connection, credentials: { stored: true } })),
      generations: () => out.list(account.generations(userId), byId),
      usage: () => out.list(account.usage(userId), byId),
      apiKeys: () => out.list(account.apiKeys(userId), byId),
      webhooks: () => out.list(account.webhooks(userId), byId, (webhook) => out.value({ ...webhook, secret: { stored: true } })),
      mcpServers: () =>
        out.list(account.mcpServers(userId), byId, ({ authHeaderName, ...server }) =>
          out.value({ ...server, authHeader: authHeaderName ? { name: authHeaderName, stored: true } : null }),
        ),
    },
  );
  return true;
}
