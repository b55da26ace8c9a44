import { createHash } from 'node:crypto';
import { Client, type QueryResult } from 'pg';

/** Told the time of each statement a pool's clients run (seconds) and whether it failed; set once metrics exist. */
export interface QueryTiming {
  observe?: (seconds: number, failed: boolean) => void;
}

/** Named statements one connection keeps at most: past it, new texts run unnamed. */
export const STATEMENTS_PER_CONNECTION = 256;

/** Texts one connection remembers as seen once, before it forgets them all and starts again. */
const SEEN_ONCE = 256;

/**
 * Texts with more parameters are batches (rows of an insert, an `in` list) whose text changes with
 * their size: left unnamed, so they do not fill a connection's names.
 */
const MAX_NAMED_PARAMETERS = 100;

/**
 * The named statement returns another row type since a migration changed a table a `*` reads:
 * "cached plan must not change result type" (its code is shared by other errors, the server's
 * function that raises it is not, and it reads the same in every server language).
 */
const resultTypeChanged = (error: { code?: string; routine?: string }) =>
  error.code === '0A000' && error.routine === 'RevalidateCachedQuery';
/**
 * The server does not have the statement this connection named (26000), or already has one of that
 * name it did not parse here (42P05): the connection reaches more than one server session, as
 * through a transaction-mode pooler that does not keep prepared statements, or someone ran
 * `DEALLOCATE`.
 */
const NOT_KEPT = new Set(['26000', '42P05']);

type Callback = (error: Error | null, result?: QueryResult) => void;
interface Config {
  text: string;
  name?: string;
  values?: unknown[];
}

/**
 * The `pg` client class of a PostgreSQL server's pool (its `Client` option), which does two things
 * to every statement it runs, inside transactions too:
 *
 * - **Names the statements it runs again.** A text with parameters is sent unnamed the first time
 *   on a connection and as a named statement from its second run on: PostgreSQL then parses and
 *   plans it once per connection instead of on every run (the planning of a turn's start, a
 *   five-table read with a run's move, cost more than running it). A name is derived from its text
 *   alone, so on any server session a name stands for one text. A connection names at most
 *   `capacity` texts, none with more than `MAX_NAMED_PARAMETERS` parameters, and sends the rest
 *   unnamed, so what a server keeps per connection is bounded. A statement whose row type a
 *   migration changed is parsed again under a new name. A connection whose server lost a named
 *   statement, or holds one it did not parse (a pooler that does not keep prepared statements),
 *   stops naming. In both cases a statement sent outside a transaction, with nothing sent after it
 *   on the connection, is sent again at once and succeeds; otherwise the error reaches the caller
 *   (inside a transaction it has aborted the transaction).
 * - **Times them** for `timing` (the promise and the callback forms; a submittable, a cursor or a
 *   stream, passes through untimed and unnamed).
 */
