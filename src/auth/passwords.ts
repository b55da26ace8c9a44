import { hash, verify } from '@node-rs/argon2';

/**
 * argon2id (OWASP's first choice) via a Rust binding that hashes on the libuv thread pool, so a
 * login never blocks the event loop. Parameters are the library's defaults (19 MiB, t=2).
 */
export const hashPassword = (password: string) => hash(password);

/** A precomputed hash so unknown emails cost as much as wrong passwords (no user enumeration by timing). */
let dummyHash: Promise<string> | undefined;

export async function verifyPassword(passwordHash: string | null, password: string): Promise<boolean> {
  if (!passwordHash) {
    dummyHash ??= hash('switchboard-timing-equaliser');
    await verify(await dummyHash, password).catch(() => false);
    return false;
  }
  return verify(passwordHash, password).catch(() => false);
}
