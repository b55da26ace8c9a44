import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';

/** A compact JWS segment: base64url without padding, nothing else (no whitespace, no `+ / =`). */
const SEGMENT = /^[A-Za-z0-9_-]+$/;
/** Claims and headers must be valid UTF-8 (a lone surrogate's bytes are refused, not replaced). */
const UTF8 = new TextDecoder('utf-8', { fatal: true });
/** A surrogate code unit without its pair (a paired one is one code point, not a match). */
const LONE_SURROGATE = /\p{Cs}/u;
/** Far above any token this server issues (~400 characters); a longer one is not read at all. */
const MAX_TOKEN_CHARS = 8_192;

/**
 * The HMAC key of each secret, made once: `createHmac` with raw key bytes imports the key again at
 * every call, which on Node 24 costs about four times the whole MAC of a token. Keyed by the secret
 * array; the bytes are kept and compared so a secret changed in place gets a new key, never a stale one.
 */
const hmacKeys = new WeakMap<Uint8Array, { bytes: Buffer; key: KeyObject }>();

function hmacKeyFor(secret: Uint8Array): KeyObject {
  const cached = hmacKeys.get(secret);
  if (cached && cached.bytes.equals(secret)) return cached.key;
  const bytes = Buffer.from(secret);
  const key = createSecretKey(bytes);
  hmacKeys.set(secret, { bytes, key });
  return key;
}

export interface Hs256Expectations {
  issuer: string;
  audience: string;
}

/**
 * The claims of an HS256 JWT (compact JWS) signed with `secret`, or null. It accepts a subset of
 * what `jose`'s `jwtVerify(token, secret, { algorithms: ['HS256'], issuer, audience,
 * requiredClaims: ['exp', 'sub'] })` accepts (a test checks this against jose on a corpus of forged
 * and malformed tokens) and checks the same things: the MAC (constant-time), `alg` exactly HS256,
 * `iss`, `aud` (a string, or an array that holds it), `exp` in the future, `nbf` (if present) not in
 * the future, `iat` (if present) a number, `sub` present. Stricter where jose is lenient: segments
 * must be canonical base64url, `exp` must be finite, a header with `crit` or `b64` is refused, and
 * so are claims holding a lone surrogate (decision 0215).
 *
 * Why not jose here: its WebCrypto path imports the key at every call; on Node 24 that is
 * ~31 µs of CPU per token against ~6 µs here (`bench/tools/hs256-verify.ts`), on every
 * authenticated request and socket handshake. The MAC is checked before any JSON of
 * the token is parsed. Signing stays with jose (sign-in and refresh only).
 */
export function verifyHs256(
  token: string,
  secret: Uint8Array,
  expected: Hs256Expectations,
  nowSeconds = Math.floor(Date.now() / 1000),
): Record<string, unknown> | null {
  if (typeof token !== 'string' || token.length > MAX_TOKEN_CHARS) return null;
  const first = token.indexOf('.');
  const second = token.indexOf('.', first + 1);
  if (first < 0 || second < 0 || token.indexOf('.', second + 1) >= 0) return null;
  const header = token.slice(0, first);
  const payload = token.slice(first + 1, second);
  const signature = token.slice(second + 1);
  if (!SEGMENT.test(header) || !SEGMENT.test(payload) || !SEGMENT.test(signature)) return null;

  const mac = createHmac('sha256', hmacKeyFor(secret)).update(token.slice(0, second)).digest();
  const given = Buffer.from(signature, 'base64url');
  if (given.length !== mac.length || given.toString('base64url') !== signature || !timingSafeEqual(given, mac)) return null;

  const head = jsonObject(header);
  if (!head || head.alg !== 'HS256' || 'crit' in head || 'b64' in head) return null;
  const claims = jsonObject(payload);
  if (!claims) return null;
  if (claims.iss !== expected.issuer) return null;
  const { aud, exp, nbf, iat } = claims;
  if (!(
    aud === expected.audience ||
    (Array.isArray(aud) && aud.every((each) => typeof each === 'string') && aud.includes(expected.audience))
  ))
    return null;
  if (typeof exp !== 'number' || !Number.isFinite(exp) || exp <= nowSeconds) return null;
  if (nbf !== undefined && (typeof nbf !== 'number' || nbf > nowSeconds)) return null;
  if (iat !== undefined && typeof iat !== 'number') return null;
  if (!Object.hasOwn(claims, 'sub')) return null;
  if (!wellFormed(claims)) return null;
  return claims;
}

/**
 * Whether every string in the claims (keys and values, at any depth) is well-formed UTF-16: a
 * `\ud800` escape is valid JSON but a lone surrogate, which no token this server signs holds and
 * PostgreSQL could not store.
 */
function wellFormed(value: unknown): boolean {
  if (typeof value === 'string') return !LONE_SURROGATE.test(value);
  if (value === null || typeof value !== 'object') return true;
  if (Array.isArray(value)) return value.every(wellFormed);
  for (const [key, each] of Object.entries(value)) if (LONE_SURROGATE.test(key) || !wellFormed(each)) return false;
  return true;
}

/** A segment's JSON when it is a top-level object (not an array, not null), else null. */
function jsonObject(segment: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(UTF8.decode(Buffer.from(segment, 'base64url')));
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
