import { parentPort, Worker, workerData } from 'node:worker_threads';
import { PGlite, type QueryOptions, type Results, type Transaction } from '@electric-sql/pglite';
import { PGLITE_EXTENSIONS } from './pglite-extensions';
import { preparePglite, withoutTextParsers } from './pglite-statements';

/**
 * The embedded database on a thread of its own. PGlite runs Postgres in WebAssembly on the thread
 * that calls it: in one process with every role, each statement's parse, plan and execution took
 * the main thread from the HTTP API and the workers (about 40 % of it under a closed loop of light
 * turns). Here PGlite runs on a worker thread, and the main thread holds a client with the part of
 * PGlite's API that drizzle and the repositories use (`query`, `exec`, `transaction`, `close`):
 * each call is one message each way, its parameters, rows and errors copied across.
 *
 * The semantics are PGlite's own: one connection, so a transaction holds the database until it
 * ends and every other statement waits for it; `transaction` commits when its callback resolves
 * and rolls back when it throws. A database error keeps its fields (`code`, `constraint`, `detail`
 * and the others) across the thread. The thread ending unexpectedly fails every call in flight and
 * every later one, and `onLost` is told.
 */

/** One call to the thread. `tx` names an open transaction (the id of the `begin` that opened it). */
type Request =
  | { id: number; op: 'query'; tx?: number; text: string; params?: unknown[]; options?: QueryOptions }
  | { id: number; op: 'exec'; tx?: number; text: string }
  | { id: number; op: 'begin' }
  | { id: number; op: 'end'; tx: number; commit: boolean }
  | { id: number; op: 'close' };

/** A call before it is numbered. */
type Call = { [Op in Request['op']]: Omit<Extract<Request, { op: Op }>, 'id'> }[Request['op']];

/** The thread's answer to request `id` (id 0: the database is open, or could not be opened). */
type Reply = { id: number; result?: unknown; error?: SentError };

/** An error as it crosses the thread: its message, name, stack, and every field with a plain value. */
interface SentError {
  name: string;
  message: string;
  stack?: string;
  fields: Record<string, string | number | boolean | null>;
}

function sendable(error: unknown): SentError {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error), fields: {} };
  const fields: SentError['fields'] = {};
  for (const [key, value] of Object.entries(error as unknown as Record<string, unknown>))
    if (value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') fields[key] = value;
  return { name: error.name, message: error.message, stack: error.stack, fields };
}

function received(sent: SentError): Error {
  const error = Object.assign(new Error(sent.message), sent.fields);
  error.name = sent.name;
  if (sent.stack) error.stack = sent.stack;
  return error;
}

/** Thrown inside the thread's transaction to have PGlite roll it back. */
const ROLL_BACK = new Error('roll back');

/** What a call returns whose answer is posted elsewhere (when its transaction settles, or before the port closes). */
const ANSWERED_ELSEWHERE = Symbol('answered elsewhere');

/** Runs on the database thread: opens PGlite on `workerData.dir` and answers the main thread's calls. */
export async function servePgliteThread(): Promise<void> {
  const port = parentPort!;
  const post = (reply: Reply) => port.postMessage(reply);
  let client: PGlite;
  try {
    client = new PGlite((workerData as { dir: string }).dir, { extensions: PGLITE_EXTENSIONS });
    await preparePglite(client);
  } catch (error) {
    post({ id: 0, error: sendable(error) });
    return;
  }
  const open = new Map<number, { tx: Transaction; end(commit: boolean, replyTo: number): void }>();

  const target = (tx: number | undefined): PGlite | Transaction => {
    if (tx === undefined) return client;
    const transaction = open.get(tx)?.tx;
    if (!transaction) throw new Error('Transaction is closed');
    return transaction;
  };

  /** Opens a transaction: answered once it holds the database; its `end` is answered once PGlite committed or rolled back. */
  const begin = (id: number) => {
    let ended!: (end: { commit: boolean; replyTo: number }) => void;
    const end = new Promise<{ commit: boolean; replyTo: number }>((resolve) => (ended = resolve));
    let replyTo = 0;
    client
      .transaction(async (tx) => {
        open.set(id, { tx, end: (commit, to) => ended({ commit, replyTo: to }) });
        post({ id, result: id });
        const outcome = await end;
        replyTo = outcome.replyTo;
        if (!outcome.commit) throw ROLL_BACK;
      })
      .then(
        () => post({ id: replyTo, result: null }),
        (error: unknown) => {
          open.delete(id);
          if (error === ROLL_BACK) post({ id: replyTo, result: null });
          // BEGIN itself failed (replyTo 0: never opened), or COMMIT did.
          else post({ id: replyTo || id, error: sendable(error) });
        },
      );
  };

  const handle = async (request: Request): Promise<unknown> => {
    switch (request.op) {
      case 'query':
        return target(request.tx).query(request.text, request.params, request.options);
      case 'exec':
        return target(request.tx).exec(request.text);
      case 'end': {
        const transaction = open.get(request.tx);
        if (!transaction) throw new Error('Transaction is closed');
        open.delete(request.tx);
        transaction.end(request.commit, request.id);
        return ANSWERED_ELSEWHERE;
      }
      case 'close':
        await client.close();
        // Answered before the port closes: Node hands the main thread every message sent before the thread's exit.
        post({ id: request.id, result: null });
        port.close();
        return ANSWERED_ELSEWHERE;
      default:
        throw new Error(`unknown database call ${(request as { op: string }).op}`);
    }
  };

  port.on('message', (request: Request) => {
    if (request.op === 'begin') return begin(request.id);
    handle(request).then(
      (result) => result !== ANSWERED_ELSEWHERE && post({ id: request.id, result }),
      (error: unknown) => post({ id: request.id, error: sendable(error) }),
    );
  });
  post({ id: 0, result: null });
}

