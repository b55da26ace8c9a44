import { Router } from 'express';
import { AppError, notFound, parseOr400 } from '../../lib/errors';
import { decodeCursor, idKey, MAX_PAGE_SIZE, pageOf, pageQuerySchema } from '../../lib/pagination';
import { addMemberSchema, createCanvasSchema, updateCanvasSchema } from '../../schemas/api';
import type { ApiContext } from '../context';
import { currentUser } from '../middleware/authenticate';
import { requireCanvasRole } from '../middleware/canvas-access';

/** `GET /canvases/:id/audit`: `?limit` 1–200 (default 50), `?cursor`. */
export const auditPageQuerySchema = pageQuerySchema(50);
/** `GET /canvases`: `?limit` 1–200 (default 50), `?cursor`. */
export const canvasesPageQuerySchema = pageQuerySchema(50);
/** `GET /canvases/:id/members`: `?limit` 1–200 (default 200, so most canvases answer whole), `?cursor`. */
export const membersPageQuerySchema = pageQuerySchema(200);

/** Canvases, members and the audit trail. */
export function canvasRoutes(ctx: ApiContext): Router {
  const router = Router();
  const { canvases, users, audit } = ctx.repos;

  router.post('/canvases', async (req, res) => {
    const body = parseOr400(createCanvasSchema, req.body);
    res.status(201).json({ canvas: await canvases.create(currentUser(req).id, body.title) });
  });

  router.get('/canvases', async (req, res) => {
    // Newest first, in pages (SPEC §9).
    const query = parseOr400(canvasesPageQuerySchema, req.query, 'query');
    const beforeId = query.cursor ? decodeCursor(query.cursor, idKey) : undefined;
    const page = pageOf(await canvases.listPageForMember(currentUser(req).id, { limit: query.limit + 1, beforeId }), query.limit, (canvas) => [canvas.id]);
    res.json({ canvases: page.items, nextCursor: page.nextCursor });
  });

  router.get('/canvases/:id', async (req, res) => {
    const { canvasId, user } = await requireCanvasRole(req, canvases, 'viewer');
    const canvas = await canvases.findForMember(canvasId, user.id);
    if (!canvas) throw notFound('Canvas');
    // The first page of members (0100): `membersNextCursor` continues at GET /canvases/:id/members.
    const members = pageOf(await canvases.listMembersPage(canvasId, { limit: MAX_PAGE_SIZE + 1 }), MAX_PAGE_SIZE, (member) => [member.userId]);
    res.json({ canvas, members: members.items, membersNextCursor: members.nextCursor });
  });

  router.patch('/canvases/:id', async (req, res) => {
    const { canvasId, user } = await requireCanvasRole(req, canvases, 'editor');
    const body = parseOr400(updateCanvasSchema, req.body);
    await canvases.rename(canvasId, body.title);
    res.json({ canvas: await canvases.findForMember(canvasId, user.id) });
  });

  router.delete('/canvases/:id', async (req, res) => {
    const { canvasId } = await requireCanvasRole(req, canvases, 'owner');
    await ctx.generations.deleteCanvas(canvasId);
    await ctx.canvasEvents.forget(canvasId);
    res.status(204).end();
  });

  router.post('/canvases/:id/members', async (req, res) => {
    const { canvasId, user } = await requireCanvasRole(req, canvases, 'owner');
    const body = parseOr400(addMemberSchema, req.body);
    const member = await users.findByEmail(body.email);
    if (!member || member.role === 'service') throw new AppError(404, 'user_not_found', 'No user with this email; they must sign up first');
    if (member.id === user.id) throw new AppError(400, 'validation_failed', 'You cannot change your own role');
    await canvases.upsertMember(canvasId, member.id, body.role);
    await audit.write({ actorId: user.id, action: 'canvas.member.set', canvasId, targetType: 'user', targetId: member.id, details: { role: body.role } });
    res.status(201).json({ member: { userId: member.id, name: member.name, email: member.email, role: body.role } });
  });

  router.get('/canvases/:id/members', async (req, res) => {
    const { canvasId } = await requireCanvasRole(req, canvases, 'viewer');
    // In the order members joined (the owner first), in pages (SPEC §9).
    const query = parseOr400(membersPageQuerySchema, req.query, 'query');
    const afterUserId = query.cursor ? decodeCursor(query.cursor, idKey) : undefined;
    const page = pageOf(await canvases.listMembersPage(canvasId, { limit: query.limit + 1, afterUserId }), query.limit, (member) => [member.userId]);
    res.json({ members: page.items, nextCursor: page.nextCursor });
  });

  router.get('/canvases/:id/audit', async (req, res) => {
    const { canvasId } = await requireCanvasRole(req, canvases, 'owner');
    // Newest first, in pages (SPEC §9): the latest events (e.g. ai.generation.undone) come first.
    const query = parseOr400(auditPageQuerySchema, req.query, 'query');
    const beforeId = query.cursor ? decodeCursor(query.cursor, idKey) : undefined;
    const page = pageOf(await audit.listPageForCanvas(canvasId, { limit: query.limit + 1, beforeId }), query.limit, (entry) => [entry.id]);
    res.json({ audit: page.items, nextCursor: page.nextCursor });
  });

  return router;
}
