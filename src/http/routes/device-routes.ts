import { z } from 'zod';
import type { DeviceRegistry } from '../../devices/device-registry';
import type { Repositories } from '../../models';
import { routesWith } from '../route';

/** The device routes' port: who is online (the registry, in Redis) and the local agents naming devices. */
export type DevicePorts = { devices: Pick<DeviceRegistry, 'onlineDevices'> } & { repos: Pick<Repositories, 'agents'> };
const route = routesWith<DevicePorts>();

/** Local agents read for the list: more than any plan enables; a device named only past them is not listed. */
export const MAX_AGENTS_READ = 500;

const deviceView = z.object({
  deviceId: z.string(),
  online: z.boolean(),
  connectedAt: z.string().nullable().describe('When its current connection opened; null when offline'),
  agentIds: z.array(z.string()).describe('The local agents the device said it runs (`device_hello`); empty when offline'),
  agents: z.array(z.object({ id: z.uuid(), name: z.string() })).describe('Your local agents configured to run on this device'),
});
const deviceListResponse = z.object({ devices: z.array(deviceView) });

/** `GET /devices`: the caller's devices, online or named by a local agent. */
export const deviceRoutes = [
  route({
    method: 'get',
    path: '/devices',
    operationId: 'listDevices',
    tags: ['devices'],
    auth: 'bearer',
    summary: 'Your devices: those online now and those your local agents run on',
    description:
      'Online devices first (a device counts as online while its socket is connected to a live node), then the devices your local agents ' +
      'name, by id. Devices are not stored: one never online and named by no agent is not listed. Read it again to follow presence.',
    responses: { 200: { description: 'Your devices', schema: deviceListResponse } },
    handler: async ({ user }, ctx) => {
      const [online, agents] = await Promise.all([
        ctx.devices.onlineDevices(user.id),
        ctx.repos.agents.localAgentDevices(user.id, MAX_AGENTS_READ),
      ]);
      const named = new Map<string, Array<{ id: string; name: string }>>();
      for (const agent of agents) named.set(agent.deviceId, [...(named.get(agent.deviceId) ?? []), { id: agent.id, name: agent.name }]);
      const onlineIds = new Set(online.map((device) => device.deviceId));
      const offline = [...named.keys()].filter((id) => !onlineIds.has(id)).sort();
      return {
        devices: [
          ...online.map((device) => ({
            deviceId: device.deviceId,
            online: true,
            connectedAt: device.connectedAt,
            agentIds: device.agentIds,
            agents: named.get(device.deviceId) ?? [],
          })),
          ...offline.map((deviceId) => ({ deviceId, online: false, connectedAt: null, agentIds: [], agents: named.get(deviceId) ?? [] })),
        ],
      };
    },
  }),
];
