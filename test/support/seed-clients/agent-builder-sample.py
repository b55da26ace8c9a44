# The agent-builder SDK's Python sample, copied unchanged; its placeholders (the server URL, the API
# key, the workflow id) are replaced by the test before it runs, and the last line prints what the
# sample got.
from agenticrag_client import AgenticRAGClient, APIConfig

config = APIConfig(
    base_url="http://localhost:8000",
    api_key="your-api-key",
)
client = AgenticRAGClient(config)

# 워크플로우 목록 조회
workflows = client.workflows.list()

# 워크플로우 실행
result = client.workflows.execute("workflow-id", {"input": "data"})

# 채팅
response = client.chatflows.chat("Hello!")

import json, sys; sys.stdout.write(json.dumps({"workflows": workflows, "result": result, "response": response}) + "\n")
