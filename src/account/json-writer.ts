import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { PageReader } from '../models/account-repository';

/** Rows read per query: what the export holds in memory at once, per list being written. */
export const EXPORT_PAGE_ROWS = 200;

/** The reader went away: writing stops, nothing more is read. */
export class ExportAborted extends Error {
  constructor() {
    super('the export was abandoned by its reader');
  }
}

/**
 * Writes one JSON document to a stream piece by piece, waiting for the stream to drain before it
 * writes more, so a large document passes through in pages and never sits in memory whole. Lists
 * are read a page at a time; an item may carry nested lists of its own (a canvas and its blocks).
 */
export class JsonStreamWriter {
  private readonly closed = new AbortController();

  constructor(private readonly out: Writable) {
    out.once('close', () => this.closed.abort());
  }

  /** Writes raw JSON text; waits while the stream's buffer is full. */
  async raw(text: string): Promise<void> {
    if (this.closed.signal.aborted || this.out.destroyed) throw new ExportAborted();
    if (this.out.write(text)) return;
    try {
      await once(this.out, 'drain', { signal: this.closed.signal });
    } catch {
      throw new ExportAborted();
    }
  }

  value(value: unknown): Promise<void> {
    return this.raw(JSON.stringify(value ?? null));
  }

  /**
   * Writes `fields` as an object, followed by the nested members `nested` names (each written by
   * its function, in order): `{...fields, key: <what nested.key writes>}`.
   */
  async object(fields: Record<string, unknown>, nested: Record<string, () => Promise<void>> = {}): Promise<void> {
    const head = JSON.stringify(fields);
    await this.raw(head.slice(0, -1));
    let first = head === '{}';
    for (const [key, write] of Object.entries(nested)) {
      await this.raw(`${first ? '' : ','}${JSON.stringify(key)}:`);
      first = false;
      await write();
    }
    await this.raw('}');
  }

  /** Writes every row `read` yields, page after page, each through `item` (default: as it is). */
  async list<R>(
    read: PageReader<R>,
    cursorOf: (row: R) => string,
    item: (row: R) => Promise<void> = (row) => this.value(row),
  ): Promise<void> {
    await this.raw('[');
    let after: string | undefined;
    let first = true;
    for (;;) {
      const rows = await read(after, EXPORT_PAGE_ROWS);
      for (const row of rows) {
        if (!first) await this.raw(',');
        first = false;
        await item(row);
      }
      if (rows.length < EXPORT_PAGE_ROWS) break;
      after = cursorOf(rows[rows.length - 1]);
    }
    await this.raw(']');
  }

  /** Writes a short list read whole (a handful of rows by construction). */
  async all<R>(rows: Promise<R[]>, item: (row: R) => Promise<void> = (row) => this.value(row)): Promise<void> {
    await this.raw('[');
    let first = true;
    for (const row of await rows) {
      if (!first) await this.raw(',');
      first = false;
      await item(row);
    }
    await this.raw(']');
  }
}
