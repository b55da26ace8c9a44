import { AppError, notFound } from '../../lib/errors';
import { decodeCursor, idKey, MAX_PAGE_SIZE, pageOf, pageQuerySchema } from '../../lib/pagination';
import { addMemberSchema, createCanvasSchema, updateCanvasSchema } from '../../schemas/api';
import { canvasAccess } from '../middleware/canvas-access';
import {
  auditListResponse,
  canvasListResponse,
  canvasResponse,
  canvasWithMembersResponse,
  memberResponse,
  membersResponse,
} from '../openapi/response-schemas';
import { routesWith } from '../route';
import { canvasIdParam, memberParams } from './params';
import type { ApiContext } from '../context';
import type { Repositories } from '../../models';

/**
 * The canvas routes' port: the canvases, users and audit repositories; `generations` and
 * `canvasEvents` to delete a canvas, and `canvasEvents` to take a removed member out of the room.
 */
export type CanvasPorts = {
  repos: Pick<Repositories, 'canvases' | 'users' | 'audit'>;
  generations: Pick<ApiContext['generations'], 'deleteCanvas'>;
  canvasEvents: Pick<ApiContext['canvasEvents'], 'forget' | 'leaveRoom'>;
};
const route = routesWith<CanvasPorts>();

/** `GET /canvases/:id/audit`: `?limit` 1–200 (default 50), `?cursor`. */
export const auditPageQuerySchema = pageQuerySchema(50);
/** `GET /canvases`: `?limit` 1–200 (default 50), `?cursor`. */
export const canvasesPageQuerySchema = pageQuerySchema(50);
/** `GET /canvases/:id/members`: `?limit` 1–200 (default 200, so most canvases answer whole), `?cursor`. */
export const membersPageQuerySchema = pageQuerySchema(200);

const tags = ['canvases'];

