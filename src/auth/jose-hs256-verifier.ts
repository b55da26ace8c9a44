import { decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import { countCacheLookup } from '../lib/cache-stats';

/** A compact JWS segment: base64url without padding, nothing else (no whitespace, no `+ / =`). */
const SEGMENT = /^[A-Za-z0-9_-]+$/;
/** A surrogate code unit without its pair (a paired one is one code point, not a match). */
const LONE_SURROGATE = /\p{Cs}/u;
/** Far above any token this server issues (~400 characters); a longer one is not read at all. */
const MAX_TOKEN_CHARS = 8_192;

/** How many verified tokens each secret keeps (about 1 KB each): far more than the clients active at once on a node. */
const VERIFIED_TOKENS_KEPT = 4_096;

/**
 * What is kept per secret: its HMAC key, imported once (given raw bytes, jose imports the key again
 * at every call), and the tokens it verified, by their exact text. A client sends the same access
 * token with every request until it expires, and WebCrypto's HMAC runs on the thread pool: on a
 * busy host the trip there and back delays a request many times longer than the signature takes.
 * A kept token is one whose signature and claims checked out; it is taken again only while it has
 * not expired (nor, with `nbf`, before it is valid), for the same issuer and audience, and whether
 * its session still stands is still the caller's check on every request. Keyed by the secret
 * array; the bytes are kept and compared, so a secret changed in place gets a new key and none of
 * the tokens verified with the old one.
 */
interface SecretState {
  bytes: Uint8Array;
  key: Promise<CryptoKey>;
  verified: Map<string, { payload: JWTPayload; issuer: string; audience: string }>;
}
const secrets = new WeakMap<Uint8Array, SecretState>();

function stateFor(secret: Uint8Array): SecretState {
  const cached = secrets.get(secret);
  if (cached && sameBytes(cached.bytes, secret)) return cached;
  const bytes = Uint8Array.from(secret);
  const key = crypto.subtle.importKey('raw', bytes, { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
  const state: SecretState = { bytes, key, verified: new Map() };
  secrets.set(secret, state);
  return state;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** A kept token's claims (a copy: callers may update theirs), or undefined when it is not kept or no longer valid. */
function keptClaims(state: SecretState, token: string, expected: Hs256Expectations, nowSeconds: number): JWTPayload | undefined {
  const kept = state.verified.get(token);
  if (!kept || kept.issuer !== expected.issuer || kept.audience !== expected.audience) return undefined;
  const { exp, nbf } = kept.payload;
  if (!(exp! > nowSeconds) || (nbf !== undefined && nbf > nowSeconds)) {
    state.verified.delete(token);
    return undefined;
  }
  return { ...kept.payload };
}

function keep(state: SecretState, token: string, payload: JWTPayload, expected: Hs256Expectations): void {
  if (state.verified.size >= VERIFIED_TOKENS_KEPT) state.verified.delete(state.verified.keys().next().value!);
  state.verified.set(token, { payload: { ...payload }, issuer: expected.issuer, audience: expected.audience });
}

export interface Hs256Expectations {
  issuer: string;
  audience: string;
}

/**
 * The claims of an HS256 JWT (compact JWS) signed with `secret`, or null. jose's `jwtVerify` checks
 * the MAC, `alg` exactly HS256, `iss`, `aud` (a string, or an array that holds it), `exp` in the
 * future, `nbf` (if present) not in the future, `iat` (if present) a number and `sub` present. Around
 * it, what jose lets through is refused: a token longer than any this server issues (not read at
 * all), segments that are not canonical base64url (padding, whitespace, the standard alphabet,
 * spare bits in the last character), a `b64` header, an `exp` that is not finite (`1e999`), and
 * claims holding a lone surrogate, which no token this server signs holds and PostgreSQL could not
 * store.
 */
export async function verifyHs256(
  token: string,
  secret: Uint8Array,
  expected: Hs256Expectations,
  nowSeconds = Math.floor(Date.now() / 1000),
): Promise<JWTPayload | null> {
  if (typeof token !== 'string' || token.length > MAX_TOKEN_CHARS) return null;
  const state = stateFor(secret);
  const kept = keptClaims(state, token, expected, nowSeconds);
  countCacheLookup('access_tokens', kept !== undefined);
  if (kept) return kept;
  const segments = token.split('.');
  if (segments.length !== 3 || !segments.every(canonicalSegment)) return null;
  let payload: JWTPayload;
  try {
    if ('b64' in decodeProtectedHeader(token)) return null;
    ({ payload } = await jwtVerify(token, await state.key, {
      algorithms: ['HS256'],
      issuer: expected.issuer,
      audience: expected.audience,
      requiredClaims: ['exp', 'sub'],
      currentDate: new Date(nowSeconds * 1000),
    }));
  } catch {
    return null;
  }
  if (!Number.isFinite(payload.exp) || !wellFormed(payload)) return null;
  keep(state, token, payload, expected);
  return payload;
}

/** A segment is base64url with no padding and no spare bits: decoding and encoding it again gives it back. */
function canonicalSegment(segment: string): boolean {
  return SEGMENT.test(segment) && Buffer.from(segment, 'base64url').toString('base64url') === segment;
}

/** Whether every string in the claims (keys and values, at any depth) is well-formed UTF-16. */
function wellFormed(value: unknown): boolean {
  if (typeof value === 'string') return !LONE_SURROGATE.test(value);
  if (value === null || typeof value !== 'object') return true;
  if (Array.isArray(value)) return value.every(wellFormed);
  for (const [key, each] of Object.entries(value)) if (LONE_SURROGATE.test(key) || !wellFormed(each)) return false;
  return true;
}
