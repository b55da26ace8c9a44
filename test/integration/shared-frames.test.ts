import { randomUUID } from 'node:crypto';
import { ChatEventLog, type ChatEvent } from '../../src/turns/turn-events';
import { NotesEventLog, type NotesEvent } from '../../src/assistant/notes-events';
import { GenerationEventLog } from '../../src/generation/event-log';
import type { GenerationEvent } from '../../src/generation/events';
import { formatSse } from '../../src/http/sse';
import { chatFrame } from '../../src/http/streams/chat-source';
import { generationFrame } from '../../src/http/streams/generation-source';
import { notesFrame } from '../../src/http/streams/notes-source';
import { createRedis, redisReady, type RedisClient } from '../../src/lib/redis';
import { runLive, type LivePhase, type LogLiveness } from '../../src/lib/redis-streams';
import { StreamFollower, type Frame } from '../../src/lib/stream-follower';
import { testRedisTarget } from '../support/database';
import { monitorEverywhere } from '../support/redis';
import { waitUntil } from '../support/wait';

/**
 * Many streams: live entries are framed once per entry by the process's follower and
 * the same bytes go to every stream of the key; a stream resumed after Last-Event-ID still gets
 * exactly what it missed (replayed) and then the shared live frames.
 */
/** Follows like the SSE door: the replay's values to `onValue`, then the live phase the log hands back, run to its end. */
async function drive<T>(entries: AsyncGenerator<T, LivePhase | undefined>, onValue: (value: T) => void): Promise<void> {
  for (;;) {
    const next = await entries.next();
    if (next.done) return next.value && runLive(next.value);
    onValue(next.value);
  }
}

