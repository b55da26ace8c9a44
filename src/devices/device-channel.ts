import type { Server } from 'socket.io';
import type { ToolCallInput, DeviceAction, DeviceReply } from '../schemas/device-protocol';
import { DEVICE_NAMESPACE, rooms, type DeviceServerEvents } from '../schemas/socket-events';
import { DeviceRpc, type DeviceCallOptions, type DeviceRpcDeps } from './device-rpc';
import { DeviceSignals, type DeviceGone, type DeviceNamespace } from './device-signals';
import type { WsRelay } from './ws-relay';
import { startSpan, tracingOn } from '../observability/tracing';

/** Server → device messages sent to one device (no reply expected). */
export type DeviceMessageName = 'agent_run' | 'agent_cancelled';
/** The messages of one chat turn that runs on a device: its pieces and its end. */
export type TurnMessageName = 'text_chunk' | 'final' | 'chat_error' | 'cancelled';
/** Server → device messages sent to every device of a user. */
export type UserDeviceMessageName = 'approval_requested' | 'approval_resolved' | 'input_requested' | 'input_resolved';
/** The payload of a server → device message, as the Socket.IO event map types it (camelCase). */
export type DeviceMessage<E extends keyof DeviceServerEvents> = Parameters<DeviceServerEvents[E]>[0];

/**
 * What domain code (assistant turns, approvals, agent runs) may send to or ask of a user's device,
 * whatever transport the device is connected with and whichever node holds its connection. The
 * twin of the canvas side's `CanvasEmitter`: runners get this port, never `io: Server`.
 */
export interface DevicePort {
  /** Runs one tool call on the device and resolves with its validated reply (see {@link DeviceRpc.callDevice}). */
  callDevice<A extends DeviceAction>(
    userId: string,
    deviceId: string,
    call: ToolCallInput & { action: A },
    options?: DeviceCallOptions,
  ): Promise<DeviceReply<A>>;
  /** Sends a message to one device of a user (dropped when it is offline). */
  send<E extends DeviceMessageName>(userId: string, deviceId: string, event: E, payload: DeviceMessage<E>): void;
  /**
   * Sends a message of the chat turn `turn.id` running on a device: to the connection that started
   * the turn, and to the device's connections that asked for every turn's messages in
   * `device_hello` (a turn started over HTTP reaches only those). A turn the device's own socket
   * asked for (`fromDevice`) reaches every connection of the device, so an app that reconnected
   * still gets its answer. Dropped when none is connected.
   */
  sendTurn<E extends TurnMessageName>(
    userId: string,
    deviceId: string,
    turn: { id: string; fromDevice?: boolean },
    event: E,
    payload: DeviceMessage<E>,
  ): void;
  /** Sends a message to every connected device of a user. */
  sendToUser<E extends UserDeviceMessageName>(userId: string, event: E, payload: DeviceMessage<E>): void;
  /** Calls `listener` when that device's connection goes away on any node; returns the unsubscribe. */
  watchGone(userId: string, deviceId: string, listener: (gone: DeviceGone) => void): () => void;
}

/**
 * The device channel of one process (built once, in `startSwitchboard`): tool-call RPC with acks
 * and timeouts, one-way messages, and presence signals heard from every node. Socket.IO `/device`
 * sockets are reached through the adapter's rooms (`rooms.userDevice`, `rooms.user`), which deliver
 * on whichever node holds the socket; plain-WebSocket devices through the relay's Redis
 * channels, to which the node holding the connection listens. A device is on one transport at a
 * time (the newest connection wins, {@link replaceOthers}), so a message reaches it once.
 */
export class DeviceChannel implements DevicePort {
  /** Presence changes from every node; the `/device` namespace publishes through it. */
  readonly signals: DeviceSignals;
  private readonly nsp: DeviceNamespace;
  private readonly rpc: DeviceRpc;

  /** The plain-WebSocket relay, when this process has Redis for it (every real process does). */
  readonly relay?: WsRelay;
  private readonly log?: DeviceRpcDeps['logger'];

  constructor(io: Server, deps: DeviceRpcDeps) {
    this.nsp = io.of(DEVICE_NAMESPACE) as unknown as DeviceNamespace;
    this.signals = new DeviceSignals(this.nsp);
    this.rpc = new DeviceRpc(this.nsp, this.signals, deps);
    this.relay = deps.relay;
    this.log = deps.logger?.child({ component: 'device-channel' });
  }

