-- A deleted account's row goes (DELETE /me): what others still hold keeps the bare id of its
-- author, which then names nobody. The audit log outlives the accounts it mentions, and a block
-- the user wrote on a canvas that stays (another member's, or one handed to its longest-standing
-- editor) stays part of that canvas. Neither may therefore hold the user's row in place.
ALTER TABLE system_audit DROP CONSTRAINT IF EXISTS system_audit_actor_id_fkey;
--> statement-breakpoint
ALTER TABLE blocks DROP CONSTRAINT IF EXISTS blocks_created_by_fkey;
--> statement-breakpoint
-- A user's rows found by user, for the export's pages and the deletion's cascades (each of these
-- was otherwise a scan of the whole table).
CREATE INDEX IF NOT EXISTS canvases_owner_idx ON canvases (owner_id, id);
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS generations_user_idx ON generations (user_id, id);
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS refresh_tokens_user_idx ON refresh_tokens (user_id);
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS runs_user_idx ON runs (user_id);
