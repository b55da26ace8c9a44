/**
 * How deep arrays and objects may nest in anything a client sends that is parsed as JSON: request
 * bodies, plain WebSocket frames, Socket.IO event payloads. Input is refused past it before any
 * recursive walk (the Unicode checks, the snake_case rename, zod, serialisation) runs, so a hostile
 * depth cannot overflow the stack, and those walkers, bounded by the same number, see every level.
 */
export const MAX_JSON_DEPTH = 64;

/** The message every refusal of too deep input carries. */
export const TOO_DEEP_MESSAGE = `JSON may nest arrays and objects at most ${MAX_JSON_DEPTH} levels deep`;

const isContainer = (value: unknown): value is object =>
  value !== null && typeof value === 'object' && !ArrayBuffer.isView(value) && !(value instanceof ArrayBuffer);

/**
 * Whether `value` nests arrays or objects more than `max` levels deep (`[]` and `{}` are one
 * level). Walks with an explicit stack, never recursion, and stops at the first container past the
 * bound. Binary values (a Buffer in a socket payload) count as leaves.
 */
export function exceedsJsonDepth(value: unknown, max = MAX_JSON_DEPTH): boolean {
  if (!isContainer(value)) return false;
  const stack: Array<[object, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [container, depth] = stack.pop()!;
    if (depth > max) return true;
    const children: unknown[] = Array.isArray(container) ? container : Object.values(container);
    for (const child of children) if (isContainer(child)) stack.push([child, depth + 1]);
  }
  return false;
}
