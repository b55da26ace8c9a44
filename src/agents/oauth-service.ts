import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { RedisClient } from '../lib/redis';
import { SignJWT, jwtVerify } from 'jose';
import type { Config } from '../../config';
import { authorizeUrl, exchangeCode, refreshTokens } from '../connectors/oauth-clients';
import { ConnectorError, ProviderNotConfiguredError, ReauthRequiredError, type Provider } from '../connectors/types';
import { AppError, badRequest, notFound } from '../lib/errors';
import type { Logger } from '../lib/logger';
import { describeRedacted } from '../lib/redact-error';
import type { Repositories } from '../models';
import type { CredentialVault } from './credentials';
import { redisKeys } from '../lib/redis-keys';

const STATE_AUDIENCE = 'switchboard-oauth-state';
const STATE_TTL_SECONDS = 600;

const sha256 = (text: string) => createHash('sha256').update(text).digest('base64url');
const safeEqual = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

/** The cookie that binds one authorization flow to the browser that started it (one per flow, so two tabs can connect two agents). */
export const oauthBindingCookie = (jti: string) => `sb_oauth_${jti.replace(/-/g, '').slice(0, 16)}`;

export const notConfigured = (error: ProviderNotConfiguredError) => new AppError(503, 'provider_not_configured', error.message);
export const reauthRequired = (provider: string) =>
  new AppError(
    409,
    'reauth_required',
    `The ${provider} connection was revoked or expired; reconnect through /api/v1/oauth/${provider}/authorize`,
  );

/**
 * The OAuth authorization-code flow. `authorize` hands out the
 * provider's consent URL with a `state` that is a signed, expiring JWT bound to the user, the
 * provider and (optionally) the cloud agent to connect; the `callback` accepts each state once
 * (a Redis SET NX on its nonce), trades the code for tokens, stores them sealed, and attaches the
 * credential to the agent. The browser never sees a token: the callback answers with ids only.
 */
/** How clients read a provider in a fixed error message (never the provider's own words). */
const PROVIDER_NAMES: Record<Provider, string> = { gmail: 'Google', outlook: 'Microsoft', teams: 'Microsoft' };

/** An OAuth `error` code as RFC 6749 spells them (`access_denied`), else `other`: query text is never logged as it is. */
const oauthErrorCode = (value: string) => (/^[a-z_]{1,40}$/.test(value) ? value : 'other');

/** The HTTP status the provider's token endpoint answered, for the log. */
const providerStatus = (error: unknown) => (error instanceof ConnectorError ? error.status : undefined);

export class OAuthService {
  constructor(
    private readonly deps: {
      config: Config;
      repos: Repositories;
      redis: RedisClient;
      vault: CredentialVault;
      secret: Uint8Array;
      logger: Logger;
    },
  ) {}

  private redirectUri(provider: Provider): string {
    return `${this.deps.config.oauth.publicUrl}/api/v1/oauth/${provider}/callback`;
  }

  /**
   * The consent URL and the browser binding: `binding` goes into an HttpOnly cookie named
   * `cookieName` in the browser that asked; the state carries only its hash, and the callback
   * accepts the state only from a browser that presents the binding.
   */
  async authorize(
    userId: string,
    provider: Provider,
    agentId?: string,
  ): Promise<{ url: string; state: string; expiresAt: string; binding: { cookieName: string; value: string; maxAgeSeconds: number } }> {
    // A Teams agent that reads channels asks for the channel scopes too; the state carries that to the code exchange.
    let channels = false;
    if (agentId) {
      const agent = await this.deps.repos.agents.get('cloud', userId, agentId);
      if (!agent) throw notFound('Agent');
      if (agent.provider !== provider) throw badRequest(`Agent ${agentId} is a ${agent.provider} agent, not ${provider}`);
      channels = provider === 'teams' && agent.filterConfig?.channels === true;
    }
    const expiresAt = new Date(Date.now() + STATE_TTL_SECONDS * 1_000);
    const jti = randomUUID();
    const binding = randomBytes(32).toString('base64url');
    const state = await new SignJWT({ provider, bh: sha256(binding), ...(agentId ? { agentId } : {}), ...(channels ? { ch: true } : {}) })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(userId)
      .setAudience(STATE_AUDIENCE)
      .setJti(jti)
      .setIssuedAt()
      .setExpirationTime(Math.floor(expiresAt.getTime() / 1_000))
      .sign(this.deps.secret);
    try {
      const url = authorizeUrl(provider, { settings: this.deps.config.oauth, state, redirectUri: this.redirectUri(provider), channels });
      return {
        url,
        state,
        expiresAt: expiresAt.toISOString(),
        binding: { cookieName: oauthBindingCookie(jti), value: binding, maxAgeSeconds: STATE_TTL_SECONDS },
      };
    } catch (error) {
      if (error instanceof ProviderNotConfiguredError) throw notConfigured(error);
      throw error;
    }
  }

