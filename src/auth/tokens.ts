import { createHash, randomBytes } from 'node:crypto';
import { SignJWT, jwtVerify } from 'jose';
import type { Tier } from '../../config';

/** Claims carried by an access token: enough to authorise a request without a database read. */
export interface AccessClaims {
  sub: string;
  email: string;
  name: string;
  tier: Tier;
  role: 'user' | 'admin' | 'service';
  /** The refresh-token family (sign-in session) the token was issued in; logout revokes it (0065). */
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
   * exists or its session was revoked (0065). Absent in unit tests that only sign and verify.
   */
  accept?: (claims: AccessClaims) => Promise<boolean>;
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
  let claims: AccessClaims;
  try {
    const { payload } = await jwtVerify(token, settings.secret, {
      algorithms: [ALGORITHM],
      issuer: settings.issuer,
      audience: settings.audience,
      requiredClaims: ['exp', 'sub'],
    });
    if (typeof payload.sub !== 'string' || typeof payload.email !== 'string' || typeof payload.exp !== 'number') return null;
    if (payload.sid !== undefined && typeof payload.sid !== 'string') return null;
    claims = payload as unknown as AccessClaims;
  } catch {
    return null;
  }
  if (settings.accept && !(await settings.accept(claims))) return null;
  return claims;
}

/** An opaque refresh token; only its SHA-256 is stored. */
export function newRefreshToken(): { token: string; hash: string } {
  const token = randomBytes(32).toString('base64url');
  return { token, hash: hashRefreshToken(token) };
}

export const hashRefreshToken = (token: string) => createHash('sha256').update(token).digest('hex');
