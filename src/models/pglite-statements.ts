import { types, type PGlite, type QueryOptions, type Results, type Transaction } from '@electric-sql/pglite';

/**
 * PGlite's `query` talks to its in-process backend in six calls (parse, describe the statement,
 * bind, describe the portal, execute, sync) and has Postgres parse and plan the text every time,
 * most of the CPU of a primary-key select. These run it as one call, and keep the statement
 * parsed under a name once its text was seen (as node-postgres does with a named query): Bind,
 * Describe, Execute and Sync, a fraction of that. Same locks as `query`, same
 * results (rows through the instance's parsers, `fields`, `affectedRows`), the same errors.
 *
 * Only queries whose parameters are all strings, numbers, booleans, bigints or null take this way;
 * PGlite serializes those as their text whatever the column's type (the type it would look up
 * with its extra describe call changes nothing for them). Anything else (a Date, an object, bytes),
 * a blob, parameter types or custom serializers goes to PGlite's own `query`.
 *
 * The one place that uses PGlite beyond its documented API: the locks `_runExclusiveTransaction`
 * and `_runExclusiveQuery` and `_checkReady` (the public `runExclusive` takes only the query lock,
 * so a query through it could run inside somebody else's transaction). PGlite is pinned to an exact
 * version for it, and test/integration/pglite-contract.test.ts checks what this relies on.
 */
export class PgliteStatements {
  /** Statement name by SQL text, least recently used first. */
  private readonly names = new Map<string, string>();
  /** Names evicted from `names`, closed at the start of the next call. */
  private readonly closing: string[] = [];
  private counter = 0;

  constructor(
    private readonly client: PGlite,
    private readonly capacity = 256,
  ) {}

  /** Whether `run` can take this query (else PGlite's own `query` must). */
  static handles(params: unknown[] | undefined, options: QueryOptions | undefined): boolean {
    if (options && (options.blob || options.paramTypes || options.serializers || options.onNotice)) return false;
    if (params) for (const param of params) if (!isTextParam(param)) return false;
    return true;
  }

  /**
   * `query` on the instance (`tx` undefined: waits for any transaction, like `PGlite.query`) or
   * inside the transaction `tx`.
   */
  async query<T>(text: string, params?: unknown[], options?: QueryOptions, tx?: Transaction): Promise<Results<T>> {
    if (tx) {
      if (tx.closed) throw new Error('Transaction is closed');
      return this.client._runExclusiveQuery(() => this.run<T>(text, params ?? [], options, true));
    }
    await this.client._checkReady();
    return this.client._runExclusiveTransaction(() =>
      this.client._runExclusiveQuery(() => this.run<T>(text, params ?? [], options, false)),
    );
  }

  private async run<T>(text: string, params: unknown[], options: QueryOptions | undefined, inTransaction: boolean): Promise<Results<T>> {
    let name = this.names.get(text);
    const fresh = name === undefined;
    if (fresh) {
      name = `sb${(this.counter += 1)}`;
      if (this.names.size >= this.capacity) {
        const [oldest, oldestName] = this.names.entries().next().value as [string, string];
        this.names.delete(oldest);
        this.closing.push(oldestName);
      }
    } else {
      this.names.delete(text); // most recently used goes last
    }
    this.names.set(text, name!);
    const message = encode(this.closing.splice(0), fresh ? text : undefined, name!, params);
    const { messages } = await this.client.execProtocol(message, { throwOnError: false, syncToFs: !inTransaction });
    let error: (Error & { code?: string }) | undefined;
    let parsed = !fresh;
    for (const each of messages) {
      if (each.name === 'parseComplete') parsed = true;
      else if (each.name === 'error') error ??= each as unknown as Error & { code?: string };
    }
    if (!parsed) this.names.delete(text);
    if (error) {
      // The named statement is gone (a DISCARD, a DEALLOCATE) or its result type changed (a
      // migration): parse it again. Outside a transaction, once more at once; inside one, the
      // error has aborted the transaction and stands.
      if (!fresh && (error.code === '26000' || error.code === '0A000')) {
        this.names.delete(text);
        this.closing.push(name!);
        if (!inTransaction) return this.run(text, params, options, inTransaction);
      }
      throw Object.assign(error, { query: text, params, queryOptions: options });
    }
    return toResults<T>(messages, this.client.parsers, options);
  }
}

function isTextParam(value: unknown): boolean {
  const type = typeof value;
  return value === null || value === undefined || type === 'string' || type === 'number' || type === 'boolean' || type === 'bigint';
}

interface BackendMessage {
  name: string;
  fields?: unknown[];
  text?: string;
}

/**
 * What PGlite's `query` returns for one statement (its `parseResults`): rows as objects (or arrays
 * with `rowMode: 'array'`) through `options.parsers` over the instance's, `fields`, `command`,
 * `affectedRows` for INSERT / UPDATE / DELETE / COPY / MERGE, `rowCount` from the command tag.
 */
function toResults<T>(messages: BackendMessage[], instanceParsers: PGlite['parsers'], options: QueryOptions | undefined): Results<T> {
  const parsers = options?.parsers ? { ...instanceParsers, ...options.parsers } : instanceParsers;
  const asArrays = options?.rowMode === 'array';
  let fields: Array<{ name: string; dataTypeID: number }> = [];
  const rows: unknown[] = [];
  for (const message of messages) {
    if (message.name === 'rowDescription') {
      fields = (message.fields as Array<{ name: string; dataTypeID: number }>).map(({ name, dataTypeID }) => ({ name, dataTypeID }));
    } else if (message.name === 'dataRow') {
      const values = message.fields as Array<string | null>;
      if (asArrays) {
        rows.push(values.map((value, i) => parse(value, fields[i].dataTypeID, parsers)));
      } else {
        const row: Record<string, unknown> = {};
        for (let i = 0; i < values.length; i += 1) row[fields[i].name] = parse(values[i], fields[i].dataTypeID, parsers);
        rows.push(row);
      }
    } else if (message.name === 'commandComplete') {
      const tag = message.text!.split(' ');
      const command = tag[0];
      const count = Number.parseInt(tag[tag.length - 1], 10);
      const affectedRows = ['INSERT', 'UPDATE', 'DELETE', 'COPY', 'MERGE'].includes(command) ? count : 0;
      return { rows, fields, command, affectedRows, ...(Number.isNaN(count) ? {} : { rowCount: count }) } as unknown as Results<T>;
    }
  }
  return { rows: [], fields: [], affectedRows: 0 };
}

