import { DEVICE_TABLES, type DeviceRow, type DeviceTable, type ToolCall, type ToolReply } from '../protocol';
import type { TableStore } from '../device';

/** Rows to start with, per table; `id` and timestamps are added where missing. */
export type StoreSeed = Partial<Record<DeviceTable, Array<Record<string, unknown>>>>;

/** A vector stored by `vector_upsert` (the device keeps these in LanceDB). */
interface VectorEntry {
  id: string;
  vector: number[];
  content: string;
  metadata: Record<string, unknown>;
}

/** Column defaults the device's schema applies on insert. */
const DEFAULTS: Partial<Record<DeviceTable, Record<string, unknown>>> = {
  tasks: { status: 'todo', priority: 'medium', isAiSuggested: 0, isApproved: 1 },
  projects: { status: 'active' },
  checkpoints: { isAiSuggested: 0, isApproved: 1 },
};

const TEXT_FIELDS = ['title', 'name', 'content', 'description'];

/**
 * The device's local database in memory: the six tables of the desktop app and a vector index, answering
 * `tool_call`s the way the desktop app does (the device owns ids and timestamps). A test double
 * (`@switchboard/client/testing`): the device simulator answers from it; runs in Node and in
 * browsers (no Node-only imports).
 */
export class MemoryStore implements TableStore {
  private readonly tables = new Map<DeviceTable, Map<string, DeviceRow>>(DEVICE_TABLES.map((table) => [table, new Map()]));
  private readonly vectors = new Map<string, VectorEntry>();

  constructor(
    seed: StoreSeed = {},
    private readonly now: () => number = Date.now,
  ) {
    for (const [table, rows] of Object.entries(seed) as Array<[DeviceTable, Array<Record<string, unknown>>]>) this.seed(table, rows);
  }

  /** Adds rows as they are (keeping given ids), filling in id and timestamps where missing. */
  seed(table: DeviceTable, rows: Array<Record<string, unknown>>): DeviceRow[] {
    return rows.map((row) => {
      const stamp = this.now();
      const stored = {
        ...DEFAULTS[table],
        createdAt: stamp,
        updatedAt: stamp,
        ...row,
        id: typeof row.id === 'string' ? row.id : newId(),
      } as DeviceRow;
      this.table(table).set(stored.id, stored);
      return { ...stored };
    });
  }

  /** A copy of every row of `table`, oldest first. */
  rows(table: DeviceTable): DeviceRow[] {
    return [...this.table(table).values()].map((row) => ({ ...row }));
  }

  /** Runs one validated tool call. Never throws: failures become `{id, error}`. */
  execute(call: ToolCall): ToolReply {
    try {
      switch (call.action) {
        case 'select':
          return { id: call.id, rows: this.select(call.table, call.filters ?? {}, call.limit) };
        case 'get':
          return { id: call.id, row: this.copy(this.table(call.table).get(call.data.id)) };
        case 'insert':
          return {
            id: call.id,
            row: this.seed(call.table, [{ ...call.data, id: newId(), createdAt: this.now(), updatedAt: this.now() }])[0],
          };
        case 'update': {
          const existing = this.table(call.table).get(call.data.id);
          if (!existing) return { id: call.id, error: `${call.table} ${call.data.id} not found` };
          const updated = { ...existing, ...call.data.updates, id: existing.id, createdAt: existing.createdAt, updatedAt: this.now() };
          this.table(call.table).set(existing.id, updated);
          return { id: call.id, row: { ...updated } };
        }
        case 'delete':
          this.vectors.delete(call.data.id);
          return { id: call.id, deleted: this.table(call.table).delete(call.data.id) };
        case 'vector_upsert': {
          const { id, content, ...metadata } = call.data;
          this.vectors.set(id, {
            id,
            content,
            vector: [...call.vector],
            metadata: { ...metadata, ...(call.table ? { table: call.table } : {}) },
          });
          return { id: call.id, ok: true };
        }
        case 'vector_search':
          return { id: call.id, results: this.search(call.vector, call.filters ?? {}, call.limit ?? 5, call.table) };
        default:
          return { id: call.id, error: `this device serves no project (${call.action})` };
      }
    } catch (error) {
      return { id: call.id, error: error instanceof Error ? error.message : String(error) };
    }
  }

