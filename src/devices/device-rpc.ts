import { randomUUID } from 'node:crypto';
import { toStorable } from '../lib/text-safety';
import type { Logger } from '../lib/logger';
import type { WsRelay } from './ws-relay';
import type { Metrics } from '../observability/metrics';
import { rooms } from '../schemas/socket-events';
import type { DeviceGone, DeviceNamespace, DeviceSignals } from './device-signals';
import { settled } from '../lib/settled';
import { withSpan } from '../observability/tracing';
import {
  describeIssues,
  deviceIdSchema,
  errorReplySchema,
  replySchemas,
  toolCallInputSchema,
  type DeviceAction,
  type DeviceReply,
  type ToolCall,
  type ToolCallInput,
} from '../schemas/device-protocol';

/** How a call ended; `ok` or the {@link DeviceRpcError} code. */
export type DeviceRpcOutcome = 'ok' | DeviceRpcErrorCode;

export type DeviceRpcErrorCode =
  /** The call failed validation and was never sent. */
  | 'invalid_call'
  /** No socket of that device is connected for that user. */
  | 'offline'
  /** The device did not answer in time. */
  | 'timeout'
  /** The device's socket went away before it answered. */
  | 'disconnected'
  /** The device answered with the wrong id or shape. */
  | 'invalid_reply'
  /** The device answered `{id, error}`. */
  | 'device_error'
  /** The caller aborted (options.signal). */
  | 'aborted';

/**
 * Why a device call failed. The message is written for the model: tools may return it as-is
 * ("Device laptop-1 did not answer within 30 s").
 */
export class DeviceRpcError extends Error {
  constructor(
    readonly code: DeviceRpcErrorCode,
    message: string,
    readonly deviceId: string,
    readonly action?: string,
  ) {
    super(message);
    this.name = 'DeviceRpcError';
  }
}

/** Where latency and timeouts go; the Prometheus registry implements it. */
export interface DeviceRpcMetrics {
  onRpc(sample: { action: DeviceAction; outcome: DeviceRpcOutcome; seconds: number }): void;
}

/** Records calls in the process's Prometheus metrics: duration by action and outcome, and timeouts. */
export function prometheusDeviceRpcMetrics(metrics: Metrics): DeviceRpcMetrics {
  return {
    onRpc: ({ action, outcome, seconds }) => {
      metrics.deviceRpcDuration.observe({ action, outcome }, seconds);
      if (outcome === 'timeout') metrics.deviceRpcTimeouts.inc({ action });
    },
  };
}

export interface DeviceCallOptions {
  /** Overrides the default (DEVICE_RPC_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Ends the wait early (the device may still run the call). */
  signal?: AbortSignal;
  /** Sent as `idempotencyKey`: a device answers a repeated write with this key from memory. */
  idempotencyKey?: string;
}

export interface DeviceRpcDeps {
  /** Default per-call timeout: `config.device.rpcTimeoutMs`. */
  timeoutMs: number;
  logger?: Logger;
  metrics?: DeviceRpcMetrics;
  /** Reaches devices on the plain WebSocket through Redis; without it, Socket.IO only. */
  relay?: WsRelay;
}

const seconds = (ms: number) => `${Number((ms / 1000).toFixed(3))} s`;

/**
 * Runs tool calls on a user's device from any process (the tool-call part of `DeviceChannel`,
 * which builds it). A device on the plain WebSocket gets the call through the relay (Redis
 * pub/sub, answered on this process's reply channel); otherwise the call is emitted with an ack
 * into the room of that user's device (`rooms.userDevice`), which the Redis Streams adapter
 * delivers on whichever node holds the socket and whose ack it carries back. A disconnect of the
 * device, heard from any node through {@link DeviceSignals}, ends the calls waiting on it at once.
 */
export class DeviceRpc {
  private readonly log?: Logger;
  /** Calls in flight by `userId\ndeviceId`: how to end each when the device goes away. */
  private readonly waiting = new Map<string, Set<(gone: DeviceGone) => void>>();

  constructor(
    private readonly nsp: DeviceNamespace,
    private readonly signals: DeviceSignals,
    private readonly deps: DeviceRpcDeps,
  ) {
    this.log = deps.logger?.child({ component: 'device-rpc' });
    this.signals.on('gone', this.onGone);
  }

  /**
   * Sends `call` to `userId`'s device `deviceId` and resolves with its validated reply.
   * Rejects with a {@link DeviceRpcError}: invalid input (before anything is sent), device offline,
   * no answer within the timeout, device disconnected mid-call, a malformed reply, or an error the
   * device reported.
   */
  callDevice<A extends DeviceAction>(
    userId: string,
    deviceId: string,
    call: ToolCallInput & { action: A },
    options: DeviceCallOptions = {},
  ): Promise<DeviceReply<A>> {
    // Tracing on: one client span per round trip, failed with the DeviceRpcError code.
    return withSpan(
      `device ${String(call.action)}`,
      'client',
      { 'switchboard.device.action': String(call.action), 'switchboard.device.id': deviceId },
      () => this.roundTrip<A>(userId, deviceId, call, options),
    );
  }

