import type { Block } from '../schemas/blocks';

/** Example ids and payloads the protocol catalogs share (docs/protocol.md shows them). */
export const CANVAS = '0b6f3c1e-2f4a-4c1b-9a7e-5d2c8e1f4a30';
export const GEN = '15e047a5-c3b0-46ce-93b3-e0723d73277d';
export const USER = '7d1e2a40-95c3-4b8e-a1f0-3c6d2b9e8f11';
export const SESSION = '5a0c7e52-18d4-4f3b-b6a9-2e7f1c0d9b44';
export const APPROVAL = '9e3b5d17-6c2a-4f80-b4d1-8a7c0e2f6b55';
export const APPROVAL_REQUESTED = {
  approvalId: APPROVAL,
  sessionId: SESSION,
  toolName: 'delete_task',
  parameters: { task_id: 't-1' },
  reason: 'delete_task permanently deletes data on your device',
  expiresAt: '2026-11-22T10:40:42.779Z',
};
export const approvalRequestedFields = {
  approvalId: 'the request',
  sessionId: 'the chat session',
  toolName: 'e.g. `delete_task`',
  parameters: 'the arguments',
  reason: 'why it needs approval',
  expiresAt: 'ISO time; a decision after it is 409 `expired`',
};
export const approvalResolvedFields = {
  approvalId: 'the request',
  status: '`approved`, `rejected` or `timeout`',
  decidedBy: 'the user who decided; `null` for a timeout',
};
export const block: Block = {
  id: '1722160a-db38-4b7f-b025-cfa7f21ced79',
  canvasId: CANVAS,
  type: 'heading',
  content: { text: 'Plan the launch', level: 1 },
  rank: 'A',
  generationSessionId: GEN,
  createdBy: '00000000-0000-4000-8000-0000000000a1',
  createdAt: '2026-11-22T10:35:42.779Z',
  updatedAt: '2026-11-22T10:35:42.779Z',
};
