"""Drives the generated Python client against a live Switchboard (test/integration/sdk-generated.test.ts).

    python3 check_client.py BASE_URL PACKAGE_DIR

Prints one JSON object of what it saw; the Jest test asserts on it. Any unexpected exception ends
the script non-zero with its traceback.
"""
import ast
import asyncio
import json
import pathlib
import sys
import uuid

BASE, PACKAGE = sys.argv[1], pathlib.Path(sys.argv[2])
sys.path.insert(0, str(PACKAGE.parent))

from switchboard_client import ApiError, AsyncClient, Client  # noqa: E402

PASSWORD = "correct horse battery"
out = {}


def error_of(call):
    try:
        call()
    except ApiError as error:
        return {"status": error.status, "code": error.code, "message": error.message, "details": error.details}
    return None


async def aerror_of(call):
    try:
        await call()
    except ApiError as error:
        return {"status": error.status, "code": error.code, "message": error.message}
    return None


# The package parses as Python 3.9 (the oldest version it promises).
out["py39"] = sorted(p.name for p in PACKAGE.glob("*.py") if ast.parse(p.read_text("utf-8"), feature_version=(3, 9)))

# ---- sync ----
email = "py-%s@example.test" % uuid.uuid4().hex[:8]
client = Client(BASE + "/")
registered = client.auth.register(email, PASSWORD, "Python")
out["registered"] = {"email": registered["user"]["email"], "kept": client.token == registered["accessToken"]}
out["me"] = client.auth.get_me()["user"]["email"]

canvas = client.canvases.create_canvas("From Python")["canvas"]
out["canvas"] = canvas
out["listed"] = [c["id"] for c in client.canvases.list_canvases(limit=5)["canvases"]]

with client.generations.generate_stream(canvas["id"], "A heading please") as stream:
    events = list(stream)
out["generation"] = {
    "names": [e.event for e in events],
    "ids": [e.id for e in events],
    "complete": events[-1].data,
    "lastEventId": stream.last_event_id,
}
generation_id = events[-1].data["generationId"]
out["generationRecord"] = client.generations.get_generation(canvas["id"], generation_id)
out["blocks"] = [b["content"] for b in client.blocks.list_blocks(canvas["id"])["blocks"]]

chat = client.chat.chat("Hello from Python")
out["chat"] = chat
streamed = list(client.chat.chat_stream("And a stream", session_id=chat["sessionId"]))
out["chatStream"] = [{"event": e.event, "data": e.data} for e in streamed]
out["history"] = [m["content"] for m in client.chat.get_chat_history(chat["sessionId"])["messages"]]

# ---- flows (short alias names) ----
AGENTFLOW = {
    "nodes": [
        {"id": "facts", "prompt": "List three facts about {{input.topic}}"},
        {"id": "summary", "prompt": "Summarize: {{nodes.facts.output}}", "dependsOn": ["facts"]},
    ],
    "output": "summary",
}
chatflow = client.flows.create("chatflow", "Py helper", {"systemPrompt": "You are terse."})["flow"]
agentflow = client.flows.create_flow("agentflow", "Py brief", AGENTFLOW)["flow"]
out["flows"] = {
    "chatflow": chatflow,
    "listed": [f["id"] for f in client.flows.list()["flows"]],
    "got": client.flows.get(agentflow["id"])["flow"],
    "renamed": client.flows.update_flow(chatflow["id"], name="Py helper 2")["flow"]["name"],
    "badDefinition": error_of(lambda: client.flows.create("agentflow", "Bad", {"nodes": [{"id": "a", "prompt": "x", "dependsOn": ["b"]}], "output": "a"})),
}

# Chat with the chatflow: JSON (chat(flow_id, message, session_id=None)), then streamed.
first = client.flows.chat(chatflow["id"], "Hi flow")
second = client.flows.chat(chatflow["id"], "Again", first["sessionId"])
streamed = [{"event": e.event, "data": e.data} for e in client.flows.chat_with_flow_stream(chatflow["id"], "Stream it", session_id=first["sessionId"])]
out["flowChat"] = {
    "first": first,
    "second": second,
    "streamed": streamed,
    "history": [m["content"] for m in client.chat.get_chat_history(first["sessionId"])["messages"]],
}

