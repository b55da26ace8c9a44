import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestApp, type TestApp } from '../support/app';
import { createCanvas, registerUser, request } from '../support/http';
import { readSse } from '../support/sse';

/**
 * A generation whose model asks for several block tools in one turn, with the deltas of the
 * parallel calls interleaved (as a provider may stream them) so that the LAST call's arguments
 * close first: the canvas still gets the blocks in the order of the calls.
 */

const frame = (data: unknown) => `data: ${JSON.stringify(data)}\n\n`;
const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
  frame({
    id: 'chatcmpl-p',
    object: 'chat.completion.chunk',
    created: 0,
    model: 'm',
    choices: [{ index: 0, delta, finish_reason: finish }],
  });
const opens = (index: number, name: string) => ({ index, id: `call_${index}`, type: 'function', function: { name, arguments: '' } });
const more = (index: number, args: string) => ({ index, function: { arguments: args } });

/** Three calls opened together; their arguments arrive interleaved and close in the order 2, 1, 0. */
const INTERLEAVED = [
  chunk({ role: 'assistant', content: '', tool_calls: [opens(0, 'create_heading')] }),
  chunk({ tool_calls: [opens(1, 'create_todo')] }),
  chunk({ tool_calls: [opens(2, 'create_todo')] }),
  chunk({ tool_calls: [more(2, '{"text":"third","checked":false}')] }),
  chunk({ tool_calls: [more(0, '{"text":"Launch plan","le')] }),
  chunk({ tool_calls: [more(1, '{"text":"second","checked":true}')] }),
  chunk({ tool_calls: [more(0, 'vel":1}')] }),
  chunk({}, 'tool_calls'),
  'data: [DONE]\n\n',
].join('');
const ANSWER = [chunk({ role: 'assistant', content: 'Made three blocks.' }), chunk({}, 'stop'), 'data: [DONE]\n\n'].join('');

describe('several block tool calls in one generation turn', () => {
  let t: TestApp;
  let provider: http.Server;

  beforeAll(async () => {
    provider = http.createServer((req, res) => {
      let raw = '';
      req.on('data', (part: Buffer) => (raw += part.toString()));
      req.on('end', () => {
        if (!req.url?.endsWith('/chat/completions')) return void res.writeHead(404).end();
        const body = JSON.parse(raw) as { messages: Array<{ role: string }> };
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(body.messages.some((message) => message.role === 'tool') ? ANSWER : INTERLEAVED);
      });
    });
    await new Promise<void>((resolve) => provider.listen(0, '127.0.0.1', () => resolve()));
    t = await startTestApp({ llmBaseURL: `http://127.0.0.1:${(provider.address() as AddressInfo).port}/v1` });
  });

  afterAll(async () => {
    await t.stop();
    provider.closeAllConnections();
    await new Promise((resolve) => provider.close(resolve));
  });

  test('blocks stream and land in call order though the last call closed first', async () => {
    const user = await registerUser(t.api, 'Blocks');
    const canvasId = await createCanvas(t.api, user);

    const { messages } = await readSse(`${t.api}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { prompt: 'A launch plan with two todos' },
      until: (message) => message.event === 'complete' || message.event === 'error',
      timeoutMs: 30_000,
    });

    expect(messages.at(-1)?.event).toBe('complete');
    const outputs = messages.filter((message) => message.event === 'tool_output').map((message) => message.data);
    expect(outputs.map((output) => [output.index, output.block.content.text])).toEqual([
      [0, 'Launch plan'],
      [1, 'second'],
      [2, 'third'],
    ]);
    const texts = (blocks: Array<{ content: { text: string } }>) => blocks.map((block) => block.content.text);
    expect(texts(messages.at(-1)?.data.blocks)).toEqual(['Launch plan', 'second', 'third']);

    const stored = await request('GET', `${t.api}/canvases/${canvasId}/blocks`, { token: user.accessToken });
    expect(stored.status).toBe(200);
    expect(texts(stored.body.blocks)).toEqual(['Launch plan', 'second', 'third']);
  });
});
