import { SecretBox } from '../connectors/secret-box';
import type { OAuthTokens, Provider } from '../connectors/types';
import type { Repositories } from '../models';

/**
 * OAuth token sets at rest: sealed with AES-256-GCM (SecretBox) before they reach the database,
 * opened only in the process that calls the provider. A token set sealed with an old key is
 * re-sealed with the current one the first time it is used (key rotation without a migration).
 * Jobs, logs and API responses carry the credential id, never a token.
 */
export class CredentialVault {
  constructor(
    private readonly box: SecretBox,
    private readonly repos: Repositories,
  ) {}

  async store(userId: string, provider: Provider, tokens: OAuthTokens): Promise<string> {
    const row = await this.repos.agents.insertCredential({
      userId,
      provider,
      keyId: this.box.keyId,
      ciphertext: this.box.seal(JSON.stringify(tokens), userId),
      scope: tokens.scope ?? null,
    });
    return row.id;
  }

  /** The tokens of a credential (owned by `userId` when given); null when there is no such credential. */
  async load(credentialId: string, userId?: string): Promise<{ provider: Provider; tokens: OAuthTokens } | null> {
    const row = await this.repos.agents.getCredential(credentialId, userId);
    if (!row) return null;
    // The owner is authenticated with the ciphertext: a row copied to another user does not open.
    const { plaintext, stale } = this.box.open(row.ciphertext, row.userId);
    const tokens = JSON.parse(plaintext) as OAuthTokens;
    if (stale) await this.save(credentialId, tokens, row.userId);
    return { provider: row.provider, tokens };
  }

  /** Replaces a credential's tokens (after a refresh), sealed with the current key. */
  async save(credentialId: string, tokens: OAuthTokens, userId?: string): Promise<void> {
    const owner = userId ?? (await this.repos.agents.getCredential(credentialId))?.userId;
    if (!owner) return;
    await this.repos.agents.updateCredential(credentialId, {
      keyId: this.box.keyId,
      ciphertext: this.box.seal(JSON.stringify(tokens), owner),
    });
  }
}
