import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { DeviceSimulator } from '@switchboard/client/testing';
import { checkToolCall } from '../../src/ai/block-tools';
import type { ChatTurn } from '../../src/demo-model/openai-compatible-server';
import type { RunningSwitchboard } from '../../src/app/switchboard';
import { llmUsage } from '../../src/models/schema';
import { createCanvas, registerUser, request, type TestUser } from './http';
import { FAIL_MARK, type ReplayServer } from './provider-replay';
import { connectCanvas, join, waitFor } from './sockets';
import { readSse, type SseMessage } from './sse';
import { eventually } from './wait';

/*
 * Every user path that calls a model, driven through the real API (HTTP, SSE, a device on
 * Socket.IO) against an app whose model is a replay profile. Each returns what the user got (the
 * answer or the error) and the demo model's answers the replay server played for it, so a test can
 * say "the same as the demo model" and "a clear error with the reason" for any profile.
 */

/** Waits are bounded: a path that hangs fails its test with what it had. */
const WAIT_MS = 15_000;

export interface PathContext {
  app: RunningSwitchboard;
  api: string;
  url: string;
  replay: ReplayServer;
  /** Devices to close after the test. */
  devices: DeviceSimulator[];
}

/** How a path ended: the user's result, or the error they were shown. */
export type PathEnd = { ok: true; text: string; extra?: unknown } | { ok: false; code?: string; message: string };

/** What a path ended with. */
export type PathResult = {
  user: TestUser;
  /** The demo model's answers played for this path, in order. */
  played: ChatTurn[];
} & PathEnd;

export type PathName = 'generation' | 'chat' | 'chat-device' | 'chatflow' | 'agentflow' | 'notes' | 'agent-run';

export const PATHS: PathName[] = ['generation', 'chat', 'chat-device', 'chatflow', 'agentflow', 'notes', 'agent-run'];

/** Unicode and newlines every path's input carries: they must come out intact. */
export const UNICODE = 'Grüße aus Köln — 🚀 日本語 ✓';

const played = (ctx: PathContext, from: number): ChatTurn[] =>
  ctx.replay.requests.slice(from).flatMap((entry) => (entry.path === 'chat' && entry.turn ? [entry.turn] : []));

const sse = (ctx: PathContext, user: TestUser, path: string, body: unknown, terminal: (message: SseMessage) => boolean, method = 'POST') =>
  readSse(`${ctx.api}${path}`, { method, token: user.accessToken, body, until: terminal, timeoutMs: WAIT_MS });

const chatTerminal = (message: SseMessage) => message.event === 'final' || message.event === 'error';

async function device(ctx: PathContext, user: TestUser, files: Array<{ path: string; name: string; content: string }> = []) {
  const simulator = await DeviceSimulator.connect({
    url: ctx.url,
    accessToken: user.accessToken,
    deviceId: `laptop-${randomUUID().slice(0, 6)}`,
    seed: {
      projects: [{ id: 'p-launch', name: 'Product launch', status: 'active' }],
      tasks: [
        { title: 'Write the launch brief', status: 'todo', priority: 'high', projectId: 'p-launch' },
        { title: `Send the invoices — ${UNICODE}`, status: 'todo', priority: 'low' },
      ],
    },
    reconnection: false,
    readAgentFiles: async () => ({ files }),
  });
  ctx.devices.push(simulator);
  return simulator;
}

/** The end of a chat-like SSE turn (`final` or `error`). */
function turnEnd(messages: SseMessage[]): { ok: true; text: string; extra: unknown } | { ok: false; code?: string; message: string } {
  const last = messages.at(-1);
  if (last?.event === 'final') {
    const streamed = messages.filter((message) => message.event === 'text_chunk').map((message) => message.data.text as string);
    return { ok: true, text: last.data.response as string, extra: streamed.join('') };
  }
  if (last?.event === 'error') return { ok: false, code: last.data.code as string, message: last.data.message as string };
  throw new Error(`the turn ended without final or error: ${JSON.stringify(messages.at(-1))}`);
}