/** Canvases, members and the audit trail, declared once (see `../route.ts`). */
export const canvasRoutes = [
  route({
    method: 'post',
    path: '/canvases',
    operationId: 'createCanvas',
    tags,
    auth: 'bearer',
    summary: 'Create a canvas (the caller becomes its owner)',
    body: createCanvasSchema,
    responses: { 201: { description: 'The canvas', schema: canvasResponse } },
    handler: async ({ user, body }, ctx) => ({ canvas: await ctx.repos.canvases.create(user.id, body.title) }),
  }),

  route({
    method: 'get',
    path: '/canvases',
    operationId: 'listCanvases',
    tags,
    auth: 'bearer',
    summary: 'Canvases the caller is a member of, newest first, in pages',
    description: '`?limit` 1–200 (default 50); pass `nextCursor` as `?cursor` for older canvases (null on the last page).',
    query: canvasesPageQuerySchema,
    responses: { 200: { description: 'One page of canvases', schema: canvasListResponse } },
    errors: [400],
    handler: async ({ user, query }, ctx) => {
      // Newest first, in pages.
      const beforeId = query.cursor ? decodeCursor(query.cursor, idKey) : undefined;
      const page = pageOf(
        await ctx.repos.canvases.listPageForMember(user.id, { limit: query.limit + 1, beforeId }),
        query.limit,
        (canvas) => [canvas.id],
      );
      return { canvases: page.items, nextCursor: page.nextCursor };
    },
  }),

  route({
    method: 'get',
    path: '/canvases/:id',
    operationId: 'getCanvas',
    tags,
    auth: 'bearer',
    summary: 'A canvas and its members (viewer)',
    description:
      'At most 200 members, in the order they joined; `membersNextCursor` (null when that is all) goes as `?cursor` to `GET /canvases/:id/members` for the rest.',
    params: canvasIdParam,
    responses: { 200: { description: 'The canvas and the first page of its members', schema: canvasWithMembersResponse } },
    errors: [404],
    handler: async ({ user, params }, ctx) => {
      const { canvases } = ctx.repos;
      const { canvasId } = await canvasAccess(canvases, user, params.id, 'viewer');
      const canvas = await canvases.findForMember(canvasId, user.id);
      if (!canvas) throw notFound('Canvas');
      // The first page of members: `membersNextCursor` continues at GET /canvases/:id/members.
      const members = pageOf(await canvases.listMembersPage(canvasId, { limit: MAX_PAGE_SIZE + 1 }), MAX_PAGE_SIZE, (member) => [
        member.userId,
      ]);
      return { canvas, members: members.items, membersNextCursor: members.nextCursor };
    },
  }),

  route({
    method: 'patch',
    path: '/canvases/:id',
    operationId: 'updateCanvas',
    tags,
    auth: 'bearer',
    summary: 'Rename a canvas (editor)',
    params: canvasIdParam,
    body: updateCanvasSchema,
    responses: { 200: { description: 'The canvas', schema: canvasResponse } },
    errors: [403, 404],
    handler: async (input, ctx) => {
      const { user, params } = input;
      const { canvasId } = await canvasAccess(ctx.repos.canvases, user, params.id, 'editor');
      await ctx.repos.canvases.rename(canvasId, input.body.title);
      return { canvas: await ctx.repos.canvases.findForMember(canvasId, user.id) };
    },
  }),

  route({
    method: 'delete',
    path: '/canvases/:id',
    operationId: 'deleteCanvas',
    tags,
    auth: 'bearer',
    summary: 'Delete a canvas and its blocks (owner)',
    params: canvasIdParam,
    responses: { 204: 'Deleted' },
    errors: [403, 404],
    handler: async ({ user, params }, ctx) => {
      const { canvasId } = await canvasAccess(ctx.repos.canvases, user, params.id, 'owner');
      await ctx.generations.deleteCanvas(canvasId);
      await ctx.canvasEvents.forget(canvasId);
    },
  }),

  route({
    method: 'post',
    path: '/canvases/:id/members',
    operationId: 'setCanvasMember',
    tags,
    auth: 'bearer',
    summary: 'Add a member or change their role (owner)',
    description: 'The user must already have an account (else 404 `user_not_found`). Owners cannot change their own role.',
    params: canvasIdParam,
    body: addMemberSchema,
    responses: { 201: { description: 'The member', schema: memberResponse } },
    errors: [403, 404],
    handler: async (input, ctx) => {
      const { user, params } = input;
      const { canvases, users, audit } = ctx.repos;
      const { canvasId } = await canvasAccess(canvases, user, params.id, 'owner');
      const body = input.body; // after the access check: 404/403 before 400
      const member = await users.findByEmail(body.email);
      if (!member || member.role === 'service')
        throw new AppError(404, 'user_not_found', 'No user with this email; they must sign up first');
      if (member.id === user.id) throw new AppError(400, 'validation_failed', 'You cannot change your own role');
      await canvases.upsertMember(canvasId, member.id, body.role);
      await audit.write({
        actorId: user.id,
        action: 'canvas.member.set',
        canvasId,
        targetType: 'user',
        targetId: member.id,
        details: { role: body.role },
      });
      return { member: { userId: member.id, name: member.name, email: member.email, role: body.role } };
    },
  }),

  route({
    method: 'delete',
    path: '/canvases/:id/members/:userId',
    operationId: 'removeCanvasMember',
    tags,
    auth: 'bearer',
    summary: 'Remove a member (owner), or leave a canvas (any member, naming yourself)',
    description:
      "The canvas's creator cannot be removed (409 `owner_cannot_be_removed`); someone who is not a member is 404 `member_not_found`. " +
      "The removed member's sockets leave the canvas room at once, on every node.",
    params: memberParams,
    responses: { 204: 'Removed' },
    errors: [403, 404, 409],
    handler: async ({ user, params }, ctx) => {
      const { canvases, audit } = ctx.repos;
      // Leaving needs only membership; removing someone else needs the owner role.
      const leaving = params.userId === user.id;
      const { canvasId } = await canvasAccess(canvases, user, params.id, leaving ? 'viewer' : 'owner');
      const canvas = await canvases.findForMember(canvasId, user.id);
      if (!canvas) throw notFound('Canvas');
      if (params.userId === canvas.ownerId)
        throw new AppError(409, 'owner_cannot_be_removed', "The canvas's creator cannot be removed; delete the canvas instead");
      if (!(await canvases.removeMember(canvasId, params.userId)))
        throw new AppError(404, 'member_not_found', 'This user is not a member of the canvas');
      await audit.write({
        actorId: user.id,
        action: 'canvas.member.removed',
        canvasId,
        targetType: 'user',
        targetId: params.userId,
        details: { left: leaving },
      });
      ctx.canvasEvents.leaveRoom(canvasId, params.userId);
    },
  }),

  route({
    method: 'get',
    path: '/canvases/:id/members',
    operationId: 'listCanvasMembers',
    tags,
    auth: 'bearer',
    summary: "A canvas's members (viewer), in the order they joined (the owner first), in pages",
    description:
      '`?limit` 1–200 (default 200); pass `nextCursor` as `?cursor` for the next members (null on the last page; a foreign cursor is 400 `invalid_cursor`).',
    params: canvasIdParam,
    query: membersPageQuerySchema,
    responses: { 200: { description: 'One page of members', schema: membersResponse } },
    errors: [404],
    handler: async (input, ctx) => {
      const { user, params } = input;
      const { canvasId } = await canvasAccess(ctx.repos.canvases, user, params.id, 'viewer');
      const query = input.query;
      // In the order members joined (the owner first), in pages.
      const afterUserId = query.cursor ? decodeCursor(query.cursor, idKey) : undefined;
      const page = pageOf(
        await ctx.repos.canvases.listMembersPage(canvasId, { limit: query.limit + 1, afterUserId }),
        query.limit,
        (member) => [member.userId],
      );
      return { members: page.items, nextCursor: page.nextCursor };
    },
  }),

  route({
    method: 'get',
    path: '/canvases/:id/audit',
    operationId: 'listCanvasAudit',
    tags,
    auth: 'bearer',
    summary: "A canvas's audit rows (owner), newest first, in pages",
    description: '`?limit` 1–200 (default 50); pass `nextCursor` as `?cursor` for older rows (null on the last page).',
    params: canvasIdParam,
    query: auditPageQuerySchema,
    responses: { 200: { description: 'Audit rows, newest first', schema: auditListResponse } },
    errors: [400, 403, 404],
    handler: async (input, ctx) => {
      const { user, params } = input;
      const { canvasId } = await canvasAccess(ctx.repos.canvases, user, params.id, 'owner');
      const query = input.query;
      // Newest first, in pages: the latest events (e.g. ai.generation.undone) come first.
      const beforeId = query.cursor ? decodeCursor(query.cursor, idKey) : undefined;
      const page = pageOf(await ctx.repos.audit.listPageForCanvas(canvasId, { limit: query.limit + 1, beforeId }), query.limit, (entry) => [
        entry.id,
      ]);
      return { audit: page.items, nextCursor: page.nextCursor };
    },
  }),
];
