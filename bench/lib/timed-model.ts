import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { now, type Stamp } from './timing';

/** When the model wrote each tool call of one streamed turn. */
export interface TimedTurn {
  /** Just before the write carrying tool call i (its name and all its argument deltas). */
  emittedAt: Stamp[];
  /**
   * Just before the write that lets a streaming client know call i is complete: the first delta of
   * call i+1, or the finish chunk after the last call.
   */
  closedAt: Stamp[];
}

export interface TimedModel {
  baseURL: string;
  /** Turns by the `[run:<tag>]` marker found in the user prompt. */
  turns: Map<string, TimedTurn>;
  close(): Promise<void>;
}

/**
 * A minimal OpenAI-compatible streaming endpoint for the SSE overhead scenario: the first turn of a
 * conversation streams `calls` create_text tool calls `gapMs` apart, each in one write that is
 * timestamped just before it leaves; a turn that carries tool results answers a short text. The
 * stock scripted server buffers or paces inside itself, so it cannot say when each call left.
 */
export async function startTimedModel(options: {
  calls: number;
  /** Pause between tool calls; 0 writes the whole turn at once (like the stock server without a delay). */
  gapMs: number;
  textChars?: number;
  /** Argument deltas per call: 4 like the stock server, or ~1 per 4 characters like a real model's tokens. */
  pieces?: number;
}): Promise<TimedModel> {
  const turns = new Map<string, TimedTurn>();
  let completions = 0;
  const server = http.createServer({ noDelay: true }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      // Anything but a chat completion (the API's start-up probe of the provider) answers an empty model list.
      if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ object: 'list', data: [] }));
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        model: string;
        messages: Array<{ role: string; content: unknown }>;
      };
      const id = `chatcmpl-${++completions}`;
      const frame = (choices: unknown[], extra: Record<string, unknown> = {}) =>
        `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: Math.floor(Date.now() / 1000), model: body.model, choices, ...extra })}\n\n`;
      const delta = (d: Record<string, unknown>, finish: string | null = null) =>
        frame([{ index: 0, delta: d, logprobs: null, finish_reason: finish }]);
      const usage = { prompt_tokens: 100, completion_tokens: 10 * options.calls, total_tokens: 100 + 10 * options.calls };
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      if (body.messages.some((message) => message.role === 'tool')) {
        res.end(
          delta({ role: 'assistant', content: '' }) +
            delta({ content: 'Done.' }) +
            delta({}, 'stop') +
            frame([], { usage }) +
            'data: [DONE]\n\n',
        );
        return;
      }
      const prompt = String(body.messages.filter((m) => m.role === 'user').at(-1)?.content ?? '');
      const tag = /\[run:([^\]]+)\]/.exec(prompt)?.[1] ?? String(completions);
      const turn: TimedTurn = { emittedAt: [], closedAt: [] };
      turns.set(tag, turn);
      res.write(delta({ role: 'assistant', content: '' }));
      const filler = 'x'.repeat(Math.max(0, (options.textChars ?? 120) - 20));
      let index = 0;
      const writeCall = (): string => {
        if (res.destroyed) return '';
        const args = JSON.stringify({ text: `Paragraph ${index + 1}. ${filler}` });
        const size = Math.ceil(args.length / (options.pieces ?? 4));
        let out = delta({
          tool_calls: [{ index, id: `call_${completions}_${index}`, type: 'function', function: { name: 'create_text', arguments: '' } }],
        });
        for (let i = 0; i < args.length; i += size)
          out += delta({ tool_calls: [{ index, function: { arguments: args.slice(i, i + size) } }] });
        const at = now();
        if (index > 0) turn.closedAt.push(at);
        turn.emittedAt.push(at);
        index += 1;
        if (options.gapMs === 0) return out;
        res.write(out);
        if (index < options.calls) setTimeout(writeCall, options.gapMs);
        else setTimeout(finish, options.gapMs);
        return '';
      };
      const finish = () => {
        turn.closedAt.push(now());
        res.end(delta({}, 'tool_calls') + frame([], { usage }) + 'data: [DONE]\n\n');
      };
      if (options.gapMs > 0) return void writeCall();
      let all = '';
      while (index < options.calls) all += writeCall();
      turn.closedAt.push(now());
      res.end(all + delta({}, 'tool_calls') + frame([], { usage }) + 'data: [DONE]\n\n');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    turns,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
