import { createCipheriv, createDecipheriv, createHash, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;

/** A sealed value that cannot be opened: bad format, unknown key id, or tampered with. */
export class SecretBoxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretBoxError';
  }
}

function decodeKey(base64: string, what: string): Buffer {
  const key = Buffer.from(base64.trim(), 'base64');
  if (key.length !== KEY_BYTES) throw new SecretBoxError(`${what} must be base64 of ${KEY_BYTES} bytes`);
  return key;
}

/** First 8 hex chars of sha256(key): names the key in ciphertexts without revealing it. */
function keyIdFor(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

interface SealedParts {
  keyId: string;
  iv: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
}

function parse(sealed: string): SealedParts {
  const parts = typeof sealed === 'string' ? sealed.split('.') : [];
  if (parts.length !== 5 || parts[0] !== VERSION || !/^[0-9a-f]{8}$/.test(parts[1])) {
    throw new SecretBoxError('Not a sealed secret (expected v1.<keyId>.<iv>.<ciphertext>.<tag>)');
  }
  const [, keyId, iv, ciphertext, tag] = parts;
  if (![iv, ciphertext, tag].every((part) => /^[A-Za-z0-9_-]*$/.test(part))) {
    throw new SecretBoxError('Sealed secret is not base64url');
  }
  const decoded = {
    keyId,
    iv: Buffer.from(iv, 'base64url'),
    ciphertext: Buffer.from(ciphertext, 'base64url'),
    tag: Buffer.from(tag, 'base64url'),
  };
  if (decoded.iv.length !== IV_BYTES || decoded.tag.length !== TAG_BYTES)
    throw new SecretBoxError('Sealed secret has a bad IV or tag length');
  return decoded;
}

/**
 * AES-256-GCM encryption of OAuth tokens at rest. A sealed value reads
 * `v1.<keyId>.<iv>.<ciphertext>.<tag>` (base64url parts): the key id says which key opens it, so
 * the key can be rotated by moving the current key to the old keys and re-sealing on use. The
 * version and key id are authenticated too (GCM additional data), as is the optional `context`
 * (e.g. the agent id), which binds a ciphertext to the row it was written for.
 */
export class SecretBox {
  /** Id of the current key (first 8 hex chars of its sha256); new seals carry it. */
  readonly keyId: string;
  /** Each key as a KeyObject, made once: a raw key is imported again at every cipher (slow on Node 24). */
  private readonly current: KeyObject;
  private readonly keys = new Map<string, KeyObject>();

  /**
   * @param currentKeyBase64 base64 of 32 bytes (OAUTH_ENCRYPTION_KEY)
   * @param oldKeysBase64 earlier keys (OAUTH_ENCRYPTION_OLD_KEYS); they only open, never seal
   */
  constructor(currentKeyBase64: string, oldKeysBase64: string[] = []) {
    const current = decodeKey(currentKeyBase64, 'OAuth encryption key');
    this.keyId = keyIdFor(current);
    this.current = createSecretKey(current);
    const raw = new Map<string, Buffer>([[this.keyId, current]]);
    this.keys.set(this.keyId, this.current);
    oldKeysBase64.forEach((value, index) => {
      const key = decodeKey(value, `Old OAuth encryption key #${index + 1}`);
      const id = keyIdFor(key);
      const known = raw.get(id);
      if (known && !known.equals(key)) throw new SecretBoxError('Two OAuth encryption keys share a key id; generate a new key');
      if (!known) {
        raw.set(id, key);
        this.keys.set(id, createSecretKey(key));
      }
    });
  }

  /** Encrypts with the current key and a fresh random 96-bit IV. */
  seal(plaintext: string, context = ''): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.current, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(additionalData(this.keyId, context));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const tag = cipher.getAuthTag();
    return [VERSION, this.keyId, iv.toString('base64url'), ciphertext.toString('base64url'), tag.toString('base64url')].join('.');
  }

  /**
   * Decrypts a sealed value. `stale` means it was sealed with an old key: the caller should
   * `seal` the plaintext again and store that. Throws SecretBoxError when the value was altered,
   * its key is unknown, or it is not a sealed value.
   */
  open(sealed: string, context = ''): { plaintext: string; stale: boolean } {
    const { keyId, iv, ciphertext, tag } = parse(sealed);
    const key = this.keys.get(keyId);
    if (!key) throw new SecretBoxError(`Sealed with unknown key id ${keyId}; add that key to OAUTH_ENCRYPTION_OLD_KEYS`);
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(additionalData(keyId, context));
      decipher.setAuthTag(tag);
      const plaintext = Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
      return { plaintext, stale: keyId !== this.keyId };
    } catch {
      throw new SecretBoxError('Sealed secret failed authentication (tampered with, or sealed for another context)');
    }
  }

  /** The key id a sealed value names, without decrypting it. */
  static keyIdOf(sealed: string): string {
    return parse(sealed).keyId;
  }
}

function additionalData(keyId: string, context: string): Buffer {
  return Buffer.from(`${VERSION}.${keyId}.${context}`, 'utf8');
}

/**
 * The OAuth token encryption key (base64 of 32 bytes): OAUTH_ENCRYPTION_KEY when set, else one
 * generated once and kept in `<dataDir>/oauth-encryption-key` (mode 0600) so an embedded install
 * can still read its tokens after a restart. A key file that exists but is not a valid key is an
 * error rather than silently replaced: replacing it would make every stored token unreadable.
 */
export function resolveOAuthEncryptionKey(configured: string | undefined, dataDir: string): string {
  if (configured) {
    decodeKey(configured, 'OAUTH_ENCRYPTION_KEY');
    return configured.trim();
  }
  const file = path.resolve(dataDir, 'oauth-encryption-key');
  const readExisting = () => {
    const value = readFileSync(file, 'utf8').trim();
    decodeKey(value, `The key in ${file}`);
    return value;
  };
  try {
    return readExisting();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  mkdirSync(path.dirname(file), { recursive: true });
  const key = randomBytes(KEY_BYTES).toString('base64');
  // Written aside, then linked into place: a process starting at the same moment sees either no
  // file or the whole key, never an empty one, and the first link wins.
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(temp, key, { mode: 0o600, flag: 'wx' });
  try {
    linkSync(temp, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return readExisting();
    throw error;
  } finally {
    unlinkSync(temp);
  }
  return key;
}
