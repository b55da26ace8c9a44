-- Where an audited action came from: the client address and user agent of the HTTP request that
-- caused it (the address as the API saw it, behind the configured trusted proxies), and the device
-- for a device's tool call. Null where there was no such origin (a worker's own step, the CLI).
ALTER TABLE system_audit ADD COLUMN IF NOT EXISTS ip text;
--> statement-breakpoint
ALTER TABLE system_audit ADD COLUMN IF NOT EXISTS user_agent text;
--> statement-breakpoint
ALTER TABLE system_audit ADD COLUMN IF NOT EXISTS device_id text;
--> statement-breakpoint
-- The admin's audit list: newest first, all of it or one actor's.
CREATE INDEX IF NOT EXISTS system_audit_created_idx ON system_audit (created_at DESC, id DESC);
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS system_audit_actor_idx ON system_audit (actor_id, created_at DESC, id DESC);
