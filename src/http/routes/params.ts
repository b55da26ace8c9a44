import { uuidParam } from '../../schemas/api';
import type { ParamSpec } from '../route';

/**
 * Path parameters shared by route declarations. A value failing its schema answers 404 like a
 * missing resource, not 400: `resource` names it in the message.
 */
const uuid = (description: string, resource: string) =>
  ({ schema: uuidParam, description: `${description}. A malformed id answers 404, like a missing one.`, resource }) satisfies ParamSpec;

export const canvasIdParam = { id: uuid('Canvas id', 'Canvas') };
export const memberParams = { ...canvasIdParam, userId: uuid('Member user id', 'Member') };
export const blockParams = { ...canvasIdParam, blockId: uuid('Block id', 'Block') };
export const generationParams = { ...canvasIdParam, generationId: uuid('Generation id', 'Generation') };
export const sessionIdParam = { id: uuid('Chat session id', 'Chat session') };
export const answerParams = { ...sessionIdParam, messageId: uuid('Assistant answer (message) id', 'Answer') };
export const approvalIdParam = { id: uuid('Approval request id', 'Approval request') };
export const inputIdParam = { id: uuid('Form request id', 'Form request') };
export const agentIdParam = { id: uuid('Agent id', 'Agent') };
export const agentRunIdParam = { runId: uuid('Agent run id', 'Agent run') };
