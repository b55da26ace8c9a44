import { jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import type { UserLimitOverrides } from '../../../config/tiers';
import { timestamps } from './columns';

/** Who signs in: users, their refresh-token families and their API keys. */

export const users = pgTable('users', {
  id: uuid('id').primaryKey().defaultRandom(),
  email: text('email').notNull().unique(),
  name: text('name').notNull(),
  passwordHash: text('password_hash'),
  tier: text('tier', { enum: ['free', 'pro', 'enterprise'] })
    .notNull()
    .default('free'),
  role: text('role', { enum: ['user', 'admin', 'service'] })
    .notNull()
    .default('user'),
  /** An operator's per-user limit overrides over the tier (null: none). */
  limitOverrides: jsonb('limit_overrides').$type<UserLimitOverrides>(),
  ...timestamps,
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

export const refreshTokens = pgTable('refresh_tokens', {
  id: uuid('id').primaryKey().defaultRandom(),
  userId: uuid('user_id').notNull(),
  familyId: uuid('family_id').notNull(),
  tokenHash: text('token_hash').notNull().unique(),
  expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
  usedAt: timestamp('used_at', { withTimezone: true }),
  revokedAt: timestamp('revoked_at', { withTimezone: true }),
  /** SHA-256 of the user agent and IP the token was issued to (null: issued before clients were bound). */
  clientHash: text('client_hash'),
  /** Once rotated: the token issued in its place (a grace use moves it to the newer one). */
  replacedBy: uuid('replaced_by'),
  ...timestamps,
});

/** A user's API keys (migration 0015): only the secret's SHA-256 is kept, with its first characters for lists. */
export const apiKeys = pgTable('api_keys', {
  id: uuid('id').primaryKey().defaultRandom(),
  userId: uuid('user_id').notNull(),
  name: text('name').notNull(),
  prefix: text('prefix').notNull(),
  keyHash: text('key_hash').notNull().unique(),
  scopes: text('scopes', { enum: ['read', 'write'] })
    .array()
    .notNull(),
  ...timestamps,
  lastUsedAt: timestamp('last_used_at', { withTimezone: true }),
  expiresAt: timestamp('expires_at', { withTimezone: true }),
  revokedAt: timestamp('revoked_at', { withTimezone: true }),
});
export type ApiKeyRow = typeof apiKeys.$inferSelect;

export type UserRow = typeof users.$inferSelect;
export type RefreshTokenRow = typeof refreshTokens.$inferSelect;
