-- Public chat widgets of chatflows (decision 0121). Only a SHA-256 of the embed token is
-- kept; deleting the row revokes the token at once. The flow's owner pays for every turn.
CREATE TABLE flow_embeds (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  flow_id uuid NOT NULL REFERENCES flows(id) ON DELETE CASCADE,
  user_id uuid NOT NULL,
  token_hash text NOT NULL UNIQUE,
  allowed_origins jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
--> statement-breakpoint
CREATE INDEX flow_embeds_flow_idx ON flow_embeds (flow_id, created_at DESC, id DESC);
--> statement-breakpoint
-- A session started through an embed belongs to it alone: the embed can continue it, nothing else
-- can (the owner still reads it). A revoked embed's sessions stay in the owner's history.
ALTER TABLE chat_sessions ADD COLUMN embed_id uuid REFERENCES flow_embeds(id) ON DELETE SET NULL;
