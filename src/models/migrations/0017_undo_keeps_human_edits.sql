-- Undo keeps what people changed (decision 0241): a hand edit of a block (content or position)
-- marks it with who and when. A rebalance rewrites ranks without marking: it is not a person's edit.
ALTER TABLE blocks ADD COLUMN IF NOT EXISTS edited_by uuid;
--> statement-breakpoint
ALTER TABLE blocks ADD COLUMN IF NOT EXISTS edited_at timestamptz;
--> statement-breakpoint
-- The blocks the last undo removed, as they were (decision 0242): a redo puts them back once and
-- clears this; null when there is nothing to redo.
ALTER TABLE generations ADD COLUMN IF NOT EXISTS undone_blocks jsonb;
