import { vector } from '@electric-sql/pglite-pgvector';

/**
 * The extensions every embedded database loads: pgvector, so knowledge chunks are searched through
 * an HNSW index on the embedded default as on a PostgreSQL server that has the extension. The
 * prepared templates load the same set, or the migrations would see another server.
 */
export const PGLITE_EXTENSIONS = { vector };
