/**
 * Waits for a promise to settle, whichever way, and never rejects. Only for a promise whose
 * rejection its owner reports where it awaits it (a task raced against a deadline, a write the
 * caller awaits later): attaching this also keeps Node from counting the rejection as unhandled in
 * the meantime. Anything else logs its rejection with a reason instead.
 */
export function settled(promise: PromiseLike<unknown>): Promise<void> {
  return Promise.resolve(promise).then(
    () => undefined,
    () => undefined,
  );
}
