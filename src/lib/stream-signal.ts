import type { EventEmitter } from 'node:events';

/**
 * What a long-lived stream's code asks of its abort signal: whether it fired, and one-shot 'abort'
 * listeners. A real `AbortSignal` satisfies it, so code that takes a `StreamSignal` accepts either.
 */
export interface StreamSignal {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: AbortListener, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: AbortListener): void;
}

/**
 * An 'abort' listener: a function, or an object whose `handleEvent` is called (as `EventTarget`
 * allows), so an object that lives as long as the listener needs no closure for it.
 */
export type AbortListener = (() => void) | { handleEvent(): void };

/**
 * A one-shot abort for an open SSE stream (memory per stream). Node's
 * `AbortSignal` is an `EventTarget` in dictionary mode, with a hidden class of its own per
 * instance: ~770 B once its signal exists and ~940 B with a listener, against ~150 B here. A node
 * holding 10,000 streams holds one of these per stream for the stream's whole life.
 *
 * As with `AbortSignal`, a listener added after the abort is never called, and each listener runs
 * once; a listener that throws does not keep the others from running.
 */
export class StreamAbort implements StreamSignal {
  aborted = false;
  private listeners: AbortListener[] | undefined = undefined;

  /** The signal side, for symmetry with `AbortController` (the same object). */
  get signal(): StreamSignal {
    return this;
  }

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    const listeners = this.listeners;
    this.listeners = undefined;
    for (const listener of listeners ?? []) {
      try {
        if (typeof listener === 'function') listener();
        else listener.handleEvent();
      } catch {
        // One listener's failure is its own, as with EventTarget.
      }
    }
  }

  addEventListener(_type: 'abort', listener: AbortListener): void {
    if (this.aborted) return;
    // A stream has one listener, mostly: an array of exactly one (an empty literal grows to room
    // for 17 at its first push, ~130 B more for the stream's whole life).
    if (this.listeners) this.listeners.push(listener);
    else this.listeners = [listener];
  }

  removeEventListener(_type: 'abort', listener: AbortListener): void {
    const index = this.listeners?.indexOf(listener) ?? -1;
    if (index !== -1) this.listeners!.splice(index, 1);
  }
}

/**
 * Resolves at the emitter's next `event` or when `signal` aborts, whichever is first, and leaves no
 * listener behind (`events.once` with `{signal}` wants a real `AbortSignal`).
 */
export function untilEventOrAbort(emitter: EventEmitter, event: string, signal: StreamSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      emitter.removeListener(event, done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    emitter.once(event, done);
    signal.addEventListener('abort', done);
  });
}