# Execute (202), follow the execution's events to their end, then read its result.
started = client.flows.execute(agentflow["id"], {"topic": "otters"})
with client.flows.stream_flow_execution_events(agentflow["id"], started["executionId"]) as stream:
    events = [{"event": e.event, "id": e.id, "data": e.data} for e in stream]
execution = client.flows.get_execution(agentflow["id"], started["executionId"])["execution"]
resumed = [e.id for e in client.flows.stream_flow_execution_events(agentflow["id"], started["executionId"], last_event_id=events[1]["id"])]
with client.flows.execute_flow_stream(agentflow["id"], {"topic": "seals"}) as live:
    live_events = [e.event for e in live]
out["execution"] = {
    "started": started,
    "events": events,
    "execution": execution,
    "resumed": resumed,
    "live": {"header": live.headers.get("x-execution-id"), "events": live_events},
    "missingInput": error_of(lambda: client.flows.execute(agentflow["id"], {})),
    "listed": [e["id"] for e in client.flows.list_flow_executions(agentflow["id"])["executions"]],
}

# Knowledge: a base, a multipart upload (a Markdown file and an empty one), the progress stream to ready, a search.
base = client.knowledge.create_knowledge_base("Py handbook")["base"]
uploaded = client.knowledge.upload_knowledge_documents(
    base["id"],
    [("notes.md", b"# Security\n\nRotate the vault passphrase every quarter.\n", "text/markdown"), ("empty.txt", b"")],
)["documents"]
with client.knowledge.stream_knowledge_document(uploaded[0]["id"]) as stream:
    progress = [e.data["status"] for e in stream]
hits = client.knowledge.search_knowledge("vault passphrase", base_ids=[base["id"]])["hits"]
out["knowledge"] = {
    "uploaded": [{"name": d["name"], "status": d["status"], "error": d["error"]} for d in uploaded],
    "progress": progress,
    "chunks": len(client.knowledge.list_knowledge_chunks(uploaded[0]["id"])["chunks"]),
    "hit": {"document": hits[0]["documentName"], "section": hits[0]["section"]} if hits else None,
}

out["notFound"] = error_of(lambda: client.canvases.get_canvas(str(uuid.uuid4())))
out["invalid"] = error_of(lambda: client.canvases.create_canvas(""))
out["anonymous"] = error_of(lambda: Client(BASE).canvases.list_canvases())
out["badLogin"] = error_of(lambda: Client(BASE).auth.login(email, "wrong password!"))
out["unreachable"] = error_of(lambda: Client("http://127.0.0.1:9").auth.get_me())


# ---- asyncio ----
async def run_async():
    result = {}
    client = AsyncClient(BASE)
    login = await client.auth.login(email, PASSWORD)
    result["kept"] = client.token == login["accessToken"]
    first, second = await asyncio.gather(client.canvases.create_canvas("Async one"), client.canvases.create_canvas("Async two"))
    result["created"] = sorted([first["canvas"]["title"], second["canvas"]["title"]])
    result["chat"] = (await client.chat.chat("Async hello"))["response"]
    stream = await client.chat.chat_stream("Async stream")
    result["chatStream"] = [e.event async for e in stream]
    result["flows"] = [f["name"] for f in (await client.flows.list(limit=10))["flows"]]
    chatflow_id = next(f["id"] for f in (await client.flows.list())["flows"] if f["type"] == "chatflow")
    result["flowChat"] = (await client.flows.chat(chatflow_id, "Async flow hello"))["response"]
    agentflow_id = next(f["id"] for f in (await client.flows.list())["flows"] if f["type"] == "agentflow")
    started = await client.flows.execute(agentflow_id, {"topic": "puffins"})
    stream = await client.flows.stream_flow_execution_events(agentflow_id, started["executionId"])
    result["events"] = [e.event async for e in stream]
    execution = (await client.flows.get_execution(agentflow_id, started["executionId"]))["execution"]
    result["execution"] = {"status": execution["status"], "output": execution["output"]}
    result["notFound"] = await aerror_of(lambda: client.canvases.get_canvas(str(uuid.uuid4())))
    return result


out["async"] = asyncio.run(run_async())
print(json.dumps(out))
