import { createHash, randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Tier } from '../../config';
import type { MemberRole } from '../models/schema';
import type { ApiKeys } from './api-keys';
import { verifyHs256 } from './jose-hs256-verifier';

/** Claims carried by an access token: enough to authorise a request without a database read. */
export interface AccessClaims {
  sub: string;
  email: string;
  name: string;
  tier: Tier;
  role: 'user' | 'admin' | 'service';
  /** The refresh-token family (sign-in session) the token was issued in; logout revokes it. */
  sid?: string;
  /** Expiry, seconds since the epoch (always present on a verified token). */
  exp?: number;
}

export interface TokenSettings {
  secret: Uint8Array;
  issuer: string;
  audience: string;
  accessTokenTtlSeconds: number;
  /**
   * Called after the signature and claims check out: answers false when the token's user no longer
   * exists or its session was revoked. It may bring the claims' `tier` up to date from the
   * database. Absent in unit tests that only sign and verify.
   */
  accept?: (claims: AccessClaims) => Promise<boolean>;
  /**
   * `accept` for a request on one canvas: the same answer, plus the user's role there (null when
   * not a member) from the same statement. Without it, `accept` alone is asked.
   */
  acceptOnCanvas?: (claims: AccessClaims, canvasId: string) => Promise<{ stands: boolean; role: MemberRole | null }>;
  /**
   * API keys (`sb_live_…`), accepted wherever a bearer token is: HTTP requests and socket
   * handshakes. Absent: only access tokens authenticate.
   */
  apiKeys?: Pick<ApiKeys, 'authenticate'>;
}

const ALGORITHM = 'HS256';

export async function signAccessToken(settings: TokenSettings, claims: AccessClaims): Promise<string> {
  const { sub, exp: _exp, ...rest } = claims;
  return new SignJWT({ ...rest })
    .setProtectedHeader({ alg: ALGORITHM, typ: 'JWT' })
    .setSubject(sub)
    .setIssuer(settings.issuer)
    .setAudience(settings.audience)
    .setIssuedAt()
    .setExpirationTime(`${settings.accessTokenTtlSeconds}s`)
    .sign(settings.secret);
}

/**
 * Verifies signature, algorithm, issuer, audience and expiry — a token without `exp` is refused,
 * it would otherwise be valid forever — then asks `settings.accept` whether its user and session
 * still stand. Returns null for any bad token; errors of `accept` (database down) propagate, so an
 * outage answers 5xx rather than signing everyone out.
 */
export async function verifyAccessToken(settings: TokenSettings, token: string): Promise<AccessClaims | null> {
  const claims = await verifySignature(settings, token);
  if (!claims) return null;
  if (settings.accept && !(await settings.accept(claims))) return null;
  return claims;
}

/**
 * `verifyAccessToken` for a request on canvas `canvasId`: also the caller's role there, read with
 * the session check in one statement (`acceptOnCanvas`); `role` is undefined when the settings
 * cannot tell it (the caller then reads it itself).
 */
export async function verifyAccessTokenOnCanvas(
  settings: TokenSettings,
  token: string,
  canvasId: string,
): Promise<{ claims: AccessClaims; role?: MemberRole | null } | null> {
  if (!settings.acceptOnCanvas) {
    const claims = await verifyAccessToken(settings, token);
    return claims && { claims };
  }
  const claims = await verifySignature(settings, token);
  if (!claims) return null;
  const { stands, role } = await settings.acceptOnCanvas(claims, canvasId);
  return stands ? { claims, role } : null;
}

/** Signature, algorithm, issuer, audience, expiry and the claims' types; null for any bad token. */
async function verifySignature(settings: TokenSettings, token: string): Promise<AccessClaims | null> {
  const payload = await verifyHs256(token, settings.secret, { issuer: settings.issuer, audience: settings.audience });
  if (!payload) return null;
  if (typeof payload.sub !== 'string' || typeof payload.email !== 'string' || typeof payload.exp !== 'number') return null;
  if (payload.sid !== undefined && typeof payload.sid !== 'string') return null;
  return payload as unknown as AccessClaims;
}

/** An opaque refresh token; only its SHA-256 is stored. */
export function newRefreshToken(): { token: string; hash: string } {
  const token = randomBytes(32).toString('base64url');
  return { token, hash: hashRefreshToken(token) };
}

export const hashRefreshToken = (token: string) => createHash('sha256').update(token).digest('hex');

/** The client a refresh token is issued to: its user agent and address (`req.ip`). */
export interface RefreshClient {
  userAgent?: string;
  ip: string;
}

/**
 * What binds a refresh token to its client: SHA-256 of the address and the user agent. A reload of
 * the same page matches it; a copy of the token used from elsewhere does not.
 */
export const hashRefreshClient = (client: RefreshClient) =>
  createHash('sha256')
    .update(`${client.ip}\n${client.userAgent ?? ''}`)
    .digest('hex');
