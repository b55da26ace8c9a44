import { randomUUID } from 'node:crypto';
import { DeviceSimulator } from '@switchboard/client/testing';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { toolResultTexts } from '../support/scripted-llm';

const toolResults = toolResultTexts;

describe('note vectors', () => {
  let t: TestApp;
  let user: TestUser;
  let device: DeviceSimulator;

  beforeAll(async () => {
    t = await startTestApp();
    user = await registerUser(t.api, 'Notes');
    device = await DeviceSimulator.connect({
      url: t.url,
      accessToken: user.accessToken,
      deviceId: `laptop-${randomUUID().slice(0, 6)}`,
      reconnection: false,
    });
  });

  afterAll(async () => {
    device.close();
    await t.stop();
  });

  const chat = (message: string) =>
    request('POST', `${t.api}/chat`, { token: user.accessToken, body: { message, deviceId: device.deviceId } });

  test('create_note and update_note embed the note and vector_upsert it on the device; list_notes {query} searches the vectors', async () => {
    t.llm.push(
      {
        toolCalls: [
          {
            name: 'create_note',
            args: { title: 'Kubernetes deploy', content: 'Rolling deploy of the kubernetes cluster with helm charts', project_id: 'p1' },
          },
        ],
      },
      { text: 'Noted.' },
    );
    expect((await chat('Create a note about the deploy')).status).toBe(200);
    const insert = await device.waitForCall((call) => call.action === 'insert');
    const noteId = device.store.rows('notes')[0].id;
    const upsert = await device.waitForCall((call) => call.action === 'vector_upsert');
    expect(device.calls.indexOf(upsert)).toBeGreaterThan(device.calls.indexOf(insert));
    expect(upsert).toMatchObject({
      table: 'notes',
      data: {
        id: noteId,
        title: 'Kubernetes deploy',
        content: 'Rolling deploy of the kubernetes cluster with helm charts',
        projectId: 'p1',
      },
    });
    expect((upsert as { vector: number[] }).vector.length).toBeGreaterThan(0);

    t.llm.push(
      { toolCalls: [{ name: 'create_note', args: { title: 'Lunch menu', content: 'Pasta salad soup and bread for friday lunch' } }] },
      { text: 'Noted too.' },
    );
    expect((await chat('Create a note for lunch')).status).toBe(200);

    const before = t.llm.chatRequests().length;
    t.llm.push(
      {
        toolCalls: [
          { name: 'update_note', args: { note_id: noteId, content: 'Blue green deploy of the kubernetes cluster with helm charts' } },
        ],
      },
      { text: 'Updated.' },
    );
    expect((await chat('Update my deploy note')).status).toBe(200);
    const upserts = device.calls.filter((call) => call.action === 'vector_upsert');
    expect(upserts).toHaveLength(3);
    expect(upserts[2]).toMatchObject({ data: { id: noteId, content: 'Blue green deploy of the kubernetes cluster with helm charts' } });
    expect(toolResults(t.llm.chatRequests()[before + 1])[0]).toMatch(/^Note updated: Kubernetes deploy/);

    const searchAt = t.llm.chatRequests().length;
    t.llm.push({ toolCalls: [{ name: 'list_notes', args: { query: 'kubernetes helm deploy' } }] }, { text: 'Your deploy note.' });
    const res = await chat('Find notes about kubernetes');
    expect(res.status).toBe(200);
    expect(device.calls.at(-1)).toMatchObject({ action: 'vector_search', table: 'notes', limit: 10 });
    const [result] = toolResults(t.llm.chatRequests()[searchAt + 1]);
    expect(result).toMatch(/^Found 2 note\(s\) about "kubernetes helm deploy", best match first:\n- Kubernetes deploy/);
    expect(result).toContain(`id: ${noteId}`);
  });

  test('list_notes without a query still lists the rows', async () => {
    const at = t.llm.chatRequests().length;
    t.llm.push({ toolCalls: [{ name: 'list_notes', args: {} }] }, { text: 'Two notes.' });
    expect((await chat('Show my notes')).status).toBe(200);
    expect(device.calls.at(-1)).toMatchObject({ action: 'select', table: 'notes' });
    expect(toolResults(t.llm.chatRequests()[at + 1])[0]).toMatch(/^Found 2 note\(s\):/);
  });
});
