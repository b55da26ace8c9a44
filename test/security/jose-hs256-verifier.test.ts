import { createHmac } from 'node:crypto';
import { SignJWT, jwtVerify } from 'jose';
import { verifyHs256 } from '../../src/auth/jose-hs256-verifier';
import { signAccessToken } from '../../src/auth/tokens';

/**
 * The access-token check (jose's `jwtVerify` with the key imported once, and strict checks around
 * it) against plain `jwtVerify` with the server's options: on a corpus of valid, forged and
 * malformed tokens it never accepts what jose refuses, accepts every valid token with the same
 * claims, and refuses the malformed ones jose lets through (non-canonical encodings, an infinite
 * exp, lone surrogates).
 */
const SECRET = new TextEncoder().encode('hs256-test-secret-hs256-test-secret-0123456789');
const OTHER = new TextEncoder().encode('another-secret-another-secret-another-0123456789');
const EXPECTED = { issuer: 'switchboard', audience: 'switchboard-api' };
const JOSE_OPTIONS = { algorithms: ['HS256'], ...EXPECTED, requiredClaims: ['exp', 'sub'] };

const now = () => Math.floor(Date.now() / 1000);
const b64 = (value: string | Buffer) => Buffer.from(value).toString('base64url');
const claims = (extra: Record<string, unknown> = {}) => ({
  sub: 'user-1',
  email: 'a@example.test',
  iss: EXPECTED.issuer,
  aud: EXPECTED.audience,
  iat: now(),
  exp: now() + 600,
  ...extra,
});

/** A token signed by hand: any header, any payload text, HMAC with `hash` over the first two segments. */
function forge(header: unknown, payload: unknown, options: { secret?: Uint8Array; hash?: string; rawPayload?: Buffer } = {}): string {
  const signingInput = `${b64(JSON.stringify(header))}.${options.rawPayload ? b64(options.rawPayload) : b64(JSON.stringify(payload))}`;
  return `${signingInput}.${b64(
    createHmac(options.hash ?? 'sha256', options.secret ?? SECRET)
      .update(signingInput)
      .digest(),
  )}`;
}

async function joseAccepts(token: string): Promise<boolean> {
  return jwtVerify(token, SECRET, JOSE_OPTIONS).then(
    () => true,
    () => false,
  );
}

