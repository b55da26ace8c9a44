import type { Logger } from '../lib/logger';
import { rooms, type PresenceUser } from '../schemas/socket-events';
import type { CanvasNamespace } from './canvas-emitter';

/** The users with a socket in a canvas's room on this node, each once. */
export function localPresence(nsp: CanvasNamespace, canvasId: string): PresenceUser[] {
  const users = new Map<string, PresenceUser>();
  for (const id of nsp.adapter.rooms.get(rooms.canvas(canvasId)) ?? []) {
    const user = nsp.sockets.get(id)?.data.user;
    if (user && !users.has(user.id)) users.set(user.id, { userId: user.id, name: user.name });
  }
  return [...users.values()];
}

/**
 * Every process with the `/canvas` namespace (workers too, which the adapter counts as nodes)
 * answers other nodes' presence queries with its own users of the room.
 */
export function answerPresenceQueries(nsp: CanvasNamespace): void {
  nsp.on('canvas:presence-users', (canvasId, reply) => reply(typeof canvasId === 'string' ? localPresence(nsp, canvasId) : []));
}

/**
 * The users in a canvas's room on every node: this node's, plus each other node's answer to one
 * query through the adapter. Each node answers with a short list of users, not a description of
 * every socket (`fetchSockets`), which under reconnect churn cost the nodes more than the room's events.
 */
export async function canvasPresence(nsp: CanvasNamespace, canvasId: string, logger: Logger): Promise<PresenceUser[]> {
  const users = new Map(localPresence(nsp, canvasId).map((user) => [user.userId, user]));
  const answers = await new Promise<PresenceUser[][]>((resolve) =>
    // A node that has not answered within the adapter's request timeout (5 s) is left out of this list.
    nsp.serverSideEmit('canvas:presence-users', canvasId, (error: Error | null, lists: PresenceUser[][]) => {
      if (error) logger.warn({ err: error, canvasId }, 'presence: a node did not answer; listed without its users');
      resolve(lists ?? []);
    }),
  );
  for (const list of answers) for (const user of Array.isArray(list) ? list : []) if (!users.has(user.userId)) users.set(user.userId, user);
  return [...users.values()];
}