/** What a transaction's callback gets: PGlite's `Transaction`, as far as drizzle and the repositories use it. */
export interface RemoteTransaction {
  query<T>(text: string, params?: unknown[], options?: QueryOptions): Promise<Results<T>>;
  exec(text: string): Promise<Array<Results>>;
  rollback(): Promise<void>;
  readonly closed: boolean;
}

/** The main thread's client of the database thread (see the top of this file). */
export class PgliteThread {
  private readonly pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  private nextId = 1;
  private lost: Error | undefined;
  private closing = false;

  private constructor(
    private readonly worker: Worker,
    onLost: (error: Error) => void,
  ) {
    worker.on('message', (reply: Reply) => {
      const call = this.pending.get(reply.id);
      if (!call) return;
      this.pending.delete(reply.id);
      if (reply.error) call.reject(received(reply.error));
      else call.resolve(reply.result);
    });
    const fail = (error: Error) => {
      if (this.lost) return;
      this.lost = error;
      for (const call of this.pending.values()) call.reject(error);
      this.pending.clear();
      if (!this.closing) onLost(error);
    };
    worker.on('error', (error) =>
      fail(Object.assign(new Error(`The embedded database thread failed: ${error.message}`), { cause: error })),
    );
    worker.on('exit', (code) => fail(new Error(`The embedded database thread exited (code ${code})`)));
  }

  /** Starts the thread on the data directory `dir`; resolves once PGlite is open there. */
  static async open(dir: string, onLost: (error: Error) => void = () => undefined): Promise<PgliteThread> {
    const worker = new Worker(threadEntry(), { eval: true, workerData: { dir } });
    const thread = new PgliteThread(worker, onLost);
    try {
      await thread.call(0);
    } catch (error) {
      thread.closing = true;
      await worker.terminate();
      throw error;
    }
    return thread;
  }

  query<T>(text: string, params?: unknown[], options?: QueryOptions): Promise<Results<T>> {
    return this.send({ op: 'query', text, params, options: crossing(options) }) as Promise<Results<T>>;
  }

  exec(text: string): Promise<Array<Results>> {
    return this.send({ op: 'exec', text }) as Promise<Array<Results>>;
  }

  /** PGlite's `transaction`: commits when `callback` resolves, rolls back when it throws (or called `rollback`). */
  async transaction<T>(callback: (tx: RemoteTransaction) => Promise<T>): Promise<T> {
    const tx = (await this.send({ op: 'begin' })) as number;
    let closed = false;
    const open = () => {
      if (closed) throw new Error('Transaction is closed');
    };
    const end = (commit: boolean) => {
      closed = true;
      return this.send({ op: 'end', tx, commit }).then(() => undefined);
    };
    const handle: RemoteTransaction = {
      query: async <R>(text: string, params?: unknown[], options?: QueryOptions) => {
        open();
        return (await this.send({ op: 'query', tx, text, params, options: crossing(options) })) as Results<R>;
      },
      exec: async (text: string) => {
        open();
        return (await this.send({ op: 'exec', tx, text })) as Array<Results>;
      },
      rollback: async () => {
        open();
        await end(false);
      },
      get closed() {
        return closed;
      },
    };
    let result: T;
    try {
      result = await callback(handle);
    } catch (error) {
      // As PGlite's own `transaction`: a rollback that fails throws its own error instead.
      if (!closed) await end(false);
      throw error;
    }
    if (!closed) await end(true);
    return result;
  }

  /** Closes PGlite (its files flushed) and ends the thread. */
  async close(): Promise<void> {
    if (this.lost) return;
    this.closing = true;
    const exited = new Promise((resolve) => this.worker.once('exit', resolve));
    await this.send({ op: 'close' });
    await exited;
  }

  private send(request: Call): Promise<unknown> {
    const id = this.nextId++;
    const reply = this.call(id);
    this.worker.postMessage({ ...request, id });
    return reply;
  }

  private call(id: number): Promise<unknown> {
    if (this.lost) return Promise.reject(this.lost);
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }
}

/**
 * What the thread runs: the bundle that `npm start` runs carries this module and serves from it;
 * from the TypeScript sources (tests, tsx) this file is loaded through tsx.
 */
function threadEntry(): string {
  const self = JSON.stringify(__filename);
  if (!__filename.endsWith('.ts')) return `require(${self}).servePgliteThread();`;
  return `require(${JSON.stringify(require.resolve('tsx/cjs'))}); require(${self}).servePgliteThread();`;
}

/** Options as they cross the thread: the text parsers the thread's instance has already are dropped; any other function cannot cross. */
function crossing(options: QueryOptions | undefined): QueryOptions | undefined {
  const own = withoutTextParsers(options);
  if (own?.parsers || own?.serializers || own?.onNotice)
    throw new Error('The embedded database thread takes no custom parsers, serializers or notice handlers');
  return own;
}
