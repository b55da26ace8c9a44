-- Knowledge bases reach more readers than their owner in two ways. A base shared with a canvas is
-- read (listed, searched) by the canvas's members for as long as its owner may still edit that
-- canvas; only the owner writes to it. A chat session's files go into a base of its own, made on
-- demand (one per session, deleted with it).
CREATE TABLE knowledge_base_shares (
  base_id uuid NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
  canvas_id uuid NOT NULL REFERENCES canvases(id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (base_id, canvas_id)
);
--> statement-breakpoint
CREATE INDEX knowledge_base_shares_canvas ON knowledge_base_shares (canvas_id);
--> statement-breakpoint
ALTER TABLE knowledge_bases ADD COLUMN session_id uuid UNIQUE REFERENCES chat_sessions(id) ON DELETE CASCADE;