  /**
   * A new connection `connId` of the device: every other one, on either transport and any node,
   * is closed (a tool call must never run on two copies of the app).
   */
  async replaceOthers(userId: string, deviceId: string, connId: string): Promise<void> {
    this.nsp.in(rooms.userDevice(userId, deviceId)).except(connId).disconnectSockets(true);
    await this.relay?.replace(userId, deviceId, connId);
  }

  /** The typed `/device` namespace (the namespace registration and tests use it). */
  get namespace(): DeviceNamespace {
    return this.nsp;
  }

  callDevice<A extends DeviceAction>(
    userId: string,
    deviceId: string,
    call: ToolCallInput & { action: A },
    options: DeviceCallOptions = {},
  ): Promise<DeviceReply<A>> {
    return this.rpc.callDevice(userId, deviceId, call as never, options) as Promise<DeviceReply<A>>;
  }

  send<E extends DeviceMessageName>(userId: string, deviceId: string, event: E, payload: DeviceMessage<E>): void {
    const span = deviceEmitSpan(event, deviceId);
    const room = this.nsp.to(rooms.userDevice(userId, deviceId));
    (room.emit as (event: E, payload: DeviceMessage<E>) => boolean).call(room, event, payload);
    this.relay
      ?.send(userId, deviceId, event, payload)
      .catch((error: unknown) => this.log?.warn({ err: error, event }, 'device message not relayed'));
    span?.end();
  }

  sendTurn<E extends TurnMessageName>(
    userId: string,
    deviceId: string,
    { id: turnId, fromDevice }: { id: string; fromDevice?: boolean },
    event: E,
    payload: DeviceMessage<E>,
  ): void {
    const span = deviceEmitSpan(event, deviceId);
    // One emit to both rooms: a socket in both (it started the turn and asked for all) gets it once.
    const room = fromDevice
      ? this.nsp.to(rooms.userDevice(userId, deviceId))
      : this.nsp.to(rooms.chatTurn(turnId)).to(rooms.userDeviceTurns(userId, deviceId));
    (room.emit as (event: E, payload: DeviceMessage<E>) => boolean).call(room, event, payload);
    // Relayed with the turn's id, a plain-WebSocket connection passes it on only for its own turns.
    this.relay
      ?.send(userId, deviceId, event, payload, fromDevice ? undefined : turnId)
      .catch((error: unknown) => this.log?.warn({ err: error, event }, 'device message not relayed'));
    span?.end();
  }

  sendToUser<E extends UserDeviceMessageName>(userId: string, event: E, payload: DeviceMessage<E>): void {
    const span = deviceEmitSpan(event);
    const room = this.nsp.to(rooms.user(userId));
    (room.emit as (event: E, payload: DeviceMessage<E>) => boolean).call(room, event, payload);
    this.relay
      ?.sendToUser(userId, event, payload)
      .catch((error: unknown) => this.log?.warn({ err: error, event }, 'device message not relayed'));
    span?.end();
  }

  watchGone(userId: string, deviceId: string, listener: (gone: DeviceGone) => void): () => void {
    const onGone = (gone: DeviceGone) => {
      if (gone.userId === userId && gone.deviceId === deviceId) listener(gone);
    };
    this.signals.on('gone', onGone);
    return () => void this.signals.off('gone', onGone);
  }

  /** Stops listening for presence (calls in flight still end on their own timeout). */
  async close(): Promise<void> {
    this.rpc.close();
    this.signals.removeAllListeners();
    await this.relay?.close();
  }
}

/**
 * Tracing on: a producer span per message to a device, but for the pieces of a streamed answer
 * (`text_chunk`, one per model delta): the turn's `final`, `chat_error` or `cancelled` stands for them.
 */
function deviceEmitSpan(event: string, deviceId?: string) {
  if (!tracingOn() || event === 'text_chunk') return undefined;
  return startSpan(`emit ${event}`, 'producer', {
    'messaging.system': 'socket.io',
    'messaging.destination.name': DEVICE_NAMESPACE,
    'switchboard.event': event,
    'switchboard.device.id': deviceId,
  });
}
