import { uuidParam } from '../../../schemas/api';
import { oauthProviderParam } from '../../routes/oauth-routes';

/**
 * Path parameters. Handlers parse ids with `uuidParam`; a malformed id answers 404 like a missing
 * resource (decision 0014), not 400.
 */
const uuid = (description: string) => ({ schema: uuidParam, description: `${description}. A malformed id answers 404, like a missing one.` });

export const canvasIdParam = { id: uuid('Canvas id') };
export const blockParams = { ...canvasIdParam, blockId: uuid('Block id') };
export const generationParams = { ...canvasIdParam, generationId: uuid('Generation id') };
export const sessionIdParam = { id: uuid('Chat session id') };
export const approvalIdParam = { id: uuid('Approval request id') };
export const agentIdParam = { id: uuid('Agent id') };
export const providerParam = { provider: { schema: oauthProviderParam, description: 'The OAuth provider. Any other value answers 404.' } };
