import { z } from 'zod';
import { PsaError, type PsaCredentials } from '../../connectors/psa';
import { badRequest, notFound } from '../../lib/errors';
import type { ApiContext } from '../context';
import { psaConnectionResponse } from '../openapi/response-schemas';
import { routesWith } from '../route';

/** The PSA routes' port: the users' PSA connections. */
export type PsaPorts = Pick<ApiContext, 'psa'>;
const route = routesWith<PsaPorts>();
const tags = ['sessions'];

const secret = z.string().min(1).max(500);
const name = z.string().trim().min(1).max(200);

const connectionFields = {
  provider: z.literal('connectwise').describe('A ConnectWise-Manage-style REST API'),
  baseUrl: z.url().max(2_000).describe('The REST API root, e.g. `https://api-na.myconnectwise.net/v4_6_release/apis/3.0`'),
  companyId: name,
  clientId: name.optional().describe("The integration's client id, sent as the `clientId` header"),
  memberIdentifier: name.optional().describe('Your member identifier in the PSA: the notes are posted as that member'),
};

/** `PUT /psa/connection`: where and how to push ticket notes; a member's key pair or an API key, not both. */
export const psaConnectionSchema = z.union([
  z.strictObject({ ...connectionFields, publicKey: secret, privateKey: secret }).describe("A member's public and private keys"),
  z.strictObject({ ...connectionFields, apiKey: secret }).describe('An API key'),
]);

/** A user's PSA: ticket notes of resolved sessions are pushed there. */
export const psaRoutes = [
  route({
    method: 'put',
    path: '/psa/connection',
    operationId: 'connectPsa',
    tags,
    auth: 'bearer',
    summary: 'Connect your PSA (replacing the one connected), where resolved sessions’ ticket notes are pushed',
    description:
      'The credentials are sealed at rest and never answered or logged. `baseUrl` must be https on a public host (an origin the operator ' +
      'listed in PSA_PRIVATE_ORIGINS may be http or private); anything else is 400.',
    body: psaConnectionSchema,
    responses: { 200: { description: 'The connection, without its credentials', schema: psaConnectionResponse } },
    errors: [400],
    handler: async ({ user, body }, ctx) => {
      const credentials: PsaCredentials =
        'apiKey' in body ? { apiKey: body.apiKey } : { publicKey: body.publicKey, privateKey: body.privateKey };
      try {
        const connection = await ctx.psa.connect(user.id, {
          provider: body.provider,
          baseUrl: body.baseUrl,
          companyId: body.companyId,
          clientId: body.clientId ?? null,
          memberIdentifier: body.memberIdentifier ?? null,
          credentials,
        });
        return { connection };
      } catch (error) {
        if (error instanceof PsaError) throw badRequest(error.message, [{ path: 'baseUrl', message: error.message }]);
        throw error;
      }
    },
  }),

  route({
    method: 'get',
    path: '/psa/connection',
    operationId: 'getPsaConnection',
    tags,
    auth: 'bearer',
    summary: 'Your PSA connection, without its credentials',
    responses: { 200: { description: 'The connection', schema: psaConnectionResponse } },
    errors: [404],
    handler: async ({ user }, ctx) => {
      const connection = await ctx.psa.view(user.id);
      if (!connection) throw notFound('PSA connection');
      return { connection };
    },
  }),

  route({
    method: 'delete',
    path: '/psa/connection',
    operationId: 'disconnectPsa',
    tags,
    auth: 'bearer',
    summary: 'Disconnect your PSA (its credentials are deleted)',
    responses: { 204: 'Disconnected' },
    errors: [404],
    handler: async ({ user }, ctx) => {
      if (!(await ctx.psa.remove(user.id))) throw notFound('PSA connection');
    },
  }),
];
