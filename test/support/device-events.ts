import type { DeviceSimulator } from '@switchboard/client/testing';

/** Server → device events a test waits for on a simulator's socket. */
export type AwaitedDeviceEvent = 'approval_requested' | 'approval_resolved' | 'final' | 'cancelled';

/** The first `event` the device receives that satisfies `predicate`; rejects after `timeoutMs`. */
export function nextDeviceEvent<T>(
  device: DeviceSimulator,
  event: AwaitedDeviceEvent,
  predicate: (payload: T) => boolean = () => true,
  timeoutMs = 10_000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => (device.socket.off(event, handler as never), reject(new Error(`timed out waiting for ${event}`))),
      timeoutMs,
    );
    const handler = (payload: T) => {
      if (!predicate(payload)) return;
      clearTimeout(timer);
      device.socket.off(event, handler as never);
      resolve(payload);
    };
    device.socket.on(event, handler as never);
  });
}
