import type { Socket } from 'socket.io';
import { exceedsJsonDepth, TOO_DEEP_MESSAGE } from '../lib/json-depth';
import { findUnstorableText } from '../lib/text-safety';

/**
 * Refuses a client's socket frame that nests deeper than the JSON depth bound (every event, device
 * data included: nothing walks it), or whose text is not valid Unicode or holds NUL,
 * for every event of the socket at once: the ack (when the frame has one) answers
 * `{ok: false, error: {code: 'validation_failed', message}}` — the shape of every ack error here —
 * and the handler never runs. A frame without an ack (`canvas:cursor`) is dropped.
 *
 * `deviceData` names events that carry the device's own data (`agent_data`, `agent_complete`):
 * those pass and are cleaned where they enter (src/agents/run-channel.ts), since refusing them
 * would only lose the user's files or leave the run open.
 */
export function guardSocketText(socket: Socket, options: { deviceData?: readonly string[] } = {}): void {
  socket.use((packet, next) => {
    const [event, ...args] = packet;
    const ack = typeof args.at(-1) === 'function' ? (args.at(-1) as (reply: unknown) => void) : undefined;
    const payload = ack ? args.slice(0, -1) : args;
    // The arguments' array is one level the client did not write.
    if (payload.some((arg) => exceedsJsonDepth(arg)))
      return ack?.({ ok: false, error: { code: 'validation_failed', message: TOO_DEEP_MESSAGE } });
    if (options.deviceData?.includes(event)) return next();
    const where = findUnstorableText(payload);
    if (!where) return next();
    ack?.({
      ok: false,
      error: { code: 'validation_failed', message: `Text must be valid Unicode without NUL or lone surrogates (at ${where})` },
    });
  });
}
