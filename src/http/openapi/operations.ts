import type { ApiOperation } from './registry';
import { agentOperations } from './operations/agents';
import { assistantOperations } from './operations/assistant';
import { authOperations } from './operations/auth';
import { blockOperations } from './operations/blocks';
import { canvasOperations } from './operations/canvases';
import { generationOperations } from './operations/generation';
import { journeyOperations } from './operations/journey';
import { oauthOperations } from './operations/oauth';
import { platformOperations } from './operations/operations';

/**
 * Every documented operation: one list per route module, concatenated here. A route module may
 * export its own list (`export const agentOperations: ApiOperation[]`) next to its handlers; add it
 * below. `test/integration/openapi.test.ts` fails while a mounted `/api/v1` route is missing here.
 */
export const apiOperations: ApiOperation[] = [
  ...authOperations,
  ...canvasOperations,
  ...blockOperations,
  ...generationOperations,
  ...assistantOperations,
  ...platformOperations,
  ...journeyOperations,
  ...agentOperations,
  ...oauthOperations,
];