describe('shared SSE frames of one generation', () => {
  let redis: RedisClient;
  let follower: StreamFollower;
  let log: GenerationEventLog;
  const stillRunning: LogLiveness = { checkEveryMs: 60_000, endedAt: async () => null };

  beforeEach(async () => {
    redis = createRedis(testRedisTarget('realtime'), 'command');
    await redisReady(redis);
    follower = new StreamFollower(redis);
    log = new GenerationEventLog(redis, `frames-test:${randomUUID()}`, 600, follower);
  });

  afterEach(async () => {
    await follower.close();
    redis.disconnect();
  });

  const output = (generationId: string, index: number): GenerationEvent =>
    ({
      type: 'tool_output',
      generationId,
      index,
      block: { type: 'text', content: `line ${index}\nsecond "line"` },
    }) as unknown as GenerationEvent;
  const wire = (seq: number, event: GenerationEvent) => formatSse({ id: seq, event: event.type, data: JSON.stringify(event) });

  /** Follows like the SSE door does: replay yielded as messages, live pushed as frames. */
  const follow = (generationId: string, afterSeq: number) => {
    const controller = new AbortController();
    const replayed: string[] = [];
    const pushed: Frame[] = [];
    const done = (async () => {
      await drive(
        log.follow(generationId, afterSeq, controller.signal, stillRunning, {
          framer: generationFrame,
          push: (frames) => pushed.push(...frames),
        }),
        ({ seq, event }) => {
          replayed.push(wire(seq, event));
        },
      );
    })();
    let finished = false;
    void done.then(() => (finished = true));
    return { replayed, pushed, controller, done, finished: () => finished };
  };

  test('50 followers of one generation get the very same frame buffers, byte-identical to the replay format, and end at the terminal one', async () => {
    const generationId = randomUUID();
    await log.append(generationId, 1, output(generationId, 0));
    const followers = Array.from({ length: 50 }, () => follow(generationId, 1));
    await waitUntil(() => follower.size === 50, 5_000);

    const live = [
      output(generationId, 1),
      output(generationId, 2),
      { type: 'complete', generationId, blocks: [], truncated: false } as GenerationEvent,
    ];
    for (const [i, event] of live.entries()) await log.append(generationId, i + 2, event);

    await waitUntil(() => followers.every((f) => f.finished()), 5_000);
    const expected = live.map((event, i) => wire(i + 2, event));
    for (const f of followers) {
      expect(f.replayed).toEqual([]);
      expect(f.pushed.map((frame) => frame.bytes.toString('utf8'))).toEqual(expected);
      // One buffer per entry for everyone: formatted once, not once per follower.
      f.pushed.forEach((frame, i) => expect(frame.bytes).toBe(followers[0].pushed[i].bytes));
    }
    expect(followers[0].pushed.map((frame) => frame.terminal)).toEqual([false, false, true]);
    expect(follower.size).toBe(0);
  });

  test('a follower resumed after Last-Event-ID 2 gets exactly 3 and 4 replayed, then the live frames shared with one that follows from the start', async () => {
    const generationId = randomUUID();
    const events = Array.from({ length: 4 }, (_, i) => output(generationId, i));
    for (const [i, event] of events.entries()) await log.append(generationId, i + 1, event);
    const resumed = follow(generationId, 2);
    const fresh = follow(generationId, 0);
    await waitUntil(() => follower.size === 2, 5_000);

    const terminal = { type: 'error', generationId, code: 'generation_failed', message: 'x' } as GenerationEvent;
    await log.append(generationId, 5, output(generationId, 4));
    await log.append(generationId, 6, terminal);
    await waitUntil(() => resumed.finished() && fresh.finished(), 5_000);

    expect(resumed.replayed).toEqual([wire(3, events[2]), wire(4, events[3])]);
    expect(fresh.replayed).toEqual(events.map((event, i) => wire(i + 1, event)));
    const liveWire = [wire(5, output(generationId, 4)), wire(6, terminal)];
    expect(resumed.pushed.map((frame) => frame.bytes.toString('utf8'))).toEqual(liveWire);
    resumed.pushed.forEach((frame, i) => expect(frame.bytes).toBe(fresh.pushed[i].bytes));
  });

  test('going live, the replay generator returns the live phase instead of waiting inside it: done while the log is still open, and the phase then pushes to the terminal frame', async () => {
    const generationId = randomUUID();
    await log.append(generationId, 1, output(generationId, 0));
    const controller = new AbortController();
    const pushed: Frame[] = [];
    const replay = log.follow(generationId, 0, controller.signal, stillRunning, {
      framer: generationFrame,
      push: (frames) => pushed.push(...frames),
    });

    const first = await replay.next();
    expect(first.done).toBe(false);
    const end = await replay.next();
    // No terminal event yet, and nothing of the generator is pending: it has returned the phase.
    expect(end.done).toBe(true);
    expect(typeof (end.value as LivePhase).start).toBe('function');
    expect(follower.size).toBe(0);

    const live = runLive(end.value as LivePhase);
    await waitUntil(() => follower.size === 1, 5_000);
    await log.append(generationId, 2, output(generationId, 1));
    await log.append(generationId, 3, { type: 'complete', generationId, blocks: [], truncated: false });
    await live;
    expect(pushed.map((frame) => frame.bytes.toString('utf8'))).toEqual([
      wire(2, output(generationId, 1)),
      wire(3, { type: 'complete', generationId, blocks: [], truncated: false }),
    ]);
    expect(follower.size).toBe(0);
  });

  test('a live phase its follower cannot take (closed meanwhile) ends with an error, so the stream is reported interrupted and ends', async () => {
    const generationId = randomUUID();
    await log.append(generationId, 1, output(generationId, 0));
    const replay = log.follow(generationId, 0, new AbortController().signal, stillRunning, {
      framer: generationFrame,
      push: () => undefined,
    });
    expect((await replay.next()).done).toBe(false);
    const end = await replay.next();
    expect(end.done).toBe(true);
    await follower.close();

    // Told to the stream's `LiveEnd` (never thrown at the caller, which would leave the stream open).
    const ended = new Promise<Error | undefined>((resolve) => {
      expect(() => (end.value as LivePhase).start({ liveEnded: resolve })).not.toThrow();
    });
    expect((await ended)?.message).toBe('StreamFollower is closed');
    expect(follower.size).toBe(0);
  });

  test('a consumer that stops reading a yielded live phase early (break) leaves the follower', async () => {
    const generationId = randomUUID();
    const controller = new AbortController();
    const seen: number[] = [];
    const reading = (async () => {
      for await (const { seq } of log.follow(generationId, 0, controller.signal, stillRunning)) {
        seen.push(seq);
        break;
      }
    })();
    await waitUntil(() => follower.size === 1, 5_000);
    await log.append(generationId, 1, output(generationId, 0));
    await reading;
    expect(seen).toEqual([1]);
    expect(follower.size).toBe(0);
  });

  test('an aborted follower stops receiving and leaves the follower', async () => {
    const generationId = randomUUID();
    const gone = follow(generationId, 0);
    const stays = follow(generationId, 0);
    await waitUntil(() => follower.size === 2, 5_000);
    gone.controller.abort();
    await gone.done;
    await log.append(generationId, 1, output(generationId, 0));
    await waitUntil(() => stays.pushed.length === 1, 5_000);
    expect(gone.pushed).toEqual([]);
    stays.controller.abort();
    await stays.done;
    expect(follower.size).toBe(0);
  });

  test.each([
    ['pushed live', true],
    ['yielded live', false],
  ])(
    'liveness (%s): asked at once by default, so a stream of ended work ends; not before firstCheckAfterMs for work just started',
    async (_name, pushed) => {
      const generationId = randomUUID();
      let askedDefault = 0;
      let askedLater = 0;
      const run = (liveness: LogLiveness) => {
        const controller = new AbortController();
        const seen: string[] = [];
        const live = pushed
          ? { framer: generationFrame, push: (frames: Frame[]) => seen.push(...frames.map((f) => f.bytes.toString('utf8'))) }
          : undefined;
        let finished = false;
        const done = (async () => {
          await drive(log.follow(generationId, 0, controller.signal, liveness, live), ({ event }) => seen.push(event.type));
        })().then(() => (finished = true));
        return { seen, controller, done, finished: () => finished };
      };
      // The producer "ended" long ago and wrote no terminal event.
      const byDefault = run({ checkEveryMs: 60_000, graceMs: 0, endedAt: async () => ((askedDefault += 1), new Date(0)) });
      const started = run({
        checkEveryMs: 60_000,
        graceMs: 0,
        firstCheckAfterMs: 60_000,
        endedAt: async () => ((askedLater += 1), new Date(0)),
      });

      await waitUntil(() => byDefault.finished(), 5_000);
      expect(askedDefault).toBe(1);
      expect(started.finished()).toBe(false);
      expect(askedLater).toBe(0);

      // The started stream still ends the ordinary way, at its terminal event, without having asked.
      await log.append(generationId, 1, { type: 'complete', generationId, blocks: [], truncated: false });
      await waitUntil(() => started.finished(), 5_000);
      expect(started.seen.join('')).toContain('complete');
      expect(askedLater).toBe(0);
    },
  );
});

