import { addMemberSchema, createCanvasSchema, updateCanvasSchema } from '../../../schemas/api';
import { auditPageQuerySchema, canvasesPageQuerySchema, membersPageQuerySchema } from '../../routes/canvas-routes';
import type { ApiOperation } from '../registry';
import { canvasListResponse, canvasResponse, canvasWithMembersResponse, memberResponse, membersResponse } from '../response-schemas';
import { canvasIdParam } from './params';

/** `canvas-routes.ts`. */
export const canvasOperations: ApiOperation[] = [
  {
    method: 'post', path: '/canvases', operationId: 'createCanvas', tags: ['canvases'], auth: 'bearer',
    summary: 'Create a canvas (the caller becomes its owner)',
    body: createCanvasSchema,
    responses: { 201: { description: 'The canvas', schema: canvasResponse } },
  },
  {
    method: 'get', path: '/canvases', operationId: 'listCanvases', tags: ['canvases'], auth: 'bearer',
    summary: 'Canvases the caller is a member of, newest first, in pages',
    description: '`?limit` 1–200 (default 50); pass `nextCursor` as `?cursor` for older canvases (null on the last page).',
    query: canvasesPageQuerySchema,
    responses: { 200: { description: 'One page of canvases', schema: canvasListResponse } },
    errors: [400],
  },
  {
    method: 'get', path: '/canvases/:id', operationId: 'getCanvas', tags: ['canvases'], auth: 'bearer',
    summary: 'A canvas and its members (viewer)',
    description: 'At most 200 members, in the order they joined; `membersNextCursor` (null when that is all) goes as `?cursor` to `GET /canvases/:id/members` for the rest.',
    params: canvasIdParam,
    responses: { 200: { description: 'The canvas and the first page of its members', schema: canvasWithMembersResponse } },
    errors: [404],
  },
  {
    method: 'patch', path: '/canvases/:id', operationId: 'updateCanvas', tags: ['canvases'], auth: 'bearer',
    summary: 'Rename a canvas (editor)',
    params: canvasIdParam,
    body: updateCanvasSchema,
    responses: { 200: { description: 'The canvas', schema: canvasResponse } },
    errors: [403, 404],
  },
  {
    method: 'delete', path: '/canvases/:id', operationId: 'deleteCanvas', tags: ['canvases'], auth: 'bearer',
    summary: 'Delete a canvas and its blocks (owner)',
    params: canvasIdParam,
    responses: { 204: 'Deleted' },
    errors: [403, 404],
  },
  {
    method: 'post', path: '/canvases/:id/members', operationId: 'setCanvasMember', tags: ['canvases'], auth: 'bearer',
    summary: 'Add a member or change their role (owner)',
    description: 'The user must already have an account (else 404 `user_not_found`). Owners cannot change their own role.',
    params: canvasIdParam,
    body: addMemberSchema,
    responses: { 201: { description: 'The member', schema: memberResponse } },
    errors: [403, 404],
  },
  {
    method: 'get', path: '/canvases/:id/members', operationId: 'listCanvasMembers', tags: ['canvases'], auth: 'bearer',
    summary: "A canvas's members (viewer), in the order they joined (the owner first), in pages",
    description: '`?limit` 1–200 (default 200); pass `nextCursor` as `?cursor` for the next members (null on the last page; a foreign cursor is 400 `invalid_cursor`).',
    params: canvasIdParam,
    query: membersPageQuerySchema,
    responses: { 200: { description: 'One page of members', schema: membersResponse } },
    errors: [404],
  },
  {
    method: 'get', path: '/canvases/:id/audit', operationId: 'listCanvasAudit', tags: ['canvases'], auth: 'bearer',
    summary: "A canvas's audit rows (owner), newest first, in pages",
    description: '`?limit` 1–200 (default 50); pass `nextCursor` as `?cursor` for older rows (null on the last page).',
    params: canvasIdParam,
    query: auditPageQuerySchema,
    responses: { 200: '`{audit: [{action, actorId, targetType, targetId, details, createdAt, …}], nextCursor}`, newest first' },
    errors: [400, 403, 404],
  },
];
