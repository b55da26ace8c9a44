import { EventEmitter } from 'node:events';
import { StreamAbort, untilEventOrAbort } from '../../src/lib/stream-signal';

describe('StreamAbort', () => {
  test('given listeners, abort runs each once, in order, and marks the signal aborted', () => {
    const abort = new StreamAbort();
    const calls: string[] = [];
    abort.signal.addEventListener('abort', () => calls.push('a'));
    abort.signal.addEventListener('abort', () => calls.push('b'));

    abort.abort();
    abort.abort();

    expect(abort.signal.aborted).toBe(true);
    expect(calls).toEqual(['a', 'b']);
  });

  test('given a removed listener, abort does not call it', () => {
    const abort = new StreamAbort();
    const calls: string[] = [];
    const removed = () => calls.push('removed');
    abort.signal.addEventListener('abort', removed);
    abort.signal.addEventListener('abort', () => calls.push('kept'));
    abort.signal.removeEventListener('abort', removed);

    abort.abort();

    expect(calls).toEqual(['kept']);
  });

  test('given a listener that throws, the others still run (as with EventTarget)', () => {
    const abort = new StreamAbort();
    const calls: string[] = [];
    abort.signal.addEventListener('abort', () => {
      throw new Error('boom');
    });
    abort.signal.addEventListener('abort', () => calls.push('after'));

    expect(() => abort.abort()).not.toThrow();
    expect(calls).toEqual(['after']);
  });

  test('given an aborted signal, a listener added later is never called (as with AbortSignal)', () => {
    const abort = new StreamAbort();
    abort.abort();
    const listener = jest.fn();

    abort.signal.addEventListener('abort', listener);

    expect(listener).not.toHaveBeenCalled();
  });

  test.each([
    ['StreamAbort', () => new StreamAbort()],
    ['AbortController', () => new AbortController()],
  ] as const)('given an object listener (%s), abort calls its handleEvent once, as itself, and removing it stops that', (_name, make) => {
    const calls: unknown[] = [];
    const listener = {
      handleEvent(this: unknown) {
        calls.push(this);
      },
    };
    const removed = { handleEvent: () => calls.push('removed') };
    const abort = make();
    abort.signal.addEventListener('abort', listener);
    abort.signal.addEventListener('abort', removed);
    abort.signal.removeEventListener('abort', removed);

    abort.abort();
    abort.abort();

    expect(calls).toEqual([listener]);
  });
});

describe('untilEventOrAbort', () => {
  test('given the event comes first, it resolves and leaves no listener on either side', async () => {
    const emitter = new EventEmitter();
    const abort = new StreamAbort();
    const waiting = untilEventOrAbort(emitter, 'drain', abort.signal);

    emitter.emit('drain');
    await waiting;

    expect(emitter.listenerCount('drain')).toBe(0);
    const late = jest.fn();
    abort.signal.addEventListener('abort', late);
    abort.abort();
    expect(late).toHaveBeenCalledTimes(1); // only the late one: the wait's listener was removed
  });

  test.each([
    ['a StreamAbort', () => new StreamAbort()],
    ['a real AbortController', () => new AbortController()],
  ])('given an abort first (%s), it resolves and stops listening to the emitter', async (_kind, make) => {
    const emitter = new EventEmitter();
    const abort = make();
    const waiting = untilEventOrAbort(emitter, 'drain', abort.signal);

    abort.abort();
    await waiting;

    expect(emitter.listenerCount('drain')).toBe(0);
  });

  test('given a signal already aborted, it resolves without listening at all', async () => {
    const emitter = new EventEmitter();
    const abort = new StreamAbort();
    abort.abort();

    await untilEventOrAbort(emitter, 'drain', abort.signal);

    expect(emitter.listenerCount('drain')).toBe(0);
  });
});