  private async roundTrip<A extends DeviceAction>(
    userId: string,
    deviceId: string,
    call: ToolCallInput & { action: A },
    options: DeviceCallOptions,
  ): Promise<DeviceReply<A>> {
    const action = call.action;
    const parsedDevice = deviceIdSchema.safeParse(deviceId);
    const parsed = toolCallInputSchema.safeParse(call);
    if (!userId || !parsedDevice.success || !parsed.success) {
      const reason = !userId
        ? 'userId is required'
        : !parsedDevice.success
          ? describeIssues(parsedDevice.error)
          : describeIssues(parsed.error!);
      throw new DeviceRpcError(
        'invalid_call',
        `Invalid ${String(action)} call for device ${deviceId}: ${reason}`,
        deviceId,
        String(action),
      );
    }

    if (options.signal?.aborted) throw new DeviceRpcError('aborted', `The call to device ${deviceId} was cancelled`, deviceId, action);
    const payload = {
      id: randomUUID(),
      ...parsed.data,
      ...(options.idempotencyKey ? { idempotencyKey: options.idempotencyKey } : {}),
    } as ToolCall;
    const timeoutMs = options.timeoutMs ?? this.deps.timeoutMs;
    const started = performance.now();
    const context = { callId: payload.id, userId, deviceId, action };
    const stopWaiting: Array<() => void> = [];

    try {
      const acks = this.deliver(userId, deviceId, payload, timeoutMs, options.signal);
      void settled(acks); // it may lose the race below and time out later
      const interrupted = new Promise<never>((_, reject) => {
        const key = `${userId}\n${deviceId}`;
        const onGone = () =>
          reject(new DeviceRpcError('disconnected', `Device ${deviceId} disconnected before answering`, deviceId, action));
        const set = this.waiting.get(key) ?? new Set();
        this.waiting.set(key, set.add(onGone));
        stopWaiting.push(() => (set.delete(onGone), set.size || this.waiting.delete(key)));
        if (options.signal) {
          const onAbort = () => {
            // The device may still be running it (a command): it is told to stop.
            this.tellCancelled(userId, deviceId, payload.id);
            reject(new DeviceRpcError('aborted', `The call to device ${deviceId} was cancelled`, deviceId, action));
          };
          options.signal.addEventListener('abort', onAbort, { once: true });
          stopWaiting.push(() => options.signal!.removeEventListener('abort', onAbort));
        }
      });

      const responses = await Promise.race([
        acks.catch((error: unknown) => {
          if (error instanceof Error && /timed out/.test(error.message)) {
            throw new DeviceRpcError('timeout', `Device ${deviceId} did not answer within ${seconds(timeoutMs)}`, deviceId, action);
          }
          throw error;
        }),
        interrupted,
      ]);
      if (responses.length === 0) throw new DeviceRpcError('offline', `Device ${deviceId} is not connected`, deviceId, action);
      const reply = this.parseReply(deviceId, payload, responses[0]);
      this.record(action, 'ok', started);
      return reply as DeviceReply<A>;
    } catch (error) {
      const outcome = error instanceof DeviceRpcError ? error.code : 'device_error';
      this.record(action, outcome, started);
      if (outcome === 'timeout' || outcome === 'invalid_reply') this.log?.warn({ ...context, outcome }, 'device call failed');
      else this.log?.debug({ ...context, outcome }, 'device call failed');
      throw error;
    } finally {
      stopWaiting.forEach((stop) => stop());
    }
  }

  /**
   * A plain-WebSocket connection of the device (any node) gets the call through the relay; else
   * the adapter carries it to the Socket.IO socket in the device's room. Resolves with the
   * replies (none: the device is offline).
   */
  private async deliver(userId: string, deviceId: string, payload: ToolCall, timeoutMs: number, signal?: AbortSignal): Promise<unknown[]> {
    const viaWebSocket = await this.deps.relay?.call(userId, deviceId, payload, timeoutMs, signal);
    if (viaWebSocket) return viaWebSocket;
    return this.nsp.to(rooms.userDevice(userId, deviceId)).timeout(timeoutMs).emitWithAck('tool_call', payload);
  }

  /** `tool_cancel {id}` to the device, on whichever transport holds it (no answer). */
  private tellCancelled(userId: string, deviceId: string, id: string): void {
    this.nsp.to(rooms.userDevice(userId, deviceId)).emit('tool_cancel', { id });
    this.deps.relay
      ?.send(userId, deviceId, 'tool_cancel', { id })
      .catch((error: unknown) => this.log?.warn({ err: error, deviceId }, 'tool_cancel not relayed'));
  }

  private record(action: DeviceAction, outcome: DeviceRpcOutcome, started: number): void {
    try {
      this.deps.metrics?.onRpc({ action, outcome, seconds: (performance.now() - started) / 1000 });
    } catch (error) {
      this.log?.warn({ err: error }, 'device rpc metrics callback failed');
    }
  }

  /** Stops listening for disconnects. Calls in flight still end on their own timeout. */
  close(): void {
    this.signals.off('gone', this.onGone);
  }

  private readonly onGone = (gone: DeviceGone) => {
    const waiting = this.waiting.get(`${gone.userId}\n${gone.deviceId}`);
    waiting?.forEach((end) => end(gone));
  };

  private parseReply(deviceId: string, call: ToolCall, reply: unknown): DeviceReply {
    // A device's rows and errors are its data: cleaned before anything stores them.
    const raw = toStorable(reply);
    const what = `${call.action}${'table' in call && call.table ? ` on ${call.table}` : ''}${'path' in call ? ` of ${call.path}` : ''}`;
    const invalid = (why: string) =>
      new DeviceRpcError('invalid_reply', `Device ${deviceId} sent an invalid reply to ${what}: ${why}`, deviceId, call.action);
    const id = (raw as { id?: unknown } | null)?.id;
    if (id !== call.id) throw invalid(`expected id ${call.id}, got ${JSON.stringify(id) ?? 'none'}`);
    const failed = errorReplySchema.safeParse(raw);
    if (failed.success)
      throw new DeviceRpcError('device_error', `Device ${deviceId} could not run ${what}: ${failed.data.error}`, deviceId, call.action);
    const parsed = replySchemas[call.action].safeParse(raw);
    if (!parsed.success) throw invalid(describeIssues(parsed.error));
    return parsed.data;
  }
}