/** Chat turns and ticket notes take the same shared-frames path as generations (decision 0104). */
describe('shared SSE frames of chat turns and ticket notes', () => {
  let redis: RedisClient;
  let follower: StreamFollower;
  const stillRunning: LogLiveness = { checkEveryMs: 60_000, endedAt: async () => null };

  beforeEach(async () => {
    redis = createRedis(testRedisTarget('realtime'), 'command');
    await redisReady(redis);
    follower = new StreamFollower(redis);
  });

  afterEach(async () => {
    await follower.close();
    redis.disconnect();
  });

  /** Follows `id` on `log` like the SSE door: replay yielded, live pushed as frames. */
  function follow<E>(log: ChatEventLog | NotesEventLog, id: string, framer: typeof chatFrame) {
    const controller = new AbortController();
    const replayed: E[] = [];
    const pushed: Frame[] = [];
    let finished = false;
    const done = (async () => {
      const follow = (log as unknown as { follow: (...args: unknown[]) => AsyncGenerator<E, LivePhase | undefined> }).follow.bind(log);
      await drive(follow(id, controller.signal, stillRunning, { framer, push: (frames: Frame[]) => pushed.push(...frames) }), (event) =>
        replayed.push(event),
      );
      finished = true;
    })();
    return { replayed, pushed, controller, done, finished: () => finished };
  }

  test('20 followers of a chat turn share one buffer per live event, byte-identical to the message path, ending at final', async () => {
    const log = new ChatEventLog(redis, `frames-chat:${randomUUID()}`, 600, follower);
    const messageId = randomUUID();
    const sessionId = randomUUID();
    const first: ChatEvent = { type: 'text_chunk', sessionId, text: 'stored\nbefore' };
    await log.append(messageId, first);
    const followers = Array.from({ length: 20 }, () => follow<ChatEvent>(log, messageId, chatFrame));
    await waitUntil(() => follower.size === 20, 5_000);
    const live: ChatEvent[] = [
      { type: 'text_chunk', sessionId, text: 'line one\r\nline "two"' },
      { type: 'final', sessionId, response: 'done', usage: { provider: 'p', model: 'm', inputTokens: 1, outputTokens: 2, costUsd: 0 } },
    ];
    for (const event of live) await log.append(messageId, event);
    await waitUntil(() => followers.every((f) => f.finished()), 5_000);
    const expected = live.map((event) => formatSse({ event: event.type, data: JSON.stringify(event) }));
    for (const f of followers) {
      expect(f.replayed).toEqual([first]);
      expect(f.pushed.map((frame) => frame.bytes.toString('utf8'))).toEqual(expected);
      f.pushed.forEach((frame, i) => expect(frame.bytes).toBe(followers[0].pushed[i].bytes));
    }
    expect(followers[0].pushed.map((frame) => frame.terminal)).toEqual([false, true]);
    expect(follower.size).toBe(0);
  });

  test('a turn its request just queued is followed without a replay read: what the log held and what follows come as the same frames', async () => {
    const log = new ChatEventLog(redis, `frames-fresh:${randomUUID()}`, 600, follower);
    const messageId = randomUUID();
    const sessionId = randomUUID();
    const events: ChatEvent[] = [
      { type: 'text_chunk', sessionId, text: 'written before the stream began' },
      { type: 'text_chunk', sessionId, text: 'then live' },
      { type: 'final', sessionId, response: 'done', usage: { provider: 'p', model: 'm', inputTokens: 1, outputTokens: 2, costUsd: 0 } },
    ];
    const sent: string[][] = [];
    const watcher = await monitorEverywhere(redis, ({ args }) => void (args.includes(log.key(messageId)) && sent.push(args)));
    await log.append(messageId, events[0]);
    const controller = new AbortController();
    const replayed: ChatEvent[] = [];
    const pushed: Frame[] = [];
    const done = drive(
      log.follow(
        messageId,
        controller.signal,
        stillRunning,
        { framer: chatFrame, push: (frames) => pushed.push(...frames) },
        { fresh: true },
      ),
      (event) => replayed.push(event),
    );
    await waitUntil(() => pushed.length === 1, 5_000);
    for (const event of events.slice(1)) await log.append(messageId, event);
    await done;
    watcher.stop();

    expect(replayed).toEqual([]);
    expect(pushed.map((frame) => frame.bytes.toString('utf8'))).toEqual(
      events.map((event) => formatSse({ event: event.type, data: JSON.stringify(event) })),
    );
    expect(pushed.map((frame) => frame.terminal)).toEqual([false, false, true]);
    // The monitor saw the log's writes and reads; none of them a replay read.
    const commands = sent.map((args) => args[0].toLowerCase());
    expect(commands).toEqual(expect.arrayContaining(['xadd', 'xread']));
    expect(commands).not.toContain('xrange');
  });

  test('ticket notes: each chunk one JSON data line (its newlines escaped inside), then [ERROR] … ends every follower', async () => {
    const log = new NotesEventLog(redis, `frames-notes:${randomUUID()}`, 600, follower);
    const sessionId = randomUUID();
    const followers = Array.from({ length: 5 }, () => follow<NotesEvent>(log, sessionId, notesFrame));
    await waitUntil(() => follower.size === 5, 5_000);
    await log.append(sessionId, { type: 'chunk', text: 'Summary:\n- one' });
    await log.append(sessionId, { type: 'error', message: 'model away' });
    await waitUntil(() => followers.every((f) => f.finished()), 5_000);
    for (const f of followers) {
      expect(f.replayed).toEqual([]);
      expect(f.pushed.map((frame) => frame.bytes.toString('utf8'))).toEqual([
        `data: ${JSON.stringify({ type: 'chunk', text: 'Summary:\n- one' })}\n\n`,
        'data: [ERROR] model away\n\n',
      ]);
      expect(f.pushed.map((frame) => frame.terminal)).toEqual([false, true]);
    }
  });
});
