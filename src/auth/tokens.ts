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
}

export interface TokenSettings {
  secret: Uint8Array;
  issuer: string;
  audience: string;
  accessTokenTtlSeconds: number;
}

const ALGORITHM = 'HS256';

export async function signAccessToken(settings: TokenSettings, claims: AccessClaims): Promise<string> {
  const { sub, ...rest } = claims;
  return new SignJWT({ ...rest })
    .setProtectedHeader({ alg: ALGORITHM, typ: 'JWT' })
    .setSubject(sub)
    .setIssuer(settings.issuer)
    .setAudience(settings.audience)
    .setIssuedAt()
    .setExpirationTime(`${settings.accessTokenTtlSeconds}s`)
    .sign(settings.secret);
}

/** Verifies signature, algorithm, issuer, audience and expiry; returns null for any bad token. */
export async function verifyAccessToken(settings: TokenSettings, token: string): Promise<AccessClaims | null> {
  try {
    const { payload } = await jwtVerify(token, settings.secret, {
      algorithms: [ALGORITHM],
      issuer: settings.issuer,
      audience: settings.audience,
    });
    if (typeof payload.sub !== 'string' || typeof payload.email !== 'string') return null;
    return payload as unknown as AccessClaims;
  } catch {
    return null;
  }
}

/** An opaque refresh token; only its SHA-256 is stored. */
export function newRefreshToken(): { token: string; hash: string } {
  const token = randomBytes(32).toString('base64url');
  return { token, hash: hashRefreshToken(token) };
}

export const hashRefreshToken = (token: string) => createHash('sha256').update(token).digest('hex');
