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
export const INPUT = '4c2e8a91-3b7d-4f06-a5c8-1d9e7b3f0a62';
export const EXECUTION = '6f1d3b85-2a9c-4e07-b8d4-9c0e5a7f2b13';
export const FLOW = 'a3e9c5d1-7b20-4f8a-9c6e-2d4b1f0e8a57';
export const INPUT_REQUESTED = {
  inputId: INPUT,
  executionId: EXECUTION,
  flowId: FLOW,
  nodeId: 'review',
  ownerId: USER,
  prompt: 'Check the draft reply to ACME before it goes out.',
  form: { type: 'object', properties: { note: { type: 'string', title: 'Note for the writer' } } },
  decisions: [
    { name: 'approve', label: 'Send it' },
    { name: 'reject', label: 'Rewrite it' },
  ],
  expiresAt: '2026-11-23T10:40:42.779Z',
};
export const inputRequestedFields = {
  inputId: 'the form request; answer with `POST /hitl/inputs/:id/answer {values, decision}`',
  executionId: 'the agentflow execution that waits',
  flowId: 'its flow',
  nodeId: 'the human_input node',
  ownerId: "the flow's owner, who asks",
  prompt: 'what to answer, above the form (may be empty)',
  form: 'a JSON Schema of an object: its properties are the fields',
  decisions: '`[{name, label}]`: the decision buttons (none: one plain submit)',
  expiresAt: 'ISO time; an answer after it is 409 `expired`',
};
export const inputResolvedFields = {
  inputId: 'the form request',
  status: '`answered`, `timeout` or `cancelled` (the execution ended)',
  answeredBy: 'who answered; `null` otherwise',
  decision: 'the decision chosen (or taken at the timeout); `null` for none',
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
