"""Uses the installed `switchboard_client` (pip install ./clients/python) against a live server.

    python stream.py <base_url>

Streams a generation with a plain `for` (sync client) and with a plain `async for` (asyncio client,
no `await` before iterating), then prints what it saw as JSON.
"""
import asyncio
import json
import sys
import uuid

import switchboard_client
from switchboard_client import AsyncClient, Client

BASE = sys.argv[1]
PASSWORD = "correct horse battery"
out = {"module": switchboard_client.__file__}

email = "pip-%s@example.test" % uuid.uuid4().hex[:8]
client = Client(BASE)
client.auth.register(email, PASSWORD, "Pip")
canvas = client.canvases.create_canvas("From pip")["canvas"]
out["sync"] = [event.event for event in client.generations.generate_stream(canvas["id"], "A heading please")]


async def main():
    aclient = AsyncClient(BASE)
    await aclient.auth.login(email, PASSWORD)
    names = []
    async for event in aclient.generations.generate_stream(canvas["id"], "Another heading"):
        names.append(event.event)
    out["async"] = names
    out["asyncChat"] = [event.event async for event in aclient.chat.chat_stream("Hello")]


asyncio.run(main())
print(json.dumps(out))
