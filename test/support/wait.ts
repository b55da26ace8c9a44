/**
 * Waits for a condition on state that events fill in (e.g. chunks recorded from a socket), with a
 * deadline. For a single event prefer `waitFor` in sockets.ts.
 */
export async function waitUntil(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
