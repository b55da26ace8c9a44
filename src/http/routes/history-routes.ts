import { z } from 'zod';
import { decodeCursor, encodeCursor, isBigintText, pageQuerySchema } from '../../lib/pagination';
import type { Repositories } from '../../models';
import type { HistoryPosition } from '../../models/history-repository';
import { historyListResponse } from '../openapi/response-schemas';
import { routesWith } from '../route';

/** The history route's port: the history repository. */
export type HistoryPorts = { repos: Pick<Repositories, 'history'> };
const route = routesWith<HistoryPorts>();

/** `GET /me/history`: `?limit` 1–200 (default 50), `?cursor`. */
export const historyQuerySchema = pageQuerySchema(50);

const uuid = z.uuid();
/** A `[microseconds, uuid]` key, or null: only a `bigint` and a real uuid reach the database. */
function historyKey(key: unknown[]): HistoryPosition | null {
  const [atMicros, id] = key;
  return key.length === 2 && isBigintText(atMicros) && typeof id === 'string' && uuid.safeParse(id).success ? { atMicros, id } : null;
}

/** A user's own actions, newest first. */
export const historyRoutes = [
  route({
    method: 'get',
    path: '/me/history',
    operationId: 'listMyHistory',
    tags: ['auth'],
    auth: 'bearer',
    summary: 'Everything you did, newest first, in pages',
    description:
      'Your own actions only: the tools the assistant ran on your devices (`device_tool_call`: `details.tool`, `outcome`, ' +
      '`approvalId` when it waited for an approval, `deviceId`, `sessionId`), your generations (`generation`: `canvasId`, `status`, ' +
      '`blockCount`, `undoneAt`), flow executions (`flow_execution`), agent runs (`agent_run`) and every other audited action you took ' +
      '(`action`, e.g. `ai.generation.undone`, `ai.generation.redone`, `hitl.approved`, `api_key.created`). Pass `nextCursor` as ' +
      '`?cursor` for older entries; a cursor this API did not return is 400 `invalid_cursor`.',
    query: historyQuerySchema,
    responses: { 200: { description: 'Your entries, newest first', schema: historyListResponse } },
    errors: [400],
    handler: async ({ user, query }, ctx) => {
      const before = query.cursor ? decodeCursor(query.cursor, historyKey) : undefined;
      const rows = await ctx.repos.history.page(user.id, { limit: query.limit + 1, before });
      const items = rows.slice(0, query.limit);
      const last = items.at(-1);
      return {
        history: items.map(({ position, ...entry }) => {
          void position;
          return entry;
        }),
        nextCursor: rows.length > query.limit && last ? encodeCursor([last.position.atMicros, last.position.id]) : null,
      };
    },
  }),
];
