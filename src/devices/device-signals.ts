import { EventEmitter } from 'node:events';
import type { Namespace } from 'socket.io';
import {
  type DeviceClientEvents,
  type DevicePresenceSignal,
  type DeviceServerEvents,
  type DeviceServerSideEvents,
  type DeviceSocketData,
} from '../schemas/socket-events';

export type DeviceNamespace = Namespace<DeviceClientEvents, DeviceServerEvents, DeviceServerSideEvents, DeviceSocketData>;

export type DeviceOnline = DevicePresenceSignal & { agentIds: string[] };
export type DeviceGone = DevicePresenceSignal & { reason: string };

/** Listener signatures of {@link DeviceSignals}. */
export interface DeviceSignalEvents {
  /** A device said `device_hello` (on any node). */
  online: [DeviceOnline];
  /** A device socket disconnected (on any node). */
  gone: [DeviceGone];
}

/**
 * Device presence changes, heard on every node: the node holding the socket publishes them through
 * the adapter (`serverSideEmit`, which skips the sender) and to its own listeners directly. Workers
 * listen here to end calls whose device went away, or to start work waiting for a device.
 *
 * One instance per process, owned by its `DeviceChannel`: the namespace publishes through it and
 * the RPC and runners listen on it, so each change is heard exactly once.
 */
export class DeviceSignals extends EventEmitter<DeviceSignalEvents> {
  constructor(private readonly nsp: DeviceNamespace) {
    super();
    this.setMaxListeners(100);
    nsp.on('device:online', (signal) => this.emit('online', signal));
    nsp.on('device:gone', (signal) => this.emit('gone', signal));
  }

  publishOnline(signal: DeviceOnline): void {
    this.nsp.serverSideEmit('device:online', signal);
    this.emit('online', signal);
  }

  publishGone(signal: DeviceGone): void {
    this.nsp.serverSideEmit('device:gone', signal);
    this.emit('gone', signal);
  }
}
