-- Flow versions: every save of a flow's definition is an immutable, numbered version. The flow
-- row keeps the published version's definition (what a new execution or an owner's chat turn
-- runs), so publishing an older version is a rollback. Executions and embeds record the version
-- they run: a later publish never changes a started execution or an existing embed.
CREATE TABLE flow_versions (
  flow_id uuid NOT NULL REFERENCES flows(id) ON DELETE CASCADE,
  version integer NOT NULL CHECK (version >= 1),
  definition jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
  PRIMARY KEY (flow_id, version)
);
--> statement-breakpoint
-- A version is never changed: the database refuses it, whatever the code above it does.
CREATE OR REPLACE FUNCTION flow_versions_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'flow versions are immutable';
END
$$;
--> statement-breakpoint
CREATE TRIGGER flow_versions_no_update BEFORE UPDATE ON flow_versions FOR EACH ROW EXECUTE FUNCTION flow_versions_are_immutable();
--> statement-breakpoint
ALTER TABLE flows ADD COLUMN published_version integer NOT NULL DEFAULT 1;
--> statement-breakpoint
ALTER TABLE flows ADD COLUMN latest_version integer NOT NULL DEFAULT 1;
--> statement-breakpoint
-- Every existing flow becomes version 1, published.
INSERT INTO flow_versions (flow_id, version, definition, created_at)
  SELECT id, 1, definition, date_trunc('milliseconds', updated_at) FROM flows;
--> statement-breakpoint
ALTER TABLE flow_executions ADD COLUMN flow_version integer;
--> statement-breakpoint
-- An execution that ran the definition now kept as version 1 ran version 1; one that ran an
-- earlier, unversioned definition keeps no version (its own definition is still stored with it).
UPDATE flow_executions e SET flow_version = 1 FROM flows f WHERE f.id = e.flow_id AND e.definition = f.definition;
--> statement-breakpoint
ALTER TABLE flow_embeds ADD COLUMN flow_version integer NOT NULL DEFAULT 1;
--> statement-breakpoint
ALTER TABLE flow_embeds ALTER COLUMN flow_version DROP DEFAULT;
--> statement-breakpoint
ALTER TABLE flow_embeds ADD CONSTRAINT flow_embeds_version_fk FOREIGN KEY (flow_id, flow_version) REFERENCES flow_versions (flow_id, version);