export function serverClientClass(timing: QueryTiming, capacity = STATEMENTS_PER_CONNECTION): typeof Client {
  return class ServerClient extends Client {
    /** Statement name by text: the texts this connection named. */
    private readonly names = new Map<string, string>();
    private readonly seenOnce = new Set<string>();
    /** Per text whose row type changed under it: how many times, for its next name. */
    private readonly reparsed = new Map<string, number>();
    /** Names this connection gave out, including those of statements parsed again under a new one. */
    private named = 0;
    /** False once the server lost a statement this connection named: every statement goes unnamed. */
    private naming = true;
    private inTransaction = false;
    /** Statements handed to this connection so far: a retry is sent only when none came after the failed one. */
    private issued = 0;

    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- pg's query has a dozen overloads; this forwards every one
    override query(...args: unknown[]): any {
      this.issued += 1;
      const config = configOf(args[0]);
      if (!config) return this.timed(args);
      this.followTransaction(config.text);
      const values = Array.isArray(args[1]) ? (args[1] as unknown[]) : config.values;
      const name = config.name || !values?.length || values.length > MAX_NAMED_PARAMETERS ? undefined : this.nameFor(config.text);
      if (!name) return this.timed(args);
      // Sent again only if it ran outside a transaction and nothing was sent after it: the order of
      // statements on the connection stays the caller's, and none lands after a transaction's end.
      const retryable = !this.inTransaction;
      const sentAs = this.issued;
      const last = args.at(-1);
      const callback = typeof last === 'function' ? (last as Callback) : undefined;
      const rest = callback ? args.slice(1, -1) : args.slice(1);
      const send = (as: string | undefined) => this.timed([{ ...config, name: as }, ...rest]) as Promise<QueryResult>;
      const result = send(name).catch((error: unknown) => {
        const failure = error as { code?: string; routine?: string };
        if (resultTypeChanged(failure) && this.names.get(config.text) === name) {
          this.names.delete(config.text);
          this.reparsed.set(config.text, (this.reparsed.get(config.text) ?? 0) + 1);
        } else if (NOT_KEPT.has(failure.code ?? '')) {
          this.naming = false;
          this.names.clear();
          this.seenOnce.clear();
        } else {
          throw error;
        }
        if (!retryable || this.issued !== sentAs) throw error;
        return send(this.nameFor(config.text, true));
      });
      if (!callback) return result;
      result.then(
        (value) => callback(null, value),
        (error: Error) => callback(error),
      );
      return undefined;
    }

    /**
     * The name to run `text` under on this connection, or undefined to run it unnamed: the first
     * time a text is seen (unless `again`: a named statement parsed again), past `capacity`, and
     * once the connection stopped naming.
     */
    private nameFor(text: string, again = false): string | undefined {
      const known = this.names.get(text);
      if (known) return known;
      if (!this.naming || this.named >= capacity) return undefined;
      if (!again && !this.seenOnce.delete(text)) {
        if (this.seenOnce.size >= SEEN_ONCE) this.seenOnce.clear();
        this.seenOnce.add(text);
        return undefined;
      }
      this.named += 1;
      const reparsed = this.reparsed.get(text);
      const name = `sb_${createHash('sha256').update(text).digest('hex').slice(0, 32)}${reparsed ? `_${reparsed}` : ''}`;
      this.names.set(text, name);
      return name;
    }

    /** Whether a transaction is open on this connection, from the statements that open and end one. */
    private followTransaction(text: string): void {
      if (/^\s*(begin|start\s+transaction)\b/i.test(text.length > 64 ? text.slice(0, 64) : text)) this.inTransaction = true;
      else if (text.length <= 40 && /^\s*(commit|end|rollback|abort)(\s+(work|transaction))?\s*;?\s*$/i.test(text))
        this.inTransaction = false;
    }

    /** `super.query` with `args`, its time and outcome told to `timing`. */
    private timed(args: unknown[]): unknown {
      const forward = (super.query as (...a: unknown[]) => unknown).bind(this);
      const observe = timing.observe;
      if (!observe) return forward(...args);
      const started = performance.now();
      const done = (failed: boolean) => observe((performance.now() - started) / 1000, failed);
      const last = args.at(-1);
      if (typeof last === 'function') {
        args[args.length - 1] = (error: unknown, result: unknown) => {
          done(Boolean(error));
          (last as (error: unknown, result: unknown) => void)(error, result);
        };
        return forward(...args);
      }
      const result = forward(...args);
      if (!(result instanceof Promise)) return result;
      return result.then(
        (value: unknown) => (done(false), value),
        (error: unknown) => {
          done(true);
          throw error;
        },
      );
    }
  };
}

/** The query's text and config when it is a text or a plain config (not a submittable, no callback of its own). */
function configOf(first: unknown): Config | undefined {
  if (typeof first === 'string') return { text: first };
  if (!first || typeof first !== 'object') return undefined;
  const config = first as Partial<Config> & { submit?: unknown; callback?: unknown };
  // A config with a callback of its own (pg answers through it, not a promise) passes through as it is.
  return typeof config.text === 'string' && typeof config.submit !== 'function' && typeof config.callback !== 'function'
    ? (config as Config)
    : undefined;
}
