import type { Tier } from '../../config';
import type { PresenceUser } from '@switchboard/client/events';

/**
 * The Socket.IO event maps are the wire contract and live in the client package
 * (packages/client/src/events.ts); what only the server needs stays here.
 */
export * from '@switchboard/client/events';

/** What a `/canvas` socket carries after authentication. */
export interface CanvasSocketData {
  user: { id: string; name: string; email: string };
  /** Expiry of the access token the socket is authenticated with (seconds since the epoch). */
  exp: number;
}

/** `/canvas`: node → node, through the adapter. */
export interface CanvasServerSideEvents {
  /** Who is in a canvas's room on the answering node: each user once, however many sockets they have there. */
  'canvas:presence-users': (canvasId: string, reply: (users: PresenceUser[]) => void) => void;
}

/** Room names, from one place. */
export const rooms = {
  canvas: (canvasId: string) => `canvas:${canvasId}`,
  device: (deviceId: string) => `device:${deviceId}`,
  user: (userId: string) => `user:${userId}`,
  /** Every socket of one sign-in session (refresh-token family): logout disconnects them. */
  session: (sessionId: string) => `session:${sessionId}`,
  /**
   * One user's device. Device ids are chosen by clients, so the room is scoped by the user of the
   * token; its own prefix keeps it apart from any `device:<id>` name a client could make up.
   */
  userDevice: (userId: string, deviceId: string) => `user-device:${userId}:${deviceId}`,
  /** The `/device` socket that started a chat turn (the turn's id is the server's, never a client's). */
  chatTurn: (turnId: string) => `chat-turn:${turnId}`,
  /** A user's device's sockets that asked, in `device_hello`, for the messages of every turn that runs on it. */
  userDeviceTurns: (userId: string, deviceId: string) => `user-device-turns:${userId}:${deviceId}`,
};

/** Presence of a device, as nodes tell each other (`serverSideEmit`). */
export interface DevicePresenceSignal {
  userId: string;
  deviceId: string;
  socketId: string;
}

/** `/device`: node → node, through the adapter. */
export interface DeviceServerSideEvents {
  'device:online': (signal: DevicePresenceSignal & { agentIds: string[] }) => void;
  'device:gone': (signal: DevicePresenceSignal & { reason: string }) => void;
}

/** What a `/device` socket carries after authentication: it is bound to the user of its token. */
export interface DeviceSocketData {
  /** `tier` from the token: the socket's `chat_request` counts in the user's tier limits. */
  user: { id: string; name: string; email: string; tier?: Tier };
  deviceId: string;
  /** Expiry of the access token the socket is authenticated with (seconds since the epoch). */
  exp: number;
  /**
   * True when the connection was opened with a session token (a signed-in person), false with an
   * API key: such a device serves tools but cannot decide approvals. Fixed at the handshake.
   */
  person: boolean;
}
