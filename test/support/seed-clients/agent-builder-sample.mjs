// The agent-builder SDK's TypeScript sample, copied unchanged; its placeholders (the server URL, the
// API key, the workflow id) are replaced by the test before it runs, and the last line prints what
// the sample got.
import { AgenticRAGClient } from 'agenticrag-client';

const client = new AgenticRAGClient({
  baseUrl: 'http://localhost:8000',
  apiKey: 'your-api-key',
});

// 워크플로우 목록 조회
const { workflows } = await client.workflows.list();

// 워크플로우 실행
const result = await client.workflows.execute('workflow-id', { input: 'data' });

// 채팅
const response = await client.chatflows.chat({ message: 'Hello!' });

process.stdout.write(`${JSON.stringify({ workflows, result, response })}\n`);