describe('verifyHs256', () => {
  test('valid tokens (jose-signed and hand-signed, aud as a string or an array) are accepted with the claims jose reads', async () => {
    const valid = [
      await new SignJWT({ email: 'a@example.test', name: 'A', tier: 'free', role: 'user', sid: 's-1' })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setSubject('user-1')
        .setIssuer(EXPECTED.issuer)
        .setAudience(EXPECTED.audience)
        .setIssuedAt()
        .setExpirationTime('10m')
        .sign(SECRET),
      forge({ alg: 'HS256' }, claims()),
      forge({ alg: 'HS256', typ: 'JWT', kid: 'k1' }, claims({ aud: ['other', EXPECTED.audience], nbf: now() - 5 })),
      forge({ alg: 'HS256' }, claims({ name: 'Zoë 😀', iat: undefined })),
      // A surrogate pair written as JSON escapes is one well-formed character.
      forge({ alg: 'HS256' }, undefined, {
        rawPayload: Buffer.from(JSON.stringify(claims({ name: 'x' })).replace('"x"', '"\\ud83d\\ude00"')),
      }),
    ];
    for (const token of valid) {
      const ours = await verifyHs256(token, SECRET, EXPECTED);
      expect(ours).not.toBeNull();
      expect(ours).toEqual((await jwtVerify(token, SECRET, JOSE_OPTIONS)).payload);
    }
  });

  test('forged, expired and malformed tokens are refused, and nothing jose refuses is accepted', async () => {
    const good = forge({ alg: 'HS256' }, claims());
    const [header, payload, signature] = good.split('.');
    const flipped = signature[0] === 'A' ? `B${signature.slice(1)}` : `A${signature.slice(1)}`;
    const refusedByBoth: Record<string, string> = {
      'alg none, no signature': `${b64(JSON.stringify({ alg: 'none' }))}.${payload}.`,
      'alg none with the HS256 signature': `${b64(JSON.stringify({ alg: 'none' }))}.${payload}.${signature}`,
      'alg HS512 signed with HS512': forge({ alg: 'HS512' }, claims(), { hash: 'sha512' }),
      'alg HS384 signed with HS384': forge({ alg: 'HS384' }, claims(), { hash: 'sha384' }),
      'alg hs256 (lower case)': forge({ alg: 'hs256' }, claims()),
      'no alg': forge({ typ: 'JWT' }, claims()),
      'header is an array': forge(['HS256'], claims()),
      'another secret': forge({ alg: 'HS256' }, claims(), { secret: OTHER }),
      'payload swapped under the signature': `${header}.${b64(JSON.stringify(claims({ sub: 'admin' })))}.${signature}`,
      'signature flipped': `${header}.${payload}.${flipped}`,
      'signature truncated': `${header}.${payload}.${signature.slice(0, -2)}`,
      'signature empty': `${header}.${payload}.`,
      'wrong issuer': forge({ alg: 'HS256' }, claims({ iss: 'someone-else' })),
      'no issuer': forge({ alg: 'HS256' }, claims({ iss: undefined })),
      'wrong audience': forge({ alg: 'HS256' }, claims({ aud: 'other-api' })),
      'audience array without ours': forge({ alg: 'HS256' }, claims({ aud: ['a', 'b'] })),
      'no audience': forge({ alg: 'HS256' }, claims({ aud: undefined })),
      expired: forge({ alg: 'HS256' }, claims({ exp: now() - 1 })),
      'expires this second': forge({ alg: 'HS256' }, claims({ exp: now() })),
      'exp a string': forge({ alg: 'HS256' }, claims({ exp: String(now() + 600) })),
      'no exp': forge({ alg: 'HS256' }, claims({ exp: undefined })),
      'no sub': forge({ alg: 'HS256' }, claims({ sub: undefined })),
      'nbf in the future': forge({ alg: 'HS256' }, claims({ nbf: now() + 60 })),
      'nbf a string': forge({ alg: 'HS256' }, claims({ nbf: 'soon' })),
      'iat a string': forge({ alg: 'HS256' }, claims({ iat: 'now' })),
      'payload an array': forge({ alg: 'HS256' }, [claims()]),
      'payload null': forge({ alg: 'HS256' }, null),
      'payload not JSON': forge({ alg: 'HS256' }, undefined, { rawPayload: Buffer.from('{"sub":') }),
      'payload invalid UTF-8 (a lone surrogate encoded)': forge({ alg: 'HS256' }, undefined, {
        rawPayload: Buffer.from([
          ...Buffer.from('{"sub":"'),
          0xed,
          0xa0,
          0x80,
          ...Buffer.from(`","exp":${now() + 600},"iss":"switchboard","aud":"switchboard-api"}`),
        ]),
      }),
      'two segments': `${header}.${payload}`,
      'four segments': `${good}.${signature}`,
      empty: '',
      'dots only': '..',
      'crit header': forge({ alg: 'HS256', crit: ['exp'] }, claims()),
      'a jose-signed token with a claim changed': await (async () => {
        const signed = await new SignJWT({ role: 'user' })
          .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
          .setSubject('user-1')
          .setIssuer(EXPECTED.issuer)
          .setAudience(EXPECTED.audience)
          .setExpirationTime('10m')
          .sign(SECRET);
        const [h, p, sig] = signed.split('.');
        const changed = { ...JSON.parse(Buffer.from(p, 'base64url').toString()), role: 'admin' };
        return `${h}.${b64(JSON.stringify(changed))}.${sig}`;
      })(),
      'a jose-signed token that has expired': await new SignJWT({})
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('user-1')
        .setIssuer(EXPECTED.issuer)
        .setAudience(EXPECTED.audience)
        .setExpirationTime(now() - 30)
        .sign(SECRET),
    };
    for (const [name, token] of Object.entries(refusedByBoth)) {
      expect({ name, ours: await verifyHs256(token, SECRET, EXPECTED) }).toEqual({ name, ours: null });
      expect({ name, jose: await joseAccepts(token) }).toEqual({ name, jose: false });
    }

    // Lenient in jose (its base64 decoder skips what does not belong), refused here.
    const refusedHere: Record<string, string> = {
      'padding on the signature': `${good}=`,
      // A token whose base64url holds '-' or '_' (found by varying a claim), in the standard alphabet.
      'standard base64 alphabet': (() => {
        for (let n = 0; ; n += 1) {
          const token = forge({ alg: 'HS256' }, claims({ n }));
          if (/[-_]/.test(token)) return token.replace(/-/g, '+').replace(/_/g, '/');
        }
      })(),
      'whitespace inside': `${header}.${payload}.${signature.slice(0, 10)} ${signature.slice(10)}`,
      'non-canonical last character': `${header}.${payload}.${signature.slice(0, -1)}${String.fromCharCode(signature.charCodeAt(signature.length - 1) + 1)}`,
      'exp infinite (1e999)': (() => {
        const text = JSON.stringify(claims()).replace(/"exp":\d+/, '"exp":1e999');
        const input = `${b64(JSON.stringify({ alg: 'HS256' }))}.${b64(text)}`;
        return `${input}.${b64(createHmac('sha256', SECRET).update(input).digest())}`;
      })(),
      'longer than any token we issue': forge({ alg: 'HS256' }, claims({ pad: 'x'.repeat(9_000) })),
      // Valid JSON and valid UTF-8, but a lone surrogate once parsed: no token we sign holds one.
      'a lone surrogate escaped in a claim': forge({ alg: 'HS256' }, undefined, {
        rawPayload: Buffer.from(JSON.stringify(claims({ name: 'x' })).replace('"x"', '"a\\ud800b"')),
      }),
      'a lone surrogate escaped in a nested claim': forge({ alg: 'HS256' }, undefined, {
        rawPayload: Buffer.from(JSON.stringify(claims({ tags: ['ok', { deep: 'x' }] })).replace('"x"', '"\\udfff"')),
      }),
      'a lone surrogate escaped in a claim name': forge({ alg: 'HS256' }, undefined, {
        rawPayload: Buffer.from(JSON.stringify(claims({ x: 1 })).replace('"x"', '"\\ud800"')),
      }),
    };
    for (const [name, token] of Object.entries(refusedHere)) {
      expect({ name, ours: await verifyHs256(token, SECRET, EXPECTED) }).toEqual({ name, ours: null });
    }
    // The exp check uses the caller's clock: a valid token one second before it expires stands.
    const t1 = now();
    const expiring = forge({ alg: 'HS256' }, claims({ exp: t1 + 1 }));
    expect(await verifyHs256(expiring, SECRET, EXPECTED, t1)).not.toBeNull();
    expect(await verifyHs256(expiring, SECRET, EXPECTED, t1 + 1)).toBeNull();
  });
  test('what the server signs (signAccessToken) verifies with jose and with ours, to the same claims; with another secret, with neither', async () => {
    const settings = { secret: SECRET, ...EXPECTED, accessTokenTtlSeconds: 900 };
    const token = await signAccessToken(settings, {
      sub: 'user-7',
      email: 'z@example.test',
      name: 'Zoë 😀',
      tier: 'pro',
      role: 'admin',
      sid: 'family-1',
    });
    const ours = await verifyHs256(token, SECRET, EXPECTED);
    expect(ours).toMatchObject({ sub: 'user-7', name: 'Zoë 😀', role: 'admin', sid: 'family-1', iss: EXPECTED.issuer });
    expect(ours).toEqual((await jwtVerify(token, SECRET, JOSE_OPTIONS)).payload);
    expect(await verifyHs256(token, OTHER, EXPECTED)).toBeNull();
    await expect(jwtVerify(token, OTHER, JOSE_OPTIONS)).rejects.toThrow();
  });

  test('a token verified once is taken again only while valid: a copy of its claims each time, refused once expired, before its nbf, or for another issuer or audience', async () => {
    // Every clock below is read from one moment: a slow host crossing a second changes nothing.
    const t0 = now();
    const token = forge({ alg: 'HS256', typ: 'JWT' }, claims({ exp: t0 + 60, nbf: t0 - 1, tier: 'free' }));
    const first = await verifyHs256(token, SECRET, EXPECTED);
    expect(first).toMatchObject({ sub: 'user-1', tier: 'free' });
    first!.tier = 'pro';

    expect(await verifyHs256(token, SECRET, EXPECTED)).toMatchObject({ sub: 'user-1', tier: 'free' });
    expect(await verifyHs256(token, SECRET, { ...EXPECTED, audience: 'another-api' })).toBeNull();
    expect(await verifyHs256(token, SECRET, { ...EXPECTED, issuer: 'another-issuer' })).toBeNull();
    expect(await verifyHs256(token, SECRET, EXPECTED, t0 - 2)).toBeNull();
    expect(await verifyHs256(token, SECRET, EXPECTED, t0 + 60)).toBeNull();
    expect(await verifyHs256(token, OTHER, EXPECTED)).toBeNull();
    // Still valid now: refusals for other expectations or clocks did not make it unusable.
    expect(await verifyHs256(token, SECRET, EXPECTED)).toMatchObject({ sub: 'user-1', tier: 'free' });
  });

  test('the key made once per secret follows the secret: bytes changed in place, or another array with the same bytes', async () => {
    const secret = new TextEncoder().encode('hs256-cached-key-secret-0123456789-abcdefghij');
    const token = forge({ alg: 'HS256', typ: 'JWT' }, claims(), { secret });
    expect((await verifyHs256(token, secret, EXPECTED))?.sub).toBe('user-1');
    expect((await verifyHs256(token, Uint8Array.from(secret), EXPECTED))?.sub).toBe('user-1');
    expect(await verifyHs256(token, OTHER, EXPECTED)).toBeNull();
    secret[0] ^= 1;
    expect(await verifyHs256(token, secret, EXPECTED)).toBeNull();
    expect((await verifyHs256(forge({ alg: 'HS256', typ: 'JWT' }, claims(), { secret }), secret, EXPECTED))?.sub).toBe('user-1');
  });
});
