import { findUnstorableText, StorableTextStream, toStorable, toStorableText } from '../../src/lib/text-safety';
import { describeRedacted, redactError } from '../../src/lib/redact-error';

describe('text PostgreSQL can store (0072)', () => {
  test('a surrogate pair is fine; a lone surrogate of either half or a NUL is found, in values and in keys, with its path', () => {
    expect(findUnstorableText({ a: ['ok \ud83d\ude00'] })).toBeNull();
    expect(findUnstorableText({ a: ['ok', 'x\ud800'] })).toBe('a[1]');
    expect(findUnstorableText({ b: { c: '\udc00y' } })).toBe('b.c');
    expect(findUnstorableText({ ['k\u0000']: 1 })).toBe('k\u0000');
    expect(findUnstorableText('plain')).toBeNull();
  });

  test('cleaning removes NUL and turns lone surrogates into U+FFFD, leaving pairs, numbers and nesting alone', () => {
    expect(toStorableText('a\u0000b\ud800c\ud83d\ude00')).toBe('ab\uFFFDc\ud83d\ude00');
    expect(toStorable({ n: 1, list: ['\udc00'], ['k\u0000']: null })).toEqual({ n: 1, list: ['\uFFFD'], k: null });
  });

  test('a pair split across two streamed pieces survives; a high surrogate left at the end becomes U+FFFD', () => {
    const stream = new StorableTextStream();

    const pieces = [stream.push('smile \ud83d'), stream.push('\ude00 ok'), stream.push(' end\ud83d'), stream.end()];

    expect(pieces.join('')).toBe('smile \ud83d\ude00 ok end\uFFFD');
  });
});

describe('errors described for logs (0073)', () => {
  test("a drizzle-like query error keeps class, SQLSTATE and constraint, never the query, its parameters or the cause's detail", () => {
    const cause = Object.assign(new Error('duplicate key value violates unique constraint "users_email_key"'), {
      code: '23505',
      constraint: 'users_email_key',
      table: 'users',
      detail: 'Key (email)=(ana@example.test) already exists.',
    });
    class DrizzleQueryError extends Error {
      constructor(
        readonly query: string,
        readonly params: unknown[],
        readonly cause: unknown,
      ) {
        super(`Failed query: ${query}\nparams: ${params.join(',')}`);
      }
    }
    const error = new DrizzleQueryError('insert into "users" ("email") values ($1)', ['ana@example.test'], cause);

    const logged = JSON.stringify(redactError(error));

    expect(redactError(error)).toMatchObject({
      type: 'DrizzleQueryError',
      cause: { type: 'Error', code: '23505', constraint: 'users_email_key', table: 'users' },
    });
    expect(logged).not.toContain('ana@example.test');
    expect(logged).not.toContain('insert into');
    expect(describeRedacted(error)).toBe('DrizzleQueryError <- Error 23505 (constraint users_email_key, table users)');
  });

  test('connection failures keep their message; anything else loses it', () => {
    expect(redactError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' })).message).toBe(
      'connect ECONNREFUSED 127.0.0.1:6379',
    );
    expect(redactError(new Error('upstream said: summarise my diary')).message).toBeUndefined();
    expect(redactError('a thrown string with secrets')).toEqual({ type: 'string' });
  });
});
