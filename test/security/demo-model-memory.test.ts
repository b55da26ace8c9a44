import { startDemoLLM } from '../../src/demo-model';
import { startOpenAICompatibleServer } from '../../src/demo-model/openai-compatible-server';

/** The demo model lives as long as its worker process: it must not keep the prompts it is sent. */
const chat = (baseURL: string, content: string) =>
  fetch(`${baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'demo', messages: [{ role: 'user', content }] }),
  });

test('the demo model answers without keeping request bodies', async () => {
  const demo = await startDemoLLM();
  try {
    for (let i = 0; i < 3; i += 1) expect((await chat(demo.baseURL, `secret prompt ${i}`)).status).toBe(200);
    const embedded = await fetch(`${demo.baseURL}/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo', input: 'secret text' }),
    });
    expect(embedded.status).toBe(200);
    expect(demo.requests).toEqual([]);
  } finally {
    await demo.close();
  }
});

test('a server started for a test records what it was sent when asked to', async () => {
  const server = await startOpenAICompatibleServer({ responder: () => ({ text: 'ok' }), recordRequests: true });
  try {
    expect((await chat(server.baseURL, 'recorded')).status).toBe(200);
    expect(server.requests).toHaveLength(1);
  } finally {
    await server.close();
  }
});
