import { boolean, jsonb, pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { timestamps } from './columns';

/** MCP servers users registered and their OAuth sign-ins. */

/** MCP servers a user registered, or an operator shared (no user); their auth header only sealed. */
export const mcpServers = pgTable('mcp_servers', {
  id: uuid('id').primaryKey(),
  userId: uuid('user_id'),
  name: text('name').notNull(),
  url: text('url').notNull(),
  authHeaderName: text('auth_header_name'),
  authHeaderSealed: text('auth_header_sealed'),
  allowedTools: text('allowed_tools').array().notNull(),
  safeTools: text('safe_tools').array().notNull(),
  /** UTF-8 bytes of each allowed tool's definition as the server last listed it, by tool name. */
  toolSizes: jsonb('tool_sizes').$type<Record<string, number>>().notNull().default({}),
  /** The approved hash of each tool's definition (name, description, input schema), by tool name. */
  toolPins: jsonb('tool_pins').$type<Record<string, string>>().notNull().default({}),
  /** Users sign in to it with OAuth, each with their own account there (0040_mcp_oauth.sql). */
  oauth: boolean('oauth').notNull().default(false),
  ...timestamps,
});
export type McpServerRow = typeof mcpServers.$inferSelect;

/** Whether a user's OAuth sign-in to an MCP server may be used: never signed in, signed in, or to be signed in again. */
export type McpOAuthStatus = 'pending' | 'signed_in' | 'sign_in_required';

/** One user's OAuth sign-in to one MCP server: client, metadata, verifier and tokens sealed as one document. */
export const mcpOAuthGrants = pgTable(
  'mcp_oauth_grants',
  {
    serverId: uuid('server_id').notNull(),
    userId: uuid('user_id').notNull(),
    status: text('status').$type<McpOAuthStatus>().notNull(),
    sealed: text('sealed').notNull(),
    /** sha256 (base64url) of the `state` of the sign-in under way. */
    stateHash: text('state_hash'),
    /** sha256 (base64url) of the binding cookie given to the browser that started it. */
    bindingHash: text('binding_hash'),
    stateExpiresAt: timestamp('state_expires_at', { withTimezone: true }),
    /** When the access token expires (null: the server did not say). */
    expiresAt: timestamp('expires_at', { withTimezone: true }),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
    ...timestamps,
  },
  (table) => [primaryKey({ columns: [table.serverId, table.userId] })],
);
export type McpOAuthGrantRow = typeof mcpOAuthGrants.$inferSelect;
