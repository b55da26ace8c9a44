import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { isPrivateAddress, publicOnlyLookup } from '../lib/private-address';
import type { Repositories } from '../models';
import type { PsaConnectionRow } from '../models/schema';
import type { SecretBox } from './secret-box';

/** The operator's PSA settings (PSA_*). */
export interface PsaSettings {
  /** A call that has not answered in full by then fails (and the push is retried). */
  timeoutMs: number;
  /** Origins that may be plain http and reach loopback and private addresses. */
  privateOrigins: readonly string[];
}

/** How a user signs in to their PSA: a member's public and private keys, or one API key. */
export type PsaCredentials = { publicKey: string; privateKey: string } | { apiKey: string };

export interface PsaConnectionInput {
  provider: 'connectwise';
  /** The REST API's root, e.g. `https://api-na.myconnectwise.net/v4_6_release/apis/3.0`. */
  baseUrl: string;
  companyId: string;
  /** The integration's client id (ConnectWise's `clientId` header), when the PSA wants one. */
  clientId?: string | null;
  /** The PSA member the user's notes are posted as (their identifier there). */
  memberIdentifier?: string | null;
  credentials: PsaCredentials;
}

/** A connection as answered: never its credentials. */
export function toPsaConnectionView(row: PsaConnectionRow) {
  return {
    provider: row.provider,
    baseUrl: row.baseUrl,
    companyId: row.companyId,
    clientId: row.clientId,
    memberIdentifier: row.memberIdentifier,
    authType: row.authType,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}
export type PsaConnectionView = ReturnType<typeof toPsaConnectionView>;

/**
 * A PSA call that did not succeed. `retryable`: the PSA could not be reached, timed out, was busy
 * (429) or failed on its side (5xx), so the same push may work later; otherwise it never will as
 * things are (credentials refused, no such ticket, an address the server may not call).
 */
export class PsaError extends Error {
  constructor(
    readonly code: 'invalid_url' | 'private_address' | 'unreachable' | 'timeout' | 'refused' | 'not_found' | 'rejected' | 'server_error',
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'PsaError';
  }
}

const MAX_RESPONSE_BYTES = 256 * 1024;

/**
 * The user's PSA connection (one per user), its credentials sealed with the server's SecretBox
 * (bound to the user: a row copied to another user does not open), and the push of a session's
 * ticket notes to a ConnectWise-Manage-style REST API: the notes become an internal-analysis,
 * resolution note of the ticket, posted as the user's PSA member when that member exists there.
 */
export class PsaConnections {
  constructor(
    private readonly deps: {
      box: SecretBox;
      repos: Pick<Repositories, 'psa'>;
      settings: PsaSettings;
    },
  ) {}

  /**
   * The API root a user may connect: http(s) only, no credentials or fragment in it, and https on
   * a public host unless the operator listed its origin in PSA_PRIVATE_ORIGINS. A host name is
   * checked again on every call, on the address connected to.
   */
  checkBaseUrl(raw: string): URL {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new PsaError('invalid_url', 'baseUrl is not a URL', false);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new PsaError('invalid_url', 'baseUrl must be an https URL', false);
    if (url.username || url.password) throw new PsaError('invalid_url', 'baseUrl must not carry credentials', false);
    if (url.hash || url.search) throw new PsaError('invalid_url', 'baseUrl must not have a query or fragment', false);
    const allowedPrivate = this.deps.settings.privateOrigins.includes(url.origin);
    if (!allowedPrivate && url.protocol !== 'https:') throw new PsaError('invalid_url', 'baseUrl must be an https URL', false);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (!allowedPrivate && (isIP(host) ? isPrivateAddress(host) : host === 'localhost' || host.endsWith('.localhost')))
      throw new PsaError('private_address', `${url.origin} is a private address; a PSA may not be reached there`, false);
    return url;
  }

  /** Creates or replaces the user's connection (its URL checked first); answers it without credentials. */
  async connect(userId: string, input: PsaConnectionInput): Promise<PsaConnectionView> {
    const url = this.checkBaseUrl(input.baseUrl);
    const row = await this.deps.repos.psa.upsert({
      userId,
      provider: input.provider,
      baseUrl: url.href.replace(/\/+$/, ''),
      companyId: input.companyId,
      clientId: input.clientId ?? null,
      memberIdentifier: input.memberIdentifier ?? null,
      authType: 'apiKey' in input.credentials ? 'api_key' : 'member_keys',
      keyId: this.deps.box.keyId,
      ciphertext: this.deps.box.seal(JSON.stringify(input.credentials), userId),
    });
    return toPsaConnectionView(row);
  }

  async view(userId: string): Promise<PsaConnectionView | null> {
    const row = await this.deps.repos.psa.get(userId);
    return row ? toPsaConnectionView(row) : null;
  }

  async remove(userId: string): Promise<boolean> {
    return this.deps.repos.psa.remove(userId);
  }

  /** Whether the user has a PSA connected. */
  async connected(userId: string): Promise<boolean> {
    return (await this.deps.repos.psa.get(userId)) !== null;
  }

  /**
   * Posts `text` as a note of PSA ticket `ticketId` with the user's connection. The note is posted
   * as the connection's member when the PSA knows that member; otherwise as the API's own member,
   * and `memberMappingWarning` says why. The note is flagged as the ticket's resolution only when
   * `resolution` is true (an escalated session's notes are not). Throws {@link PsaError}; null
   * when no PSA is connected.
   */
  async pushNotes(
    userId: string,
    ticketId: string,
    text: string,
    resolution = true,
  ): Promise<{ memberMappingWarning: string | null } | null> {
    const row = await this.deps.repos.psa.get(userId);
    if (!row) return null;
    const credentials = JSON.parse(this.deps.box.open(row.ciphertext, userId).plaintext) as PsaCredentials;
    const base = this.checkBaseUrl(row.baseUrl);
    const headers: Record<string, string> = {
      authorization:
        'apiKey' in credentials
          ? `Bearer ${credentials.apiKey}`
          : `Basic ${Buffer.from(`${row.companyId}+${credentials.publicKey}:${credentials.privateKey}`).toString('base64')}`,
      accept: 'application/json',
      ...(row.clientId ? { clientId: row.clientId } : {}),
    };

    let member: string | null = null;
    let memberMappingWarning: string | null = null;
    if (!row.memberIdentifier) {
      memberMappingWarning = 'No PSA member is set for your account: the note was posted as the API member';
    } else {
      const conditions = encodeURIComponent(`identifier="${row.memberIdentifier.replace(/"/g, '')}"`);
      const found = await this.call('GET', new URL(`${base.href}/system/members?conditions=${conditions}&fields=id,identifier`), headers);
      const members = parseJson(found.body);
      if (Array.isArray(members) && members.length > 0) member = row.memberIdentifier;
      else memberMappingWarning = `PSA member "${row.memberIdentifier}" was not found: the note was posted as the API member`;
    }

    const note = {
      text,
      detailDescriptionFlag: false,
      internalAnalysisFlag: true,
      resolutionFlag: resolution,
      ...(member ? { member: { identifier: member } } : {}),
    };
    const url = new URL(`${base.href}/service/tickets/${encodeURIComponent(ticketId)}/notes`);
    await this.call('POST', url, { ...headers, 'content-type': 'application/json' }, JSON.stringify(note), ticketId);
    return { memberMappingWarning };
  }

  /** One call: no redirects, a deadline, a capped body, and no private address unless the operator allowed the origin. */
  private call(method: 'GET' | 'POST', url: URL, headers: Record<string, string>, body?: string, ticketId?: string) {
    const { timeoutMs, privateOrigins } = this.deps.settings;
    const mayBePrivate = privateOrigins.includes(url.origin);
    const client = url.protocol === 'https:' ? https : http;
    const deadline = AbortSignal.timeout(timeoutMs);
    return new Promise<{ status: number; body: string }>((resolve, reject) => {
      const fail = (error: unknown) => {
        if (error instanceof PsaError) return reject(error);
        if (deadline.aborted) return reject(new PsaError('timeout', `The PSA did not answer within ${timeoutMs} ms`, true));
        reject(new PsaError('unreachable', `The PSA at ${url.origin} could not be reached`, true));
      };
      const request = client.request(
        url,
        {
          method,
          signal: deadline,
          headers: { ...headers, 'user-agent': 'Switchboard-psa' },
          lookup: mayBePrivate
            ? undefined
            : publicOnlyLookup((hostname) => new PsaError('private_address', `${hostname} resolves to a private address`, false)),
        },
        (response) => {
          const chunks: Buffer[] = [];
          let size = 0;
          response.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size <= MAX_RESPONSE_BYTES) chunks.push(chunk);
          });
          response.on('error', fail);
          response.on('end', () => {
            const status = response.statusCode ?? 0;
            const text = Buffer.concat(chunks).toString('utf8');
            if (status >= 200 && status < 300) return resolve({ status, body: text });
            reject(statusError(status, method, ticketId));
          });
        },
      );
      request.on('error', fail);
      request.end(body);
    });
  }
}

/** What a PSA's error status means for the push (never its body, which might echo what was sent). */
function statusError(status: number, method: string, ticketId?: string): PsaError {
  if (status === 401 || status === 403) return new PsaError('refused', `The PSA refused the credentials (HTTP ${status})`, false);
  if (status === 404)
    return new PsaError(
      'not_found',
      method === 'POST' && ticketId ? `PSA ticket ${ticketId} was not found (HTTP 404)` : 'Not found on the PSA (HTTP 404)',
      false,
    );
  if (status === 429 || status >= 500) return new PsaError('server_error', `The PSA answered HTTP ${status}`, true);
  if (status >= 300 && status < 400)
    return new PsaError('rejected', `The PSA answered with a redirect (HTTP ${status}); use its API's own URL`, false);
  return new PsaError('rejected', `The PSA rejected the note (HTTP ${status})`, false);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}
