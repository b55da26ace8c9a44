-- The chunks' full-text index keeps no pending list. With `fastupdate` on (GIN's default), new
-- entries wait in an unsorted list that every search reads whole until a vacuum merges it; the
-- embedded database runs no autovacuum, so each term of every search read up to 4 MB of it. Entries
-- now go into the index as they are written, and what is already waiting is merged here.
ALTER INDEX knowledge_chunks_tsv SET (fastupdate = off);
--> statement-breakpoint
SELECT gin_clean_pending_list('knowledge_chunks_tsv'::regclass);
