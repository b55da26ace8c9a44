import { z } from 'zod';
import type { DevicePort } from '../../devices/device-channel';
import type { DeviceRegistry } from '../../devices/device-registry';
import { DeviceRpcError } from '../../devices/device-rpc';
import { AppError } from '../../lib/errors';
import type { Repositories } from '../../models';
import { changeRecordSchema, deviceIdSchema } from '../../schemas/device-protocol';
import { routesWith } from '../route';

/**
 * The device routes' port: who is online (the registry, in Redis), the local agents naming
 * devices, calls to a device (its project's change history) and the audit log.
 */
export type DevicePorts = { devices: Pick<DeviceRegistry, 'onlineDevices'> } & { repos: Pick<Repositories, 'agents' | 'audit'> } & {
  deviceCalls: Pick<DevicePort, 'callDevice'>;
};
const route = routesWith<DevicePorts>();

/** Local agents read for the list: more than any plan enables; a device named only past them is not listed. */
export const MAX_AGENTS_READ = 500;

const deviceView = z.object({
  deviceId: z.string(),
  online: z.boolean(),
  connectedAt: z.string().nullable().describe('When its current connection opened; null when offline'),
  agentIds: z.array(z.string()).describe('The local agents the device said it runs (`device_hello`); empty when offline'),
  agents: z.array(z.object({ id: z.uuid(), name: z.string() })).describe('Your local agents configured to run on this device'),
  project: z
    .object({ name: z.string(), root: z.string().optional() })
    .nullable()
    .describe('The project folder the device serves to the coding agents (`device_hello`); null when none or offline'),
});
const deviceListResponse = z.object({ devices: z.array(deviceView) });

const deviceIdParam = {
  deviceId: {
    schema: deviceIdSchema,
    description: 'The device id (1-128 of A-Z a-z 0-9 . _ : -). A malformed id answers 404.',
    resource: 'Device',
  },
};
const changeParams = {
  ...deviceIdParam,
  changeId: {
    schema: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
    description: 'A change id (from `tool_result.changeId` or the list)',
    resource: 'Change',
  },
};
const changeList = z.object({ changes: z.array(changeRecordSchema).describe('Newest first') });
const undoResult = z.object({
  path: z.string(),
  diff: z.string().describe('The unified diff of the undo (the change reversed)'),
  change: changeRecordSchema.optional().describe('The undo, recorded as a change of its own'),
});

/**
 * A failed call to the device as the API's error: offline 409 `device_offline`, no answer 504
 * `device_timeout`, a refusal of the device 409 with `refusedCode` and its words.
 */
function deviceFailure(error: unknown, refusedCode: string): never {
  if (!(error instanceof DeviceRpcError)) throw error;
  if (error.code === 'offline' || error.code === 'disconnected')
    throw new AppError(409, 'device_offline', `Device ${error.deviceId} is not connected; open it and try again`);
  if (error.code === 'timeout') throw new AppError(504, 'device_timeout', error.message);
  if (error.code === 'device_error') throw new AppError(409, refusedCode, error.message.replace(/^Device \S+ could not run [^:]+: /, ''));
  throw new AppError(502, 'device_failed', error.message);
}

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
            project: device.project ?? null,
          })),
          ...offline.map((deviceId) => ({
            deviceId,
            online: false,
            connectedAt: null,
            agentIds: [],
            agents: named.get(deviceId) ?? [],
            project: null,
          })),
        ],
      };
    },
  }),
  route({
    method: 'get',
    path: '/devices/:deviceId/changes',
    operationId: 'listDeviceChanges',
    tags: ['devices'],
    auth: 'bearer',
    params: deviceIdParam,
    summary: 'The changes the coding agents made to the project your device serves, newest first',
    description:
      'Read from the device, which keeps each change with the previous content of the file (docs/coding-agents.md). ' +
      '409 `device_offline` when that device of yours is not connected.',
    responses: { 200: { description: 'The changes the device keeps', schema: changeList } },
    handler: async ({ user, params }, ctx) => {
      try {
        const reply = await ctx.deviceCalls.callDevice(user.id, params.deviceId, { action: 'list_changes', limit: 200 });
        return { changes: reply.changes };
      } catch (error) {
        return deviceFailure(error, 'device_refused');
      }
    },
  }),
  route({
    method: 'post',
    path: '/devices/:deviceId/changes/:changeId/undo',
    operationId: 'undoDeviceChange',
    tags: ['devices'],
    auth: 'bearer',
    params: changeParams,
    summary: 'Undo a change of a coding agent: the file gets its previous content back',
    description:
      'The device restores the content the file had before the change (or removes a file the change created, or brings back one it deleted), ' +
      'only while the file is still as the change left it: a file changed since, a change undone already or one the device no longer keeps is 409 `undo_refused`. ' +
      'The undo is itself a change (it can be undone). 409 `device_offline` when the device is not connected. Audited.',
    responses: { 200: { description: 'The restored file', schema: undoResult } },
    handler: async ({ user, params }, ctx) => {
      let reply;
      try {
        reply = await ctx.deviceCalls.callDevice(user.id, params.deviceId, { action: 'undo_change', changeId: params.changeId });
      } catch (error) {
        return deviceFailure(error, 'undo_refused');
      }
      await ctx.repos.audit.write({
        actorId: user.id,
        action: 'code.change_undone',
        deviceId: params.deviceId,
        details: { changeId: params.changeId, path: reply.path, undoChangeId: reply.change?.changeId ?? null },
      });
      return { path: reply.path, diff: reply.diff, ...(reply.change ? { change: reply.change } : {}) };
    },
  }),
];
