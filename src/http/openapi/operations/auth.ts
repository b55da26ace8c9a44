import { loginSchema, refreshSchema, registerSchema } from '../../../schemas/api';
import type { ApiOperation } from '../registry';
import { authSessionResponse, meResponse } from '../response-schemas';

/** `auth-routes.ts`. */
export const authOperations: ApiOperation[] = [
  {
    method: 'post', path: '/auth/register', operationId: 'register', tags: ['auth'], auth: 'public',
    summary: 'Create an account and sign in',
    body: registerSchema,
    responses: { 201: { description: 'The new user and a token pair', schema: authSessionResponse } },
    errors: [409, 429],
  },
  {
    method: 'post', path: '/auth/login', operationId: 'login', tags: ['auth'], auth: 'public',
    summary: 'Sign in with email and password',
    body: loginSchema,
    responses: { 200: { description: 'The user and a token pair', schema: authSessionResponse } },
    errors: [401, 429],
  },
  {
    method: 'post', path: '/auth/refresh', operationId: 'refreshTokens', tags: ['auth'], auth: 'public',
    summary: 'Exchange a refresh token for a new pair',
    description: 'Refresh tokens rotate: each is single use, and presenting a used one revokes its whole family.',
    body: refreshSchema,
    responses: { 200: { description: 'The user and a new token pair', schema: authSessionResponse } },
    errors: [401],
  },
  {
    method: 'post', path: '/auth/logout', operationId: 'logout', tags: ['auth'], auth: 'public',
    summary: 'Sign out a session',
    description:
      'Revokes the refresh-token family of the given token: its refresh tokens and the access tokens issued in it stop working, and its open sockets are disconnected. An unknown token is accepted silently.',
    body: refreshSchema,
    responses: { 204: 'Signed out' },
  },
  {
    method: 'get', path: '/me', operationId: 'getMe', tags: ['auth'], auth: 'bearer',
    summary: 'The caller, with their tier limits',
    responses: { 200: { description: 'The user', schema: meResponse } },
    errors: [404],
  },
];
