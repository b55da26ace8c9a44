import { z } from 'zod';
import type { SecretBox } from '../connectors/secret-box';
import { AppError, notFound } from '../lib/errors';
import type { Repositories } from '../models';
import type { HttpCredentialRow } from '../models/schema';
import { HTTP_TOOL_NAME_PATTERN, webOriginSchema } from './definition';

/** The most credentials one user keeps. */
export const MAX_HTTP_CREDENTIALS = 100;
/** The most origins one credential is bound to. */
export const MAX_CREDENTIAL_ORIGINS = 20;

/** Headers a credential may not be sent in: the request's framing, routing and the proxy's own. */
const RESERVED_HEADERS = new Set([
  'host',
  'content-length',
  'content-type',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'expect',
  'proxy-authorization',
  'proxy-connection',
  'accept',
  'user-agent',
]);

/** A credential's name: as an HTTP tool's (`github_token`). */
export const httpCredentialNameParam = z.string().regex(HTTP_TOOL_NAME_PATTERN);

/**
 * `PUT /http-credentials/:name`: how the secret is sent, and the secret. Visible ASCII only (what a
 * header carries; no line breaks, so no header can be smuggled in).
 */
export const putHttpCredentialSchema = z
  .strictObject({
    scheme: z
      .enum(['bearer', 'basic', 'header'])
      .describe(
        '`bearer`: `Authorization: Bearer <secret>`; `basic`: the secret is `user:password`, sent as `Authorization: Basic …`; `header`: `<headerName>: <secret>`',
      ),
    headerName: z
      .string()
      .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/, 'an HTTP header name (letters, digits, - and the like; 1-64)')
      .refine((name) => !RESERVED_HEADERS.has(name.toLowerCase()), 'this header is set by Switchboard itself')
      .optional()
      .describe('With `scheme: header`: the header to send the secret in, e.g. `X-Api-Key`'),
    secret: z
      .string()
      .min(1)
      .max(4_096)
      .regex(/^[\x21-\x7E](?:[\x20-\x7E]*[\x21-\x7E])?$/, 'visible ASCII characters only, no line breaks, no leading or trailing space')
      .describe('Stored sealed; never answered again'),
    origins: z
      .array(webOriginSchema(300))
      .min(1)
      .max(MAX_CREDENTIAL_ORIGINS)
      .describe(
        'The only origins the secret is ever sent to, exact (`https://api.example.com`, no `*`): a flow whose tool naming it calls another is refused. Changing them takes the secret again.',
      ),
  })
  .refine((body) => (body.scheme === 'header') === (body.headerName !== undefined), {
    message: '`headerName` goes with `scheme: header`, and only with it',
    path: ['headerName'],
  })
  .refine((body) => body.scheme !== 'basic' || body.secret.includes(':'), {
    message: 'a basic credential is `user:password`',
    path: ['secret'],
  });
export type PutHttpCredentialBody = z.output<typeof putHttpCredentialSchema>;

/** A credential as a call sends it: one header, and the texts to blank out of what comes back. */
export interface CredentialHeader {
  name: string;
  value: string;
  /** The secret as it may be echoed back (the raw secret, and the header's value). */
  secrets: string[];
}

/** A credential a tool names, as a call finds it: the header to send, or why nothing may be sent. */
export type CredentialForCall = { ok: true; header: CredentialHeader } | { ok: false; reason: 'missing' | 'refused'; message: string };

/**
 * Why credential `name` may not be sent to `url`, or null when it may: it is sent only to an origin
 * given when it was stored. One stored before credentials had origins (`origins` null) goes nowhere
 * until it is stored again; `origins` undefined means the user has no such credential.
 */
export function credentialRefusal(name: string, origins: readonly string[] | null | undefined, url: string): string | null {
  if (origins === undefined) return `you have no credential "${name}"`;
  if (origins === null)
    return `the credential "${name}" has no origins yet: store it again with its origins and its secret (PUT /http-credentials/${name})`;
  const origin = new URL(url).origin;
  return origins.includes(origin) ? null : `the credential "${name}" is only sent to ${origins.join(', ')}, not to ${origin}`;
}

/**
 * A user's credentials for agentflow HTTP tools: sealed with the deployment's OAuth key, bound to
 * their owner and name (the sealed value opens only as that user's credential of that name), never
 * answered by the API nor written to logs. A flow's HTTP tool names one in `credential`.
 */
export class HttpCredentials {
  constructor(private readonly deps: { repos: Pick<Repositories, 'httpCredentials'>; box: SecretBox }) {}

  private static context(userId: string, name: string): string {
    return `http-credential:${userId}:${name}`;
  }

  /**
   * Creates or replaces the credential; `created` is false for a replacement. The secret is always
   * given again, so nobody who cannot show it can point it at other origins.
   */
  async put(userId: string, name: string, body: PutHttpCredentialBody): Promise<{ row: HttpCredentialRow; created: boolean }> {
    const repo = this.deps.repos.httpCredentials;
    if (!(await repo.find(userId, name)) && (await repo.count(userId)) >= MAX_HTTP_CREDENTIALS)
      throw new AppError(409, 'too_many_credentials', `A user keeps at most ${MAX_HTTP_CREDENTIALS} credentials; delete one first`);
    return repo.put({
      userId,
      name,
      scheme: body.scheme,
      headerName: body.headerName ?? null,
      sealedValue: this.deps.box.seal(body.secret, HttpCredentials.context(userId, name)),
      origins: [...new Set(body.origins)],
    });
  }

  list(userId: string) {
    return this.deps.repos.httpCredentials.list(userId);
  }

  async remove(userId: string, name: string): Promise<void> {
    if (!(await this.deps.repos.httpCredentials.remove(userId, name))) throw notFound('Credential');
  }

  /** For each `{credential, url}` a definition's tools pair, why it is refused ({@link credentialRefusal}), or null. */
  async refusals(userId: string, uses: ReadonlyArray<{ credential: string; url: string }>): Promise<Array<string | null>> {
    const origins = await this.deps.repos.httpCredentials.originsOf(userId, [...new Set(uses.map((use) => use.credential))]);
    return uses.map((use) => credentialRefusal(use.credential, origins.get(use.credential), use.url));
  }

  /**
   * The header the owner's credential `name` is sent as to `url`: refused (nothing opened) when
   * `url` is outside the credential's origins, missing when it was deleted since.
   */
  async forCall(userId: string, name: string, url: string): Promise<CredentialForCall> {
    const row = await this.deps.repos.httpCredentials.find(userId, name);
    if (!row) return { ok: false, reason: 'missing', message: `the credential "${name}" no longer exists` };
    const refused = credentialRefusal(name, row.origins, url);
    if (refused) return { ok: false, reason: 'refused', message: refused };
    return { ok: true, header: this.header(row) };
  }

  private header(row: HttpCredentialRow): CredentialHeader {
    const { userId, name } = row;
    const { plaintext } = this.deps.box.open(row.sealedValue, HttpCredentials.context(userId, name));
    if (row.scheme === 'header') return { name: row.headerName!, value: plaintext, secrets: [plaintext] };
    const value = row.scheme === 'bearer' ? `Bearer ${plaintext}` : `Basic ${Buffer.from(plaintext, 'utf8').toString('base64')}`;
    return { name: 'authorization', value, secrets: [value, plaintext, value.slice(value.indexOf(' ') + 1)] };
  }
}

/** `text` with every secret blanked out (a service that echoes the request must not hand it to the model). */
export function withoutSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) if (secret) out = out.split(secret).join('[credential]');
  return out;
}
