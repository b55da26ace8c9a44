import { embedResolvedSession } from '../assistant/session-embedding';
import { onJobs } from './handlers';
import type { WorkerPorts } from './ports';

/**
 * `assistant` queue: each job name has its handler here, once (the pool dispatches by name):
 * chat turns and their approvals to the assistant runner, a waitpoint's deadline to the run kernel, ticket notes to the notes runner, agent
 * setup journey turns to the journey runner, chatflow turns to the chatflow runner, a
 * resolved session's embedding to the batched embedder.
 */
type Ports = Pick<
  WorkerPorts,
  'assistant' | 'waits' | 'notes' | 'journeys' | 'chatflows' | 'repos' | 'embedder' | 'config' | 'metrics' | 'log'
>;

export const assistantHandlers = onJobs('assistant', 'src/workers/assistant.ts', {
  'chat-turn': (payload, job, { assistant }: Ports) => assistant.chatTurn(payload, job),
  'hitl-resume': (payload, job, { assistant }: Ports) => assistant.resume(payload, job),
  'waitpoint-deadline': async (payload, _job, { waits }: Ports) => ({ completed: await waits.completeDeadline(payload.waitpointId) }),
  'ticket-notes': (payload, job, { notes }: Ports) => notes.process(payload, job),
  'session-embedding': (payload, _job, ports: Ports) => embedResolvedSession(payload, ports),
  'journey-turn': (payload, job, { journeys }: Ports) => journeys.process(payload, job),
  'chatflow-turn': (payload, job, { chatflows }: Ports) => chatflows.process(payload, job),
});
