-- How many blocks each canvas holds, kept by statement-level triggers on blocks (decision 0165):
-- an insert checks the canvas's cap (MAX_BLOCKS_PER_CANVAS) by reading this one row under the
-- canvas's lock instead of counting the canvas's blocks, a count that grew with the canvas. A block
-- never moves to another canvas, so inserts and deletes are all that change it.
ALTER TABLE canvases ADD COLUMN IF NOT EXISTS block_count integer NOT NULL DEFAULT 0;
--> statement-breakpoint
UPDATE canvases c SET block_count = (SELECT count(*)::int FROM blocks b WHERE b.canvas_id = c.id);
--> statement-breakpoint
CREATE OR REPLACE FUNCTION canvases_count_inserted_blocks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE canvases c SET block_count = c.block_count + n.added
  FROM (SELECT canvas_id, count(*)::int AS added FROM inserted_blocks GROUP BY canvas_id) n
  WHERE c.id = n.canvas_id;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION canvases_count_deleted_blocks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE canvases c SET block_count = c.block_count - n.removed
  FROM (SELECT canvas_id, count(*)::int AS removed FROM removed_blocks GROUP BY canvas_id) n
  WHERE c.id = n.canvas_id;
  RETURN NULL;
END $$;
--> statement-breakpoint
DROP TRIGGER IF EXISTS blocks_counted_on_insert ON blocks;
--> statement-breakpoint
CREATE TRIGGER blocks_counted_on_insert AFTER INSERT ON blocks REFERENCING NEW TABLE AS inserted_blocks
  FOR EACH STATEMENT EXECUTE FUNCTION canvases_count_inserted_blocks();
--> statement-breakpoint
DROP TRIGGER IF EXISTS blocks_counted_on_delete ON blocks;
--> statement-breakpoint
CREATE TRIGGER blocks_counted_on_delete AFTER DELETE ON blocks REFERENCING OLD TABLE AS removed_blocks
  FOR EACH STATEMENT EXECUTE FUNCTION canvases_count_deleted_blocks();
