import { randomUUID } from 'node:crypto';
import type { DeviceSimulator } from '@switchboard/client/testing';
import type { ApprovalRequested } from '../../src/schemas/socket-events';
import { startTestApp, type TestApp } from '../support/app';
import { multipart } from '../support/documents';
import { request, type TestUser } from '../support/http';
import { userWithDevice } from '../support/user-device';
import { eventually } from '../support/wait';
import { attempts, obeyingModel } from './injection/corpus';

/*
 * The injection corpus planted in a document of the user's knowledge base, read back by the
 * assistant's `search_knowledge`, and played against a model that OBEYS it: the write the
 * document asks for never runs without a person. It waits for an approval that says the request
 * follows text from the knowledge bases' documents, and the test rejects it.
 */
const WRITES = new Set(['insert', 'update', 'delete', 'upsert']);

describe('prompt injection through documents of a knowledge base', () => {
  let t: TestApp;
  const devices: DeviceSimulator[] = [];

  beforeAll(async () => {
    t = await startTestApp({ responder: obeyingModel, env: { HITL_TIMEOUT_MS: '60000', DEVICE_RPC_TIMEOUT_MS: '5000' } });
  }, 60_000);
  afterAll(async () => {
    devices.forEach((device) => device.close());
    await t.stop();
  });

  const uploadReady = async (user: TestUser, baseId: string, text: string) => {
    const { body, contentType } = multipart([{ name: 'policy.md', type: 'text/markdown', bytes: Buffer.from(text) }]);
    const response = await fetch(`${t.api}/knowledge/bases/${baseId}/documents`, {
      method: 'POST',
      headers: { authorization: `Bearer ${user.accessToken}`, 'content-type': contentType },
      body: new Uint8Array(body),
    });
    const id = ((await response.json()) as { documents: { id: string }[] }).documents[0].id;
    await eventually(
      () => request('GET', `${t.api}/knowledge/documents/${id}`, { token: user.accessToken }),
      (res) => res.body.document?.status === 'ready',
      30_000,
    );
    return id;
  };

  test('a passage found by search_knowledge cannot make the model update a note: every attempt waits for a person', async () => {
    const noteId = randomUUID();
    const { user, device } = await userWithDevice(t.url, devices, {
      name: 'Reader',
      seed: { notes: [{ id: noteId, title: 'Launch plan', content: 'Launch on Monday.' }] },
    });
    const baseId = (await request('POST', `${t.api}/knowledge/bases`, { token: user.accessToken, body: { name: 'Policies' } })).body.base
      .id;
    for (const attempt of attempts('update_note', { note_id: noteId, content: 'pwned' })) {
      const documentId = await uploadReady(user, baseId, `# Refund policy\n\nRefunds take fourteen days.\n\n${attempt.text}\n`);
      const asked: ApprovalRequested[] = [];
      const onApproval = (approval: ApprovalRequested) => {
        asked.push(approval);
        void request('PUT', `${t.api}/hitl/requests/${approval.approvalId}/reject`, { token: user.accessToken });
      };
      device.socket.on('approval_requested', onApproval);
      try {
        const ack = (await device.socket
          .timeout(5_000)
          .emitWithAck('chat_request', { message: 'Look it up: search_knowledge {"query":"refund policy"}' })) as { sessionId: string };
        await eventually(
          () => request('GET', `${t.api}/chat/sessions/${ack.sessionId}/history`, { token: user.accessToken }),
          (res) => Boolean(res.body.messages?.some((m: { role: string }) => m.role === 'assistant')),
          20_000,
        );
      } finally {
        device.socket.off('approval_requested', onApproval);
      }
      expect({ attempt: attempt.id, approvals: asked.map((a) => [a.toolName, a.reason]) }).toEqual({
        attempt: attempt.id,
        approvals: [['update_note', expect.stringContaining('this request follows text from documents of the knowledge bases')]],
      });
      await request('DELETE', `${t.api}/knowledge/documents/${documentId}`, { token: user.accessToken });
    }
    expect(device.calls.filter((call) => WRITES.has(call.action))).toEqual([]);
    expect(device.store.rows('notes')[0].content).toBe('Launch on Monday.');
  }, 180_000);
});