function parse(value: string | null, oid: number, parsers: PGlite['parsers']): unknown {
  if (value === null) return null;
  const parser = parsers[oid];
  return parser ? parser(value, oid) : value;
}

/**
 * The frontend messages of one call: Close for evicted statements, Parse (when `text` is given),
 * Bind of `name` with every parameter and result in text format, Describe the portal, Execute,
 * Sync.
 */
function encode(closes: string[], text: string | undefined, name: string, params: unknown[]): Buffer {
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- drizzle hands serialized parameters (text, numbers, booleans): String() is the text protocol's encoding
  const values = params.map((param) => (param === null || param === undefined ? null : String(param)));
  let size = TAIL.length;
  for (const close of closes) size += 1 + 4 + 1 + cstringBytes(close);
  if (text !== undefined) size += 1 + 4 + cstringBytes(name) + cstringBytes(text) + 2;
  size += 1 + 4 + 1 + cstringBytes(name) + 2 + 2 + 2;
  for (const value of values) size += 4 + (value === null ? 0 : Buffer.byteLength(value));
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  const header = (type: string, length: number) => {
    out[at] = type.charCodeAt(0);
    out.writeInt32BE(length, at + 1);
    at += 5;
  };
  const cstring = (value: string) => {
    at += out.write(value, at);
    out[at] = 0;
    at += 1;
  };
  for (const close of closes) {
    header('C', 4 + 1 + cstringBytes(close));
    out[at] = 0x53; // 'S': a statement
    at += 1;
    cstring(close);
  }
  if (text !== undefined) {
    header('P', 4 + cstringBytes(name) + cstringBytes(text) + 2);
    cstring(name);
    cstring(text);
    out.writeInt16BE(0, at); // no parameter types: the server infers them, as PGlite's parse does
    at += 2;
  }
  const bindStart = at;
  header('B', 0);
  out[at] = 0; // the unnamed portal
  at += 1;
  cstring(name);
  out.writeInt16BE(0, at); // every parameter in text format
  out.writeInt16BE(values.length, at + 2);
  at += 4;
  for (const value of values) {
    if (value === null) {
      out.writeInt32BE(-1, at);
      at += 4;
    } else {
      const length = out.write(value, at + 4);
      out.writeInt32BE(length, at);
      at += 4 + length;
    }
  }
  out.writeInt16BE(0, at); // every result column in text format
  at += 2;
  out.writeInt32BE(at - bindStart - 1, bindStart + 1);
  TAIL.copy(out, at);
  return out;
}

function cstringBytes(value: string): number {
  return Buffer.byteLength(value) + 1;
}

/** Describe the unnamed portal, Execute it (all rows), Sync. */
const TAIL = Buffer.from([0x44, 0, 0, 0, 6, 0x50, 0, 0x45, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0x53, 0, 0, 0, 4]);

/**
 * drizzle has PGlite return dates, timestamps, intervals and numeric[] as text (drizzle parses them
 * itself) by passing those parsers with every query, and PGlite then copies its whole parser table
 * (some 300 types) into a new object for each query: a fifth of a simple query's CPU. The same
 * text parsers are installed once on the instance instead, and each query's copy of them is
 * dropped; a query passing any other parser keeps its own. Queries then run as one call to
 * PGlite's backend, their statements kept parsed (`PgliteStatements`).
 */
export async function preparePglite(client: PGlite): Promise<void> {
  // After start-up, which fills in the array types' parsers.
  await client.waitReady;
  for (const oid of TEXT_TYPES) client.parsers[oid] = asText;
  const statements = new PgliteStatements(client);
  routeQueries(statements, client);
  const transaction = client.transaction.bind(client);
  client.transaction = <T>(callback: (tx: Transaction) => Promise<T>) => transaction((tx) => callback(routeQueries(statements, tx, tx)));
}

/** `target`'s queries, from now on without the text parsers the instance already has, through `statements` where they can. */
function routeQueries<T extends PGlite | Transaction>(statements: PgliteStatements, target: T, tx?: Transaction): T {
  const query = target.query.bind(target);
  target.query = ((text: string, params?: unknown[], options?: QueryOptions) => {
    const own = withoutTextParsers(options);
    return PgliteStatements.handles(params, own) ? statements.query(text, params, own, tx) : query(text, params, own);
  }) as T['query'];
  return target;
}

/** The types drizzle-orm/pglite reads as text: timestamp, timestamptz, interval, date, and the arrays numeric[], timestamp[], timestamptz[], interval[], date[]. */
const TEXT_TYPES = new Set<number>([types.TIMESTAMP, types.TIMESTAMPTZ, types.INTERVAL, types.DATE, 1231, 1115, 1185, 1187, 1182]);
const asText = (value: string) => value;

export function withoutTextParsers(options: QueryOptions | undefined): QueryOptions | undefined {
  if (!options?.parsers) return options;
  for (const oid in options.parsers) if (!TEXT_TYPES.has(Number(oid))) return options;
  return { ...options, parsers: undefined };
}
