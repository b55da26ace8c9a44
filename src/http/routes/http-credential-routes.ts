import { z } from 'zod';
import { httpCredentialNameParam, MAX_HTTP_CREDENTIALS, putHttpCredentialSchema } from '../../flows/http-credentials';
import { toHttpCredentialView } from '../../models/http-credentials-repository';
import { routesWith } from '../route';
import type { ApiContext } from '../context';

/** The credential routes' port: the sealed credentials. */
export type HttpCredentialPorts = Pick<ApiContext, 'httpCredentials'>;
const route = routesWith<HttpCredentialPorts>();

const nameParam = {
  name: {
    schema: httpCredentialNameParam,
    description: 'The credential name: lowercase letters, digits and _, starting with a letter (1-64). Any other value answers 404.',
    resource: 'Credential',
  },
};
const credentialView = z.object({
  name: z.string(),
  scheme: z.enum(['bearer', 'basic', 'header']),
  headerName: z.string().nullable(),
  origins: z
    .array(z.string())
    .nullable()
    .describe(
      'The only origins the secret is sent to; null for a credential stored before origins existed: sent nowhere until stored again',
    ),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
});
const tags = ['flows'];

/**
 * Secrets agentflow HTTP tools send, referenced by name (`httpTools[].credential`): stored sealed,
 * never answered (only names and schemes are listed), another user's are simply not there.
 */
export const httpCredentialRoutes = [
  route({
    method: 'put',
    path: '/http-credentials/:name',
    operationId: 'putHttpCredential',
    tags,
    auth: 'bearer',
    summary: 'Create or replace a credential for HTTP tools (the secret is stored sealed and never shown again)',
    description:
      'A flow\'s HTTP tool sends it with every call when its definition names it (`httpTools: [{…, credential: "<name>"}]`). ' +
      '`bearer` sends `Authorization: Bearer <secret>`, `basic` the `user:password` secret as `Authorization: Basic`, `header` the secret in `headerName` ' +
      '(not a header Switchboard sets itself: Host, Content-Type, Proxy-Authorization …). The secret is visible ASCII, at most 4,096 characters. ' +
      'It is sent only to the `origins` given here: a flow whose tool naming it has a URL on another origin is 400 on save, and its calls send nothing. ' +
      'Changing the origins is this same request, so it takes the secret again. ' +
      `Whatever the service answers has the secret blanked out before the model reads it. At most ${MAX_HTTP_CREDENTIALS} per user (409 \`too_many_credentials\`).`,
    params: nameParam,
    body: putHttpCredentialSchema,
    bodyExample: { scheme: 'bearer', secret: 'ghp_exampleexampleexample', origins: ['https://api.github.com'] },
    responses: {
      200: { description: 'Replaced', schema: z.object({ credential: credentialView }) },
      201: { description: 'Created', schema: z.object({ credential: credentialView }) },
    },
    errors: [409],
    handler: async ({ user, params, body, res }, ctx) => {
      const { row, created } = await ctx.httpCredentials.put(user.id, params.name, body);
      res.status(created ? 201 : 200).json({ credential: toHttpCredentialView(row) });
    },
  }),

  route({
    method: 'get',
    path: '/http-credentials',
    operationId: 'listHttpCredentials',
    tags,
    auth: 'bearer',
    summary: "The caller's credentials by name (never their secrets)",
    responses: { 200: { description: 'By name', schema: z.object({ credentials: z.array(credentialView) }) } },
    handler: async ({ user }, ctx) => ({ credentials: (await ctx.httpCredentials.list(user.id)).map(toHttpCredentialView) }),
  }),

  route({
    method: 'delete',
    path: '/http-credentials/:name',
    operationId: 'deleteHttpCredential',
    tags,
    auth: 'bearer',
    summary: 'Delete a credential: HTTP tools naming it fail their calls from then on',
    params: nameParam,
    responses: { 204: 'Deleted' },
    errors: [404],
    handler: async ({ user, params }, ctx) => {
      await ctx.httpCredentials.remove(user.id, params.name);
    },
  }),
];
