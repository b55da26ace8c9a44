-- Knowledge bases: an owner's documents, their uploaded bytes while they are ingested, and the
-- chunks retrieval searches. A document's `revision` counts its ingestions; its chunks carry the
-- revision that wrote them, and only `ready_revision`'s chunks are searched, so a re-ingestion
-- replaces the old chunks in one step and a resumed one never duplicates a chunk (unique
-- document, revision, ordinal).
CREATE TABLE knowledge_bases (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  owner_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name text NOT NULL,
  description text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
--> statement-breakpoint
CREATE INDEX knowledge_bases_owner ON knowledge_bases (owner_id, created_at DESC);
--> statement-breakpoint
CREATE TABLE knowledge_documents (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  base_id uuid NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
  owner_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name text NOT NULL,
  source text NOT NULL CHECK (source IN ('upload', 'url')),
  url text,
  media_type text,
  size_bytes integer NOT NULL DEFAULT 0,
  status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'parsing', 'embedding', 'ready', 'failed')),
  error text,
  revision integer NOT NULL DEFAULT 1,
  ready_revision integer,
  chunk_count integer NOT NULL DEFAULT 0,
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
--> statement-breakpoint
CREATE INDEX knowledge_documents_base ON knowledge_documents (base_id, created_at DESC);
--> statement-breakpoint
-- The bytes of an uploaded document, kept until its ingestion succeeds (a re-ingestion of a URL fetches again).
CREATE TABLE knowledge_files (
  document_id uuid PRIMARY KEY REFERENCES knowledge_documents(id) ON DELETE CASCADE,
  bytes bytea NOT NULL
);
--> statement-breakpoint
-- The embedding column is pgvector's `vector` where the server has the extension (searched through
-- an HNSW index per dimension, made on first use), else `real[]` (searched by an exact scan).
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') THEN
    CREATE EXTENSION IF NOT EXISTS vector;
    EXECUTE 'CREATE TABLE knowledge_chunks (
      id bigserial PRIMARY KEY,
      document_id uuid NOT NULL REFERENCES knowledge_documents(id) ON DELETE CASCADE,
      base_id uuid NOT NULL,
      owner_id uuid NOT NULL,
      revision integer NOT NULL,
      ordinal integer NOT NULL,
      text text NOT NULL,
      page integer,
      section text,
      tokens integer NOT NULL,
      dimensions integer NOT NULL,
      embedding vector NOT NULL,
      tsv tsvector GENERATED ALWAYS AS (to_tsvector(''english'', text)) STORED,
      UNIQUE (document_id, revision, ordinal)
    )';
  ELSE
    EXECUTE 'CREATE TABLE knowledge_chunks (
      id bigserial PRIMARY KEY,
      document_id uuid NOT NULL REFERENCES knowledge_documents(id) ON DELETE CASCADE,
      base_id uuid NOT NULL,
      owner_id uuid NOT NULL,
      revision integer NOT NULL,
      ordinal integer NOT NULL,
      text text NOT NULL,
      page integer,
      section text,
      tokens integer NOT NULL,
      dimensions integer NOT NULL,
      embedding real[] NOT NULL,
      tsv tsvector GENERATED ALWAYS AS (to_tsvector(''english'', text)) STORED,
      UNIQUE (document_id, revision, ordinal)
    )';
  END IF;
END
$$;
--> statement-breakpoint
CREATE INDEX knowledge_chunks_base ON knowledge_chunks (base_id, document_id, revision);
--> statement-breakpoint
CREATE INDEX knowledge_chunks_tsv ON knowledge_chunks USING gin (tsv);
