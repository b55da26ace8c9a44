import { canvasRoutes } from '../routes/canvas-routes';
import { usageRoutes } from '../routes/usage-routes';
import { flowRoutes } from '../routes/flow-routes';
import type { ApiOperation } from './registry';
import { agentOperations } from './operations/agents';
import { assistantOperations } from './operations/assistant';
import { authOperations } from './operations/auth';
import { blockOperations } from './operations/blocks';
import { generationOperations } from './operations/generation';
import { journeyOperations } from './operations/journey';
import { oauthOperations } from './operations/oauth';
import { platformOperations } from './operations/operations';

/**
 * Every documented operation: one list per route module, concatenated here. Converted modules
 * export their route declarations (`canvasRoutes`, see `../route.ts`), which are operations; the
 * rest still have a separate list in `operations/`. `test/integration/openapi.test.ts` fails while a mounted `/api/v1` route is missing here.
 */
export const apiOperations: ApiOperation[] = [
  ...authOperations,
  ...canvasRoutes,
  ...usageRoutes,
  ...blockOperations,
  ...generationOperations,
  ...assistantOperations,
  ...platformOperations,
  ...journeyOperations,
  ...agentOperations,
  ...oauthOperations,
  ...flowRoutes,
];