/** Runs one path for a new user; `fail` puts the failure mark where the path's model call reads it. */
export async function runPath(ctx: PathContext, path: PathName, fail = false): Promise<PathResult> {
  const user = await registerUser(ctx.api, `Replay${path.replace('-', '')}`);
  const from = ctx.replay.requests.length;
  const mark = fail ? ` ${FAIL_MARK}` : '';
  const done = (result: PathEnd): PathResult => ({ ...result, user, played: played(ctx, from) });

  switch (path) {
    case 'generation': {
      const canvasId = await createCanvas(ctx.api, user, 'Replay');
      // A viewer of the canvas in the browser: the room says how the generation ended.
      const viewer = await connectCanvas(ctx.url, user.accessToken);
      await join(viewer, canvasId);
      const ended = waitFor(viewer, 'generation_status', (status) => status.stage === 'failed' || status.stage === 'broadcasting', WAIT_MS);
      // Awaited below: marked handled now so a timeout before then is not an unhandled rejection.
      ended.catch(() => undefined);
      const res = await sse(
        ctx,
        user,
        `/canvases/${canvasId}/ai/generate-stream`,
        {
          prompt: `Plan the launch: ${UNICODE}\nsecond line${mark}`,
        },
        (message) => message.event === 'complete' || message.event === 'error',
      );
      const last = res.messages.at(-1);
      const room = await ended.finally(() => viewer.close());
      if (last?.event === 'complete') {
        const blocks = (last.data.blocks as Array<{ type: string; content: unknown }>).map(({ type, content }) => ({ type, content }));
        return done({ ok: true, text: JSON.stringify(blocks), extra: blocks });
      }
      // The SSE `error` and the room's `generation_status {stage: "failed"}` say the same.
      if (room.stage !== 'failed' || room.code !== last?.data.code || room.message !== last?.data.message)
        return done({ ok: false, message: `the canvas room was told ${JSON.stringify(room)}, the stream ${JSON.stringify(last?.data)}` });
      return done({ ok: false, code: last?.data.code, message: last?.data.message ?? JSON.stringify(res) });
    }
    case 'chat': {
      const res = await sse(ctx, user, '/chat/stream', { message: `Tell me something.\n${UNICODE}${mark}`, tools: 'none' }, chatTerminal);
      return done(turnEnd(res.messages));
    }
    case 'chat-device': {
      const laptop = await device(ctx, user);
      const res = await sse(
        ctx,
        user,
        '/chat/stream',
        { message: `How many todo tasks do I have?${mark}`, deviceId: laptop.deviceId },
        chatTerminal,
      );
      const end = turnEnd(res.messages);
      // The device path is the tool loop: an answer that never called the device did not take it.
      return done(end.ok && !laptop.calls.length ? { ok: false, message: 'the answer came without a device call' } : end);
    }
    case 'chatflow': {
      const flow = await request('POST', `${ctx.api}/flows`, {
        token: user.accessToken,
        body: { type: 'chatflow', name: 'Replay helper', definition: { systemPrompt: 'You are a helpful assistant.' } },
      });
      const res = await sse(
        ctx,
        user,
        `/flows/${flow.body.flow.id}/chat/stream`,
        { message: `Hello there.\n${UNICODE}${mark}` },
        chatTerminal,
      );
      return done(turnEnd(res.messages));
    }
    case 'agentflow': {
      const flow = await request('POST', `${ctx.api}/flows`, {
        token: user.accessToken,
        body: {
          type: 'agentflow',
          name: 'Replay pipeline',
          definition: { nodes: [{ id: 'draft', prompt: 'Write two lines about {{input.topic}}' }], output: 'draft' },
        },
      });
      const res = await sse(ctx, user, `/flows/${flow.body.flow.id}/execute/stream`, { input: { topic: `${UNICODE}${mark}` } }, (message) =>
        ['execution_completed', 'execution_failed', 'cancelled'].includes(message.event ?? ''),
      );
      const last = res.messages.at(-1);
      if (last?.event === 'execution_completed') return done({ ok: true, text: String(last.data.output) });
      // The execution fails `node_failed`; the node's own event says why.
      const failed = res.messages.find((message) => message.event === 'node_failed')?.data.error ?? last?.data.error ?? {};
      if (last?.event !== 'execution_failed') return done({ ok: false, message: `the execution ended ${JSON.stringify(last)}` });
      return done({ ok: false, code: failed.code, message: failed.message ?? JSON.stringify(last) });
    }
    case 'notes': {
      const chat = await request('POST', `${ctx.api}/chat`, {
        token: user.accessToken,
        body: { message: `My printer shows error E-42.\n${UNICODE}`, tools: 'none' },
      });
      if (chat.status !== 200) throw new Error(`notes: the chat turn failed ${chat.status} ${JSON.stringify(chat.body)}`);
      const sessionId = chat.body.sessionId as string;
      const resolved = await request('POST', `${ctx.api}/chat/sessions/${sessionId}/resolve`, {
        token: user.accessToken,
        body: { resolutionSummary: `Restarted the printer.${mark}` },
      });
      if (resolved.status !== 200) throw new Error(`notes: resolve failed ${resolved.status}`);
      const res = await sse(
        ctx,
        user,
        `/chat/sessions/${sessionId}/documentation/stream`,
        undefined,
        (message) => typeof message.data === 'string',
        'GET',
      );
      const last = res.messages.at(-1)?.data as string;
      const streamed = res.messages.flatMap((message) => (typeof message.data === 'object' ? [message.data.text as string] : [])).join('');
      if (last === '[DONE]') {
        const stored = await request('GET', `${ctx.api}/chat/sessions/${sessionId}/documentation`, { token: user.accessToken });
        return done({ ok: true, text: stored.body.documentation as string, extra: streamed });
      }
      return done({ ok: false, message: last });
    }
    case 'agent-run': {
      const content = `Call with ACME — ${UNICODE}\nTODO: Send the revised quote\nTODO: Book the kickoff room${mark}\n`;
      const laptop = await device(ctx, user, [{ path: '/Users/ana/Notes/acme.txt', name: 'acme.txt', content }]);
      const agent = await request('POST', `${ctx.api}/agents/local`, {
        token: user.accessToken,
        body: {
          name: 'Notes folder',
          deviceId: laptop.deviceId,
          directoryPaths: ['/Users/ana/Notes'],
          dataTypes: ['tasks'],
          promptTemplate: 'Extract tasks. Lines starting with TODO are tasks.',
        },
      });
      if (agent.status !== 201) throw new Error(`agent-run: create failed ${agent.status} ${JSON.stringify(agent.body)}`);
      const started = await request('POST', `${ctx.api}/agents/${agent.body.id}/run`, { token: user.accessToken });
      if (started.status !== 202) throw new Error(`agent-run: run failed ${started.status}`);
      const [run] = await eventually(
        async () => (await request('GET', `${ctx.api}/agents/runs?agentId=${agent.body.id}`, { token: user.accessToken })).body.runs,
        (runs: Array<{ completedAt: string | null; status: string; errors: string[] }>) => runs.length > 0 && runs[0].completedAt !== null,
        WAIT_MS,
      );
      const inserted = laptop.calls.filter((call) => call.action === 'insert').map((call) => call.data as Record<string, unknown>);
      if (run.status === 'success') return done({ ok: true, text: JSON.stringify(inserted.map((item) => item.title)), extra: inserted });
      return done({ ok: false, message: run.errors.join('\n') });
    }
  }
}

/** What the demo model's played answers make of a path: the text, blocks or items the user should get. */
export function expectedOf(path: PathName, turns: ChatTurn[]): string {
  switch (path) {
    case 'generation': {
      const blocks = turns.flatMap((turn) =>
        (turn.toolCalls ?? []).flatMap((call) => {
          const check = checkToolCall(call.name, typeof call.args === 'string' ? call.args : JSON.stringify(call.args));
          return check.ok ? [{ type: check.block.type, content: check.block.content }] : [];
        }),
      );
      return JSON.stringify(blocks);
    }
    case 'agent-run': {
      const items = turns.flatMap((turn) =>
        (turn.toolCalls ?? []).flatMap((call) => (call.args as { items?: Array<{ title: string }> }).items ?? []),
      );
      return JSON.stringify(items.map((item) => item.title));
    }
    default:
      return turns.at(-1)?.text ?? '';
  }
}

/** The user's usage lines. */
export async function usageOf(app: RunningSwitchboard, userId: string) {
  return app.repos.db.select().from(llmUsage).where(eq(llmUsage.userId, userId));
}
