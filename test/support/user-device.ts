import { randomUUID } from 'node:crypto';
import { DeviceSimulator, type StoreSeed } from '@switchboard/client/testing';
import { registerUser, type TestUser } from './http';

/**
 * A new user with a simulated desktop app connected to `url` under a fresh device id, answering
 * from `seed`, without reconnection. The device is pushed to `devices` for the suite to close.
 */
export async function userWithDevice(
  url: string,
  devices: DeviceSimulator[],
  options: { name?: string; seed?: StoreSeed } = {},
): Promise<{ user: TestUser; device: DeviceSimulator }> {
  const user = await registerUser(`${url}/api/v1`, options.name);
  const device = await DeviceSimulator.connect({
    url,
    accessToken: user.accessToken,
    deviceId: `laptop-${randomUUID().slice(0, 6)}`,
    seed: options.seed,
    reconnection: false,
  });
  devices.push(device);
  return { user, device };
}
