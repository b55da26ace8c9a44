import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SecretBox, SecretBoxError, resolveOAuthEncryptionKey } from '../../src/connectors/secret-box';

const newKey = () => randomBytes(32).toString('base64');
const TOKEN = 'ya29.a0AfB_refresh-me-1//0gRefreshTokenValue';

/** `sealed` with one character of part `index` (0-based, dot-separated) changed. */
function tamper(sealed: string, index: number): string {
  const parts = sealed.split('.');
  const part = parts[index];
  const at = Math.floor(part.length / 2);
  const swapped = part[at] === 'A' ? 'B' : 'A';
  parts[index] = part.slice(0, at) + swapped + part.slice(at + 1);
  return parts.join('.');
}

describe('SecretBox', () => {
  test('given a token, when sealed, the ciphertext holds no part of it and names the key', () => {
    const box = new SecretBox(newKey());

    const sealed = box.seal(TOKEN);

    expect(sealed.split('.')).toHaveLength(5);
    expect(sealed.startsWith(`v1.${box.keyId}.`)).toBe(true);
    expect(SecretBox.keyIdOf(sealed)).toBe(box.keyId);
    for (let i = 0; i + 6 <= TOKEN.length; i += 1) expect(sealed).not.toContain(TOKEN.slice(i, i + 6));
    expect(box.open(sealed)).toEqual({ plaintext: TOKEN, stale: false });
  });

  test('given the same plaintext twice, each seal uses a fresh IV', () => {
    const box = new SecretBox(newKey());

    const [a, b] = [box.seal(TOKEN), box.seal(TOKEN)];

    expect(a).not.toBe(b);
    expect(a.split('.')[2]).not.toBe(b.split('.')[2]);
    expect(Buffer.from(a.split('.')[2], 'base64url')).toHaveLength(12);
  });

  test('the key id is derived from the key and never is the key', () => {
    const key = newKey();
    const box = new SecretBox(key);

    expect(box.keyId).toMatch(/^[0-9a-f]{8}$/);
    expect(new SecretBox(key).keyId).toBe(box.keyId);
    expect(new SecretBox(newKey()).keyId).not.toBe(box.keyId);
    expect(key).not.toContain(box.keyId);
  });

  test.each([
    ['version', 0],
    ['key id', 1],
    ['iv', 2],
    ['ciphertext', 3],
    ['tag', 4],
  ])('given a sealed value with its %s altered, open fails', (_part, index) => {
    const box = new SecretBox(newKey());
    const sealed = box.seal(TOKEN);

    expect(() => box.open(tamper(sealed, index))).toThrow(SecretBoxError);
  });

  test('given a sealed value relabelled with another known key id, open fails', () => {
    const oldKey = newKey();
    const box = new SecretBox(newKey(), [oldKey]);
    const oldId = new SecretBox(oldKey).keyId;
    const parts = box.seal(TOKEN).split('.');

    expect(() => box.open([parts[0], oldId, ...parts.slice(2)].join('.'))).toThrow(/failed authentication/);
  });

  test('given malformed input, open fails with SecretBoxError', () => {
    const box = new SecretBox(newKey());
    const sealed = box.seal(TOKEN);

    for (const bad of ['', 'plain-token', sealed.split('.').slice(0, 4).join('.'), `${sealed}.extra`, sealed.replace('v1.', 'v2.')]) {
      expect(() => box.open(bad)).toThrow(SecretBoxError);
    }
    expect(() => SecretBox.keyIdOf('nope')).toThrow(SecretBoxError);
  });

  test('given a context, the ciphertext only opens with the same context', () => {
    const box = new SecretBox(newKey());
    const sealed = box.seal(TOKEN, 'agent-1');

    expect(box.open(sealed, 'agent-1').plaintext).toBe(TOKEN);
    expect(() => box.open(sealed, 'agent-2')).toThrow(SecretBoxError);
    expect(() => box.open(sealed)).toThrow(SecretBoxError);
  });

  test('given a rotated key, old ciphertexts open as stale and re-seal under the current key', () => {
    const oldKey = newKey();
    const before = new SecretBox(oldKey);
    const sealedBefore = before.seal(TOKEN);

    const after = new SecretBox(newKey(), [oldKey]);
    const opened = after.open(sealedBefore);
    const resealed = after.seal(opened.plaintext);

    expect(opened).toEqual({ plaintext: TOKEN, stale: true });
    expect(SecretBox.keyIdOf(sealedBefore)).toBe(before.keyId);
    expect(SecretBox.keyIdOf(resealed)).toBe(after.keyId);
    expect(after.keyId).not.toBe(before.keyId);
    expect(after.open(resealed)).toEqual({ plaintext: TOKEN, stale: false });
  });

  test('given a ciphertext sealed with a key it does not know, open fails naming the key id only', () => {
    const stranger = new SecretBox(newKey());
    const box = new SecretBox(newKey(), [newKey()]);
    const sealed = stranger.seal(TOKEN);

    expect(() => box.open(sealed)).toThrow(new RegExp(`unknown key id ${stranger.keyId}`));
  });

  test('given a key that is not 32 bytes, the constructor refuses it', () => {
    expect(() => new SecretBox(randomBytes(16).toString('base64'))).toThrow(SecretBoxError);
    expect(() => new SecretBox(newKey(), ['short'])).toThrow(/Old OAuth encryption key #1/);
  });
});

describe('resolveOAuthEncryptionKey', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'sb-oauth-key-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('given a configured key, it is used and nothing is written', () => {
    const key = newKey();

    expect(resolveOAuthEncryptionKey(key, dir)).toBe(key);
    expect(() => statSync(path.join(dir, 'oauth-encryption-key'))).toThrow();
  });

  test('given no key (embedded mode), one is generated once with mode 0600 and reused', () => {
    const dataDir = path.join(dir, 'nested', 'data');

    const first = resolveOAuthEncryptionKey(undefined, dataDir);
    const second = resolveOAuthEncryptionKey(undefined, dataDir);

    const file = path.join(dataDir, 'oauth-encryption-key');
    expect(Buffer.from(first, 'base64')).toHaveLength(32);
    expect(second).toBe(first);
    expect(readFileSync(file, 'utf8').trim()).toBe(first);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const sealed = new SecretBox(first).seal(TOKEN);
    expect(new SecretBox(second).open(sealed).plaintext).toBe(TOKEN);
  });

  test('given a corrupt key file, it fails instead of replacing the key', () => {
    const file = path.join(dir, 'oauth-encryption-key');
    writeFileSync(file, 'not-a-key');

    expect(() => resolveOAuthEncryptionKey(undefined, dir)).toThrow(SecretBoxError);
    expect(readFileSync(file, 'utf8')).toBe('not-a-key');
  });
});
