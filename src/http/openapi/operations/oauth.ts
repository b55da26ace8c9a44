import { oauthAuthorizeQuerySchema, oauthCallbackQuerySchema, oauthRefreshSchema } from '../../routes/oauth-routes';
import type { ApiOperation } from '../registry';
import { oauthAuthorizeResponse, oauthCallbackResponse, oauthRefreshResponse } from '../response-schemas';
import { providerParam } from './params';

/** `oauth-routes.ts`: connecting a Gmail, Outlook or Teams account to cloud agents (SPEC §7). */
export const oauthOperations: ApiOperation[] = [
  {
    method: 'get', path: '/oauth/:provider/authorize', operationId: 'oauthAuthorize', tags: ['oauth'], auth: 'bearer',
    summary: "The provider's consent URL, with a signed single-use state",
    description:
      'With `agentId` the credential is attached to that cloud agent on the callback (an unknown agent is 404; one of another provider is 400). ' +
      'A provider without client credentials configured on this server answers 503 `provider_not_configured`.',
    params: providerParam,
    query: oauthAuthorizeQuerySchema,
    responses: { 200: { description: 'Send the browser to `url`', schema: oauthAuthorizeResponse } },
    errors: [404, 503],
  },
  {
    method: 'get', path: '/oauth/:provider/callback', operationId: 'oauthCallback', tags: ['oauth'], auth: 'public',
    summary: 'Where the provider sends the browser back (no Bearer token: the signed `state` names the user)',
    description:
      'Needs `code` and the `state` from authorize (else 400); the state is accepted once and for 10 minutes (400 `invalid_state`). ' +
      'A consent the user declined comes back with `error` (400 `oauth_denied`); a code the provider refuses is 400 `invalid_grant`; ' +
      'a provider that fails to answer is 502 `provider_unavailable`; one not configured here is 503 `provider_not_configured`. ' +
      'Other query parameters the provider adds are ignored. The answer carries ids only, never a token.',
    params: providerParam,
    query: oauthCallbackQuerySchema,
    responses: { 200: { description: 'The account is connected', schema: oauthCallbackResponse } },
    errors: [404, 503],
  },
  {
    method: 'post', path: '/oauth/:provider/refresh', operationId: 'oauthRefresh', tags: ['oauth'], auth: 'bearer',
    summary: "Refresh a credential's access token now",
    description:
      'Names the credential by `credentialId`, or by the cloud agent using it (`agentId`); with neither, the caller\'s latest credential for the provider. ' +
      'No such credential or agent is 404; an agent without a connected account 409 `not_connected`; a refresh the provider refuses marks the agents using it ' +
      '`reauth_required` and answers 409 `reauth_required`; a provider that fails to answer is 502 `provider_unavailable`.',
    params: providerParam,
    body: oauthRefreshSchema,
    bodyOptional: true,
    responses: { 200: { description: 'The new expiry (null when the provider gives none)', schema: oauthRefreshResponse } },
    errors: [404, 409, 503],
  },
];
