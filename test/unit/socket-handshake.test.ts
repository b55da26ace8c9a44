import { signAccessToken, type TokenSettings } from '../../src/auth/tokens';
import { handshakeClaims } from '../../src/realtime/socket-auth';

const settings: TokenSettings = {
  secret: new TextEncoder().encode('unit-secret-unit-secret-unit-secret-0123456789'),
  issuer: 'switchboard',
  audience: 'switchboard-api',
  accessTokenTtlSeconds: 60,
};
const claims = { sub: 'user-1', email: 'ada@example.com', name: 'Ada', tier: 'free', role: 'user', sid: 'session-1' } as const;

describe('handshakeClaims', () => {
  test('given a valid token, when read, the claims come back and the handshake keeps every field but the token', async () => {
    const handshake = {
      auth: { token: await signAccessToken(settings, claims), deviceId: 'laptop', pid: 'p', offset: '1-0' },
      address: '::1',
    };

    const read = await handshakeClaims(settings, handshake);

    expect(read).toMatchObject({ sub: 'user-1', sid: 'session-1', exp: expect.any(Number) });
    expect(handshake.auth).toEqual({ deviceId: 'laptop', pid: 'p', offset: '1-0' });
  });

  test.each([
    ['a forged token', { token: 'eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl' }],
    ['an oversized token', { token: 'x'.repeat(5000) }],
    ['a token that is not a string', { token: { nested: true } }],
    ['no token', {}],
  ])('given %s, when read, the answer is null and the handshake holds no token', async (_name, auth) => {
    const handshake: { auth: Record<string, unknown>; address: string } = { auth, address: '::1' };

    expect(await handshakeClaims(settings, handshake)).toBeNull();
    expect(handshake.auth).not.toHaveProperty('token');
  });
});
