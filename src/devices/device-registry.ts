import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { pipelineByKey, type RedisClient } from '../lib/redis';
import type { Logger } from '../lib/logger';
import { redisKeys } from '../lib/redis-keys';
import { redisScripts } from '../lib/redis-scripts';

/** One connected device, as the registry records it. */
export interface DevicePresence {
  deviceId: string;
  /** The Switchboard process holding the socket. */
  nodeId: string;
  socketId: string;
  /** ISO timestamp of the connection. */
  connectedAt: string;
  /** Local agents the device said it runs (`device_hello`); empty until it says hello. */
  agentIds: string[];
  /** The project folder the device serves to the coding assistant (`device_hello`), when it serves one. */
  project?: { name: string; root?: string };
  /** `false` when the device said it has no local tables (it serves a project only). */
  tables?: false;
}

/**
 * Which devices of which user are online, and on which node, shared by every process through
 * Redis: one hash per user (deviceId → presence JSON). Entries are removed on disconnect; a node
 * that crashes cannot remove its own, so each node keeps a heartbeat key with a TTL and entries of
 * a node whose heartbeat has expired count as offline (and are pruned when read).
 *
 * Reading needs no heartbeat: a worker builds one with `redis` only to ask who is online.
 */
export class DeviceRegistry {
  /** This process, as recorded in the entries it writes. */
  readonly nodeId: string;
  private readonly heartbeatTtlMs: number;
  private readonly heartbeatIntervalMs: number;
  private heartbeat?: NodeJS.Timeout;
  private readonly log?: Logger;

  constructor(
    private readonly redis: RedisClient,
    private readonly keyPrefix: string,
    options: { nodeId?: string; heartbeatTtlMs?: number; heartbeatIntervalMs?: number; logger?: Logger } = {},
  ) {
    this.nodeId = options.nodeId ?? `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.heartbeatTtlMs = options.heartbeatTtlMs ?? 30_000;
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? Math.floor(this.heartbeatTtlMs / 3);
    this.log = options.logger?.child({ component: 'device-registry' });
  }

  private userKey = (userId: string) => redisKeys(this.keyPrefix).devicesOfUser(userId);
  private nodeKey = (nodeId: string) => redisKeys(this.keyPrefix).deviceNode(nodeId);

  /** Starts this node's heartbeat; needed only on nodes that hold device sockets. Idempotent. */
  startHeartbeat(): void {
    if (this.heartbeat) return;
    const beat = () =>
      this.redis.set(this.nodeKey(this.nodeId), String(Date.now()), 'PX', this.heartbeatTtlMs).catch((error: unknown) => {
        this.log?.warn({ err: error, nodeId: this.nodeId }, 'device registry heartbeat failed');
      });
    void beat();
    this.heartbeat = setInterval(() => void beat(), this.heartbeatIntervalMs);
    this.heartbeat.unref();
  }

  /** Stops the heartbeat and drops it at once, so this node's devices count as offline immediately. */
  async stop(): Promise<void> {
    if (!this.heartbeat) return;
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    await this.redis
      .del(this.nodeKey(this.nodeId))
      .catch((error: unknown) => this.log?.warn({ err: error }, 'node heartbeat key not removed; it expires on its own'));
  }

  /** Records a connected socket for `userId`'s device, replacing whatever was recorded for it. */
  async register(userId: string, presence: Omit<DevicePresence, 'nodeId'>): Promise<void> {
    const entry: DevicePresence = { ...presence, nodeId: this.nodeId };
    await this.redis.hset(this.userKey(userId), presence.deviceId, JSON.stringify(entry));
  }

  /** Updates the agents of a device, if `socketId` is still the one recorded. */
  async setAgentIds(userId: string, presence: Omit<DevicePresence, 'nodeId'>): Promise<boolean> {
    const entry: DevicePresence = { ...presence, nodeId: this.nodeId };
    // Compare-and-set on the socket id: the late hello of a replaced socket never touches the entry of the socket that replaced it.
    return redisScripts(this.redis).deviceSetIfSameSocket(
      { devices: this.userKey(userId) },
      { deviceId: presence.deviceId, socketId: presence.socketId, json: JSON.stringify(entry) },
    );
  }

  /** Removes the device's entry if it still belongs to `socketId`. */
  async unregister(userId: string, deviceId: string, socketId: string): Promise<boolean> {
    // Compare-and-delete on the socket id: the late disconnect of a replaced socket keeps its replacement's entry.
    return redisScripts(this.redis).deviceDeleteIfSameSocket({ devices: this.userKey(userId) }, { deviceId, socketId });
  }

  /** The user's devices whose node is alive. Entries of dead nodes are pruned on the way. */
  async onlineDevices(userId: string): Promise<DevicePresence[]> {
    const raw = await this.redis.hgetall(this.userKey(userId));
    const entries = Object.values(raw).flatMap((value) => {
      try {
        return [JSON.parse(value) as DevicePresence];
      } catch {
        return [];
      }
    });
    if (!entries.length) return [];
    const nodeIds = [...new Set(entries.map((entry) => entry.nodeId))];
    // One heartbeat key per node, each in its own slot: one pipeline per Redis node, not MGET.
    const alive = await pipelineByKey(this.redis, nodeIds, this.nodeKey, (pipeline, nodeId) => pipeline.exists(this.nodeKey(nodeId)));
    const failed = alive.find((replies) => replies[0]?.[0])?.[0]?.[0];
    if (failed) throw failed;
    const aliveNodes = new Set(nodeIds.filter((_, index) => alive[index][0]?.[1] === 1));
    const [online, dead] = [
      entries.filter((entry) => aliveNodes.has(entry.nodeId)),
      entries.filter((entry) => !aliveNodes.has(entry.nodeId)),
    ];
    await Promise.all(dead.map((entry) => this.unregister(userId, entry.deviceId, entry.socketId).catch(() => false)));
    return online.sort((a, b) => a.deviceId.localeCompare(b.deviceId));
  }

  /** The device's presence if it is online, else null. */
  async isOnline(userId: string, deviceId: string): Promise<DevicePresence | null> {
    const raw = await this.redis.hget(this.userKey(userId), deviceId);
    if (!raw) return null;
    const entry = JSON.parse(raw) as DevicePresence;
    if ((await this.redis.exists(this.nodeKey(entry.nodeId))) === 1) return entry;
    await this.unregister(userId, deviceId, entry.socketId).catch(() => false);
    return null;
  }
}
