import { NOTES_SYSTEM_PROMPT } from '../../src/assistant/session-notes-runner';
import { demoResponder } from '../../src/demo-model';
import { isTicketNotesRequest } from '../../src/demo-model/ticket-notes';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request } from '../support/http';
import { readSse } from '../support/sse';

/**
 * On a provider configured to accept Anthropic-style `cache_control` (LLM_PROMPT_CACHE, or
 * `promptCache` in LLM_PROVIDERS), the notes' fixed system prompt is sent as a text part marked for
 * caching; other requests keep plain system messages.
 */
describe('ticket notes: the system prompt marked for prompt caching', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({ responder: demoResponder, promptCache: true });
  });
  afterAll(async () => {
    await t.stop();
  });

  test('the notes request carries cache_control on its system part; a chat turn does not', async () => {
    const user = await registerUser(t.api, 'Cache');
    const chat = await request('POST', `${t.api}/chat`, {
      token: user.accessToken,
      body: { message: 'Outlook asks for the password again and again.', tools: 'none' },
    });
    expect(chat.status).toBe(200);
    const sessionId = chat.body.sessionId as string;
    expect((await request('POST', `${t.api}/chat/sessions/${sessionId}/resolve`, { token: user.accessToken, body: {} })).status).toBe(200);
    const streamed = await readSse(`${t.api}/chat/sessions/${sessionId}/documentation/stream`, {
      token: user.accessToken,
      until: (m) => m.data === '[DONE]' || String(m.data).startsWith('[ERROR]'),
    });
    expect(streamed.messages.at(-1)?.data).toBe('[DONE]');

    const requests = t.llm.chatRequests();
    const notes = requests.filter(isTicketNotesRequest).at(-1)!;
    expect(notes.messages[0]).toEqual({
      role: 'system',
      content: [{ type: 'text', text: NOTES_SYSTEM_PROMPT, cache_control: { type: 'ephemeral' } }],
    });
    const turn = requests.find((req) => !isTicketNotesRequest(req) && req.messages.some((m) => m.role === 'system'))!;
    expect(typeof turn.messages.find((m) => m.role === 'system')!.content).toBe('string');
  });
});