  private table(table: DeviceTable): Map<string, DeviceRow> {
    return this.tables.get(table)!;
  }

  private copy(row: DeviceRow | undefined): DeviceRow | null {
    return row ? { ...row } : null;
  }

  /** Filters as described by `filtersSchema`: equality, `search`, `<field>From`/`<field>To`, `orderBy`, `includeArchived`. */
  private select(table: DeviceTable, filters: Record<string, string | number | boolean>, limit?: number): DeviceRow[] {
    const { search, orderBy, includeArchived, ...rest } = filters;
    let rows = [...this.table(table).values()].filter((row) =>
      Object.entries(rest).every(([key, value]) => {
        const range = /^(.+)(From|To)$/.exec(key);
        if (range && typeof value === 'number' && !(key in row)) {
          const field = row[range[1]];
          return typeof field === 'number' && (range[2] === 'From' ? field >= value : field <= value);
        }
        return sameValue(row[key], value);
      }),
    );
    if (typeof search === 'string' && search) {
      const needle = search.toLowerCase();
      rows = rows.filter((row) => TEXT_FIELDS.some((field) => typeof row[field] === 'string' && row[field].toLowerCase().includes(needle)));
    }
    if (includeArchived === false) rows = rows.filter((row) => row.status !== 'archived');
    const [field, direction] =
      typeof orderBy === 'string' && orderBy ? (orderBy.startsWith('-') ? [orderBy.slice(1), -1] : [orderBy, 1]) : ['createdAt', 1];
    rows.sort((a, b) => direction * compare(a[field], b[field]));
    return rows.slice(0, limit ?? rows.length).map((row) => ({ ...row }));
  }

  private search(vector: number[], filters: Record<string, string | number | boolean>, limit: number, table?: DeviceTable) {
    return [...this.vectors.values()]
      .filter(
        (entry) =>
          (!table || entry.metadata.table === undefined || entry.metadata.table === table) &&
          Object.entries(filters).every(([key, value]) => sameValue(entry.metadata[key], value)),
      )
      .map((entry) => ({
        id: entry.id,
        content: entry.content,
        score: cosineSimilarity(vector, entry.vector),
        ...pick(entry.metadata, ['projectId', 'title']),
      }))
      .sort((a, b) => b.score - a.score)
      .slice(0, limit);
  }
}

const newId = () => globalThis.crypto.randomUUID();

/** Equality, with booleans matching the 0/1 flags SQLite stores. */
const sameValue = (stored: unknown, wanted: string | number | boolean) =>
  typeof wanted === 'boolean' ? stored === wanted || stored === (wanted ? 1 : 0) : stored === wanted;

const compare = (a: unknown, b: unknown) => {
  if (a === b) return 0;
  if (a === undefined || a === null) return 1;
  if (b === undefined || b === null) return -1;
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- other values sort by their text, as a stored row's cast would
  return typeof a === 'number' && typeof b === 'number' ? a - b : String(a).localeCompare(String(b));
};

const pick = (source: Record<string, unknown>, keys: string[]) =>
  Object.fromEntries(keys.filter((key) => source[key] !== undefined).map((key) => [key, source[key]]));

/** Cosine similarity of two vectors of the same length (0 when the lengths differ or a norm is 0). */
function cosineSimilarity(a: number[], b: number[]): number {
  if (a.length !== b.length) return 0;
  let dot = 0;
  let normA = 0;
  let normB = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    normA += a[i] * a[i];
    normB += b[i] * b[i];
  }
  return normA && normB ? dot / Math.sqrt(normA * normB) : 0;
}
