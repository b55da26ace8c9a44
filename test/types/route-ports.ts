/**
 * Route ports (decision 0149): a handler declared with `routesWith<Ports>()` may reach
 * only its module's port. Each `@ts-expect-error` below fails `npm run typecheck` the day the
 * compiler stops refusing what it marks. Type-only: compiled, never run.
 */
import { z } from 'zod';
import type { ApiContext } from '../../src/http/context';
import { routesWith, type AnyRoute } from '../../src/http/route';
import type { BlockPorts } from '../../src/http/routes/block-routes';
import type { HitlPorts } from '../../src/http/routes/hitl-routes';
import { apiRoutes } from '../../src/http/routes';

const blockRoute = routesWith<BlockPorts>();

export const inPort = blockRoute({
  method: 'get',
  path: '/fixture/:id',
  operationId: 'fixtureInPort',
  auth: 'bearer',
  summary: 'fixture',
  tags: ['fixture'],
  params: { id: { schema: z.uuid() } },
  responses: { 200: 'fixture' },
  handler: async ({ user, params }, ctx) => ({ canvas: await ctx.repos.canvases.findForMember(params.id, user.id) }),
});

export const outsideService = blockRoute({
  method: 'get',
  path: '/fixture',
  operationId: 'fixtureOutsideService',
  auth: 'bearer',
  summary: 'fixture',
  tags: ['fixture'],
  responses: { 200: 'fixture' },
  // @ts-expect-error `chat` is not in the block routes' port
  handler: ({ user }, ctx) => ctx.chat.start(user.id, { message: 'hi' }),
});

export const outsideRepository = blockRoute({
  method: 'get',
  path: '/fixture',
  operationId: 'fixtureOutsideRepository',
  auth: 'bearer',
  summary: 'fixture',
  tags: ['fixture'],
  responses: { 200: 'fixture' },
  // @ts-expect-error the port narrows `repos` to blocks and canvases: `users` is outside it
  handler: ({ user }, ctx) => ctx.repos.users.findById(user.id),
});

export const outsideMethod = blockRoute({
  method: 'delete',
  path: '/fixture/:id',
  operationId: 'fixtureOutsideMethod',
  auth: 'bearer',
  summary: 'fixture',
  tags: ['fixture'],
  params: { id: { schema: z.uuid() } },
  responses: { 204: 'fixture' },
  // @ts-expect-error the port narrows `canvasEvents` to stage and notify: `forget` is outside it
  handler: ({ params }, ctx) => void ctx.canvasEvents.forget(params.id),
});

export const hitlRoute = routesWith<HitlPorts>()({
  method: 'get',
  path: '/fixture',
  operationId: 'fixtureHitl',
  auth: 'bearer',
  summary: 'fixture',
  tags: ['fixture'],
  responses: { 200: 'fixture' },
  // @ts-expect-error the HITL port has no `config`
  handler: (_input, ctx) => ctx.config.env,
});

// Mounting passes the full ApiContext: every declared route's port must accept it...
export const mounted: readonly AnyRoute[] = apiRoutes;
// ...so a port asking for something ApiContext lacks cannot be mounted.
const strayRoute = routesWith<ApiContext & { notAService: string }>()({
  method: 'get',
  path: '/fixture',
  operationId: 'fixtureStray',
  auth: 'bearer',
  summary: 'fixture',
  tags: ['fixture'],
  responses: { 200: 'fixture' },
  handler: (_input, ctx) => ctx.notAService,
});
// @ts-expect-error `notAService` is not in ApiContext
export const strayMounted: AnyRoute = strayRoute;
