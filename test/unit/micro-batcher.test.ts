import { MicroBatcher } from '../../src/lib/micro-batcher';

/** A batch runner that records every batch and answers each item with `f(item)`. */
function recorder<I, O>(f: (item: I) => O) {
  const batches: I[][] = [];
  const run = async (items: I[]) => {
    batches.push(items);
    return items.map(f);
  };
  return { batches, run };
}

describe('MicroBatcher', () => {
  afterEach(() => jest.useRealTimers());

  test('given maxSize items, it runs them as one batch at once, without waiting for the delay', async () => {
    const { batches, run } = recorder((n: number) => n * 10);
    const batcher = new MicroBatcher(run, { maxSize: 3, maxDelayMs: 60_000 });

    const results = await Promise.all([1, 2, 3].map((n) => batcher.add(n)));

    expect(results).toEqual([10, 20, 30]);
    expect(batches).toEqual([[1, 2, 3]]);
  });

  test('given more than maxSize items at once, it splits them into full batches and a remainder', async () => {
    jest.useFakeTimers();
    const { batches, run } = recorder((n: number) => -n);
    const batcher = new MicroBatcher(run, { maxSize: 4, maxDelayMs: 10 });

    const pending = Promise.all(Array.from({ length: 10 }, (_, i) => batcher.add(i)));
    expect(batches).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
    ]);
    jest.advanceTimersByTime(10);

    expect(await pending).toEqual(Array.from({ length: 10 }, (_, i) => -i));
    expect(batches).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
      [8, 9],
    ]);
  });

  test('given fewer than maxSize items, it runs them together once maxDelayMs has passed since the first', async () => {
    jest.useFakeTimers();
    const { batches, run } = recorder((s: string) => s.toUpperCase());
    const batcher = new MicroBatcher(run, { maxSize: 64, maxDelayMs: 10 });

    const a = batcher.add('a');
    jest.advanceTimersByTime(6);
    const b = batcher.add('b');
    jest.advanceTimersByTime(3);
    expect(batches).toEqual([]);
    expect(batcher.size).toBe(2);

    jest.advanceTimersByTime(1);
    expect(batches).toEqual([['a', 'b']]);
    expect(await Promise.all([a, b])).toEqual(['A', 'B']);

    // A later item starts a new batch with its own delay.
    const c = batcher.add('c');
    jest.advanceTimersByTime(10);
    expect(await c).toBe('C');
    expect(batches).toEqual([['a', 'b'], ['c']]);
  });

  test('each caller gets the result at its own position, however the runner orders its work', async () => {
    const batcher = new MicroBatcher(
      async (items: number[]) => {
        // Finish the items in reverse, then answer in input order as the contract requires.
        const answers = new Map<number, string>();
        for (const item of [...items].reverse()) answers.set(item, `item-${item}`);
        return items.map((item) => answers.get(item)!);
      },
      { maxSize: 5, maxDelayMs: 10 },
    );

    const results = await Promise.all([5, 3, 9, 1, 7].map((n) => batcher.add(n)));

    expect(results).toEqual(['item-5', 'item-3', 'item-9', 'item-1', 'item-7']);
  });

  test('when a batch fails, every caller in it gets the error and the next batch runs normally', async () => {
    let calls = 0;
    const batcher = new MicroBatcher(
      async (items: string[]) => {
        calls += 1;
        if (calls === 1) throw new Error('model unavailable');
        return items.map((item) => item.length);
      },
      { maxSize: 3, maxDelayMs: 10 },
    );

    const outcomes = await Promise.allSettled(['a', 'bb', 'ccc'].map((s) => batcher.add(s)));
    expect(outcomes).toEqual([
      { status: 'rejected', reason: new Error('model unavailable') },
      { status: 'rejected', reason: new Error('model unavailable') },
      { status: 'rejected', reason: new Error('model unavailable') },
    ]);

    expect(await Promise.all(['dddd', 'e'].map((s) => batcher.add(s)))).toEqual([4, 1]);
  });

  test('a runner that answers with the wrong number of results fails the whole batch', async () => {
    const batcher = new MicroBatcher(async (items: number[]) => items.slice(1), { maxSize: 2, maxDelayMs: 10 });

    const outcomes = await Promise.allSettled([batcher.add(1), batcher.add(2)]);

    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected']);
    expect((outcomes[0] as PromiseRejectedResult).reason.message).toMatch(/2 item\(s\) produced 1 result/);
  });

  test('drain runs what is pending at once and waits for it', async () => {
    const { batches, run } = recorder((n: number) => n + 1);
    const batcher = new MicroBatcher(run, { maxSize: 64, maxDelayMs: 60_000 });
    const result = batcher.add(41);

    await batcher.drain();

    expect(batches).toEqual([[41]]);
    expect(await result).toBe(42);
  });

  test('rejects nonsensical options', () => {
    const run = async (items: number[]) => items;
    expect(() => new MicroBatcher(run, { maxSize: 0, maxDelayMs: 10 })).toThrow(RangeError);
    expect(() => new MicroBatcher(run, { maxSize: 1, maxDelayMs: -1 })).toThrow(RangeError);
  });
});