  /**
   * Completes a flow. `cookies` are the browser's: the state is accepted only with the binding
   * cookie its `authorize` set, so a consent URL opened in another browser (a victim lured to an
   * attacker's URL) connects nothing.
   */
  async callback(
    provider: Provider,
    query: { code?: string; state?: string; error?: string },
    cookies: Record<string, string> = {},
  ): Promise<{ credentialId: string; provider: Provider; agentId: string | null; bindingCookie: string }> {
    if (query.error) {
      // The query is anyone's to write: only a well-formed OAuth error code reaches the log, and none reaches the client.
      this.deps.logger.info({ provider, reason: oauthErrorCode(query.error) }, 'oauth consent not given');
      throw new AppError(400, 'oauth_denied', 'The provider did not grant access: the account was not connected');
    }
    if (!query.code || !query.state) throw badRequest('The callback needs code and state');
    const claims = await this.verifyState(query.state, provider);
    const binding = cookies[oauthBindingCookie(claims.jti)];
    if (!binding || !claims.bh || !safeEqual(sha256(binding), claims.bh)) {
      throw new AppError(400, 'invalid_state', 'This authorization was started in another browser; start it again from this one');
    }
    // One use per state: a replayed callback URL connects nothing.
    const fresh = await this.deps.redis.set(
      redisKeys(this.deps.config.redis.keyPrefix).oauthState(claims.jti),
      '1',
      'EX',
      STATE_TTL_SECONDS,
      'NX',
    );
    if (fresh !== 'OK') throw new AppError(400, 'invalid_state', 'This authorization was already used; start again');
    let tokens;
    try {
      tokens = await exchangeCode(provider, {
        settings: this.deps.config.oauth,
        code: query.code,
        redirectUri: this.redirectUri(provider),
        channels: claims.ch === true,
      });
    } catch (error) {
      if (error instanceof ProviderNotConfiguredError) throw notConfigured(error);
      if (error instanceof ReauthRequiredError)
        throw new AppError(400, 'invalid_grant', 'The authorization code was refused by the provider; start again');
      this.deps.logger.warn({ provider, cause: describeRedacted(error), status: providerStatus(error) }, 'oauth code exchange failed');
      throw new AppError(502, 'provider_unavailable', `${PROVIDER_NAMES[provider]} did not complete the sign-in; please try again later`);
    }
    const credentialId = await this.deps.vault.store(claims.sub, provider, tokens);
    let agentId: string | null = null;
    if (claims.agentId && (await this.deps.repos.agents.attachCredential(claims.sub, claims.agentId, credentialId, provider)))
      agentId = claims.agentId;
    this.deps.logger.info({ userId: claims.sub, provider, credentialId, agentId }, 'oauth account connected');
    return { credentialId, provider, agentId, bindingCookie: oauthBindingCookie(claims.jti) };
  }

  /**
   * Refreshes a credential's access token now (the workers also refresh on their own when a token
   * expires). `invalid_grant` marks the agents using it `reauth_required` and answers 409.
   */
  async refresh(
    userId: string,
    provider: Provider,
    target: { credentialId?: string; agentId?: string },
  ): Promise<{ credentialId: string; expiresAt: string | null }> {
    let credentialId = target.credentialId;
    if (target.agentId) {
      const agent = await this.deps.repos.agents.get('cloud', userId, target.agentId);
      if (!agent || agent.provider !== provider) throw notFound('Agent');
      credentialId = agent.credentialId ?? undefined;
      if (!credentialId) throw new AppError(409, 'not_connected', `Agent ${agent.id} has no ${provider} account connected`);
    }
    if (!credentialId) {
      credentialId = (await this.deps.repos.agents.latestCredential(userId, provider))?.id;
      if (!credentialId) throw notFound('Credential');
    }
    const stored = await this.deps.vault.load(credentialId, userId);
    if (!stored || stored.provider !== provider) throw notFound('Credential');
    if (!stored.tokens.refreshToken) throw reauthRequired(provider);
    try {
      const tokens = await refreshTokens(provider, {
        settings: this.deps.config.oauth,
        refreshToken: stored.tokens.refreshToken,
        granted: stored.tokens.scope,
      });
      await this.deps.vault.save(credentialId, tokens);
      return { credentialId, expiresAt: tokens.expiresAt ? new Date(tokens.expiresAt).toISOString() : null };
    } catch (error) {
      if (error instanceof ProviderNotConfiguredError) throw notConfigured(error);
      if (error instanceof ReauthRequiredError) {
        await this.deps.repos.agents.markCredentialRevoked(credentialId);
        throw reauthRequired(provider);
      }
      this.deps.logger.warn(
        { provider, credentialId, cause: describeRedacted(error), status: providerStatus(error) },
        'oauth token refresh failed',
      );
      throw new AppError(502, 'provider_unavailable', `${PROVIDER_NAMES[provider]} did not refresh the token; please try again later`);
    }
  }

  private async verifyState(
    state: string,
    provider: Provider,
  ): Promise<{ sub: string; jti: string; agentId?: string; bh?: string; ch?: boolean }> {
    try {
      const { payload } = await jwtVerify(state, this.deps.secret, { algorithms: ['HS256'], audience: STATE_AUDIENCE });
      if (payload.provider !== provider || typeof payload.sub !== 'string' || typeof payload.jti !== 'string') throw new Error('mismatch');
      return {
        sub: payload.sub,
        jti: payload.jti,
        agentId: typeof payload.agentId === 'string' ? payload.agentId : undefined,
        bh: typeof payload.bh === 'string' ? payload.bh : undefined,
        ch: payload.ch === true,
      };
    } catch {
      throw new AppError(400, 'invalid_state', 'The authorization state is invalid or expired; start again');
    }
  }
}
