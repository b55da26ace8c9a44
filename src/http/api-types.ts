/**
 * Client types of every `/api/v1` operation, keyed by operationId, derived from the route
 * declarations (`routes/index.ts`): nothing here is written by hand, so a schema or handler change
 * shows up in these types (and in `test/types/client-contract.ts`, which holds the client package's
 * written-out types to them). Type-only: importing this module loads nothing at run time.
 *
 * ```ts
 * type Body = ApiRequestBody<'createCanvas'>;   // { title: string }
 * type Reply = ApiResponseBody<'getCanvas'>;    // { canvas: {...}; members: [...]; membersNextCursor: string | null }
 * ```
 */
import type { z } from 'zod';
import type { ParamSpec } from './route';
import type { apiRoutes } from './routes';

type Routes = (typeof apiRoutes)[number];
/** Every operationId. */
export type OperationId = Routes['operationId'];
type RouteOf<Id extends OperationId> = Extract<Routes, { operationId: Id }>;

/** A value as it travels as JSON: a `Date` becomes its ISO string, functions drop out. */
export type Jsonify<T> = T extends Date
  ? string
  : T extends string | number | boolean | null | undefined
    ? T
    : T extends readonly (infer E)[]
      ? Jsonify<E>[]
      : T extends (...args: never[]) => unknown
        ? never
        : T extends object
          ? { [K in keyof T]: Jsonify<T[K]> }
          : unknown;

/** The input type of an optional schema field (`undefined` when the route declares none). */
type Input<S> = [Exclude<S, undefined>] extends [never]
  ? undefined
  : Exclude<S, undefined> extends z.ZodType
    ? z.input<Exclude<S, undefined>>
    : undefined;
type Params<P> =
  P extends Record<string, ParamSpec> ? { [K in keyof P]: P[K] extends ParamSpec<infer S> ? z.input<S> : never } : Record<string, never>;
type Success = 200 | 201 | 202 | 203 | 204;
/** The output type of the declared 2xx response schema, `never` when none has a schema. */
type Declared<R> = {
  [S in keyof R]: S extends Success ? (R[S] extends { schema: infer T extends z.ZodType } ? z.output<T> : never) : never;
}[keyof R];
/** The documented response schema when there is one, else what the handler returns, as JSON. */
type Reply<R extends Routes> = [Declared<R['responses']>] extends [never]
  ? Jsonify<Exclude<Awaited<ReturnType<R['handler']>>, undefined | void>>
  : Declared<R['responses']>;

/** What a client sends and receives for each operation. */
export type ApiOperations = {
  [R in Routes as R['operationId']]: {
    /** Path parameters, as the URL carries them. */
    params: Params<NonNullable<R['params']>>;
    /** The query string's fields, before parsing (`undefined` when the route reads none). */
    query: Input<R['query']>;
    /** The JSON body, before parsing (`undefined` when the route reads none). */
    body: Input<R['body']>;
    /** The 2xx JSON body. */
    response: Reply<R>;
  };
};

export type ApiPathParams<Id extends OperationId> = ApiOperations[Id]['params'];
export type ApiQuery<Id extends OperationId> = ApiOperations[Id]['query'];
export type ApiRequestBody<Id extends OperationId> = ApiOperations[Id]['body'];
export type ApiResponseBody<Id extends OperationId> = ApiOperations[Id]['response'];
export type { RouteOf };
