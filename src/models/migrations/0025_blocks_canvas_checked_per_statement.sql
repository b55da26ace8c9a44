-- A block belongs to a canvas that exists, checked once per statement instead of once per row.
-- The foreign key checked each inserted row on its own (200 look-ups of the same canvas for a
-- 200-block generation). The statement-level trigger that keeps canvases.block_count already
-- updates, and so locks, every canvas an insert touches: it now also refuses the insert when one
-- of those canvases is gone, with the foreign key's error. A canvas's deletion deletes its blocks
-- in one statement, as the foreign key's cascade did (the unique index on (canvas_id, rank) finds
-- them). Blocks never move to another canvas.
CREATE OR REPLACE FUNCTION canvases_count_inserted_blocks() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  wanted integer;
  counted integer;
BEGIN
  WITH added AS (SELECT canvas_id, count(*)::int AS n FROM inserted_blocks GROUP BY canvas_id),
  counted_canvases AS (
    UPDATE canvases c SET block_count = c.block_count + added.n FROM added WHERE c.id = added.canvas_id RETURNING c.id
  )
  SELECT (SELECT count(*) FROM added), (SELECT count(*) FROM counted_canvases) INTO wanted, counted;
  IF counted < wanted THEN
    RAISE EXCEPTION 'insert or update on table "blocks" violates foreign key constraint "blocks_canvas_id_fkey"'
      USING ERRCODE = 'foreign_key_violation', DETAIL = 'A block''s canvas does not exist.';
  END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION blocks_stay_on_their_canvas() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'a block cannot move to another canvas' USING ERRCODE = 'foreign_key_violation';
END $$;
--> statement-breakpoint
DROP TRIGGER IF EXISTS blocks_canvas_unchanged ON blocks;
--> statement-breakpoint
CREATE TRIGGER blocks_canvas_unchanged BEFORE UPDATE OF canvas_id ON blocks
  FOR EACH ROW WHEN (OLD.canvas_id IS DISTINCT FROM NEW.canvas_id) EXECUTE FUNCTION blocks_stay_on_their_canvas();
--> statement-breakpoint
CREATE OR REPLACE FUNCTION canvases_delete_their_blocks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM blocks b USING removed_canvases r WHERE b.canvas_id = r.id;
  RETURN NULL;
END $$;
--> statement-breakpoint
DROP TRIGGER IF EXISTS canvases_blocks_deleted ON canvases;
--> statement-breakpoint
CREATE TRIGGER canvases_blocks_deleted AFTER DELETE ON canvases REFERENCING OLD TABLE AS removed_canvases
  FOR EACH STATEMENT EXECUTE FUNCTION canvases_delete_their_blocks();
--> statement-breakpoint
ALTER TABLE blocks DROP CONSTRAINT IF EXISTS blocks_canvas_id_fkey;
